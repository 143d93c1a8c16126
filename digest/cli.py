"""The ``digest`` command line: parse arguments, load the config, call the pipeline, print.

Nothing below this module imports click.  Every known error is a ``DigestError``: one line on
stderr (and its hint), the exit code it carries, a traceback only with ``--verbose``.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from digest.errors import DigestError

F = TypeVar("F", bound=Callable[..., Any])


class _State:
    verbose = False


def _date(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date in YYYY-MM-DD form") from None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@contextmanager
def _errors() -> Iterator[None]:
    """Turn a DigestError into ``error: ...`` lines and its exit code."""
    try:
        yield
    except DigestError as exc:
        if _State.verbose:
            import traceback

            traceback.print_exc()
        for line in exc.message.splitlines():
            click.echo(f"error: {line}", err=True)
        if exc.hint:
            click.echo(f"hint: {exc.hint}", err=True)
        sys.exit(exc.exit_code)


def _load(config_path: Path | None) -> Any:
    from digest.config import find_config, load_config

    return load_config(find_config(config_path))


def config_option(func: F) -> F:
    """``--config PATH`` (default: $DIGEST_CONFIG, ./digest.toml, config/digest.toml)."""
    return click.option(
        "--config",
        "config_path",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="Config file (default: $DIGEST_CONFIG, ./digest.toml, then config/digest.toml).",
    )(func)


def _report_sources(report: Any) -> None:
    for source in report.sources:
        for warning in source.warnings:
            click.echo(f"warning: source {source.name!r}: {warning}", err=True)
        if not source.ok:
            click.echo(f"error: source {source.name!r}: {source.error}", err=True)
    for channel, summary in report.deliveries.items():
        if isinstance(summary, dict) and (summary.get("failed") or summary.get("pending")):
            click.echo(
                f"error: {channel}: {summary.get('failed', 0)} failed, {summary.get('pending', 0)} pending "
                "(see digest status)", err=True,
            )
        elif summary == "failed":
            why = report.delivery_errors.get(channel)
            if why:
                click.echo(f"error: {channel}: {why} (left pending: the next run delivers it)", err=True)
            else:
                click.echo(f"error: {channel}: delivery failed (see digest status)", err=True)


@contextmanager
def _source_progress(config: Any) -> Iterator[Callable[[Any], None] | None]:
    """A progress bar over the sources, on a terminal and when there are several of them."""
    count = sum(1 for s in config.sources if s.enabled)
    if count < 2 or not sys.stderr.isatty():
        yield None
        return
    with click.progressbar(length=count, label="Reading sources", file=sys.stderr) as bar:
        yield lambda result: bar.update(1)


def _print_report(report: Any, as_json: bool) -> None:
    if as_json:
        import json

        click.echo(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
        return
    counts = report.counts
    label = "Preview" if report.preview else "Digest"
    if report.digest is None:
        why = (
            "the sources listed no new entries (snapshot files already read, feeds unchanged)."
            if counts.entries == 0
            else f"all {counts.entries} entries read were seen before."
        )
        click.echo(f"Nothing new for {report.date.isoformat()}: {why}")
        return
    click.echo(
        f"{label} for {report.date.isoformat()}: {counts.new} new paper{'s' if counts.new != 1 else ''} in "
        f"{len(report.digest.groups)} topics ({counts.entries} entries read, {counts.already_seen} already seen, "
        f"{counts.duplicates} duplicates merged)."
    )
    for group in report.digest.groups:
        click.echo(f"  {group.title:<36} {len(group.papers):>4}")
    for kind, path in report.outputs.items():
        click.echo(f"{kind:>9}: {path}")


def _print_explanations(config: Any, digest: Any) -> None:
    from digest.topics import configured_taxonomy, explain

    taxonomy = configured_taxonomy(config.topics.file)
    for paper in digest.papers:
        click.echo(explain(paper, digest.placements[paper.key], taxonomy))
    click.echo()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--verbose", "-v", is_flag=True, help="Show tracebacks and more detail on errors.")
@click.version_option(package_name="digest")
def main(verbose: bool) -> None:
    """digest: one readable daily digest of new research papers, grouped by topic."""
    _State.verbose = verbose


@main.command()
@config_option
@click.option("--date", "date_text", metavar="YYYY-MM-DD", help="The digest's date (default: today).")
@click.option("--json", "as_json", is_flag=True, help="Print the run's summary as one JSON object.")
def run(config_path: Path | None, date_text: str | None, as_json: bool) -> None:
    """Run one cycle: ingest, diff, group, render, deliver, remember."""
    from digest.pipeline import run_cycle

    with _errors():
        config = _load(config_path)
        with _source_progress(config) as progress:
            report = run_cycle(config, now=_now(), day=_date(date_text), on_source=progress)
    _report_sources(report)
    _print_report(report, as_json)
    sys.exit(1 if report.failed else 0)


@main.command()
@config_option
@click.option("--date", "date_text", metavar="YYYY-MM-DD", help="The digest's date (default: today).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), help="Folder for the rendered files (default: a new temp folder).")
@click.option("--all", "include_seen", is_flag=True, help="Ignore the seen marks: preview every paper the sources list.")
@click.option("--open", "open_browser", is_flag=True, help="Open the HTML digest in a browser.")
@click.option("--serve", "serve_port", type=int, is_flag=False, flag_value=8000, default=None, metavar="[PORT]",
              help="Serve the rendered files on http://127.0.0.1:PORT/ (default 8000) until Ctrl-C.")
@click.option("--explain", is_flag=True, help="Say why each paper went to its topic, and the runner-up.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path, exists=True, dir_okay=False))
def preview(
    config_path: Path | None,
    date_text: str | None,
    out_dir: Path | None,
    include_seen: bool,
    open_browser: bool,
    serve_port: int | None,
    explain: bool,
    as_json: bool,
    files: tuple[Path, ...],
) -> None:
    """Render what the next digest would be, without sending or remembering anything.

    With FILES, preview those snapshot files alone.
    """
    from digest.pipeline import preview_cycle

    with _errors():
        config = _load(config_path)
        import tempfile

        out = out_dir or Path(tempfile.mkdtemp(prefix="digest-preview-"))
        with _source_progress(config) as progress:
            report = preview_cycle(
                config, now=_now(), out_dir=out, day=_date(date_text), include_seen=include_seen, files=files,
                on_source=progress,
            )
    _report_sources(report)
    if explain and report.digest is not None and not as_json:
        _print_explanations(config, report.digest)
    _print_report(report, as_json)
    if open_browser and "html" in report.outputs:
        import webbrowser

        webbrowser.open(report.outputs["html"].resolve().as_uri())
    if serve_port is not None and "html" in report.outputs:
        from digest.serve import serve_folder

        page = report.outputs["html"].name
        serve_folder(report.outputs["html"].parent, serve_port, lambda url: click.echo(f"Serving {url}{page} (Ctrl-C stops)"))
    sys.exit(1 if report.failed else 0)


@main.command()
@config_option
def schedule(config_path: Path | None) -> None:
    """Run cycles on [schedule] cron until SIGTERM or Ctrl-C (which stop it after the current cycle).

    On start, if a scheduled time has passed since the last digest, one cycle runs at once.
    Each run logs one summary line on stderr.
    """
    import logging

    from digest.schedule import run_schedule

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.INFO if _State.verbose else logging.WARNING)
    with _errors():
        run_schedule(_load(config_path))


@main.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as one JSON object.")
def status(config_path: Path | None, as_json: bool) -> None:
    """Show the store's size, the last digest, pending deliveries and the sources' health."""
    from digest.status import collect_status, format_status

    with _errors():
        config = _load(config_path)
        info = collect_status(config)
    import json

    click.echo(json.dumps(info, indent=2, ensure_ascii=False) if as_json else format_status(info))


@main.command()
@config_option
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False),
              help="Folder for the site (default: [archive] site_dir, else a site/ folder beside the archive).")
@click.option("--rebuild", is_flag=True, help="Recreate the archive from the store alone and render every page again.")
def site(config_path: Path | None, out_dir: Path | None, rebuild: bool) -> None:
    """Build the static HTML archive site: only pages whose inputs changed; links are checked."""
    from digest.archive_site import build_site

    with _errors():
        config = _load(config_path)
        report = build_site(config, out_dir=out_dir, rebuild=rebuild)
    click.echo(
        f"Site: {report.pages} files, {len(report.rendered)} rendered, {len(report.removed)} removed, "
        f"{report.links} internal links checked."
    )
    click.echo(f"index: {report.index.resolve()}")


@main.command()
@config_option
@click.argument("target", type=click.Path(path_type=Path, dir_okay=False))
def backup(config_path: Path | None, target: Path) -> None:
    """Copy the store to TARGET: one consistent copy, safe to take while a run is active."""
    from digest.store import backup_store

    with _errors():
        config = _load(config_path)
        size = backup_store(config.store, target)
    click.echo(f"Backed up {config.store.path} to {target} ({size / 1e6:.1f} MB).")


@main.group()
def topics() -> None:
    """Inspect and teach the topic grouper."""


@topics.command("eval")
@config_option
@click.argument("labels", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--papers", "paper_files", multiple=True, type=click.Path(path_type=Path, exists=True),
              help="Snapshot files (or folders) holding the labelled papers (default: ../seeds beside LABELS).")
def topics_eval(config_path: Path | None, labels: Path, paper_files: tuple[Path, ...]) -> None:
    """Measure the grouper against hand labels (a TSV of title, topic)."""
    from digest.topics_eval import run_eval

    with _errors():
        config = _load(config_path) if config_path else None
        click.echo(run_eval(config, labels, paper_files))


@topics.command("add-example")
@config_option
@click.argument("topic")
@click.argument("title")
def topics_add_example(config_path: Path | None, topic: str, title: str) -> None:
    """Teach the grouper: file TITLE as an example of TOPIC in the topics file."""
    from digest.topics import add_example, default_taxonomy_path

    with _errors():
        config = _load(config_path)
        path = config.topics.file or default_taxonomy_path()
        add_example(path, topic, title)
    click.echo(f"Added to {topic} in {path}: {title}")


if __name__ == "__main__":  # pragma: no cover
    main()

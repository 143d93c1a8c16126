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
    for warning in getattr(report, "warnings", ()):
        click.echo(f"warning: {warning}", err=True)
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
def _source_progress(config: Any, count: int | None = None) -> Iterator[Callable[[Any], None] | None]:
    """A progress bar over the sources (``count`` of them, default the enabled ones), on a terminal
    and when there are several of them."""
    count = sum(1 for s in config.sources if s.enabled) if count is None else count
    if count < 2 or not sys.stderr.isatty():
        yield None
        return
    with click.progressbar(length=count, label="Reading sources", file=sys.stderr) as bar:
        yield lambda result: bar.update(1)


def _feed_urls(ctx: click.Context, param: click.Parameter, urls: tuple[str, ...]) -> tuple[str, ...]:
    """Check each ``--url`` is an http(s) URL before anything runs."""
    from digest.config import source_for_url
    from digest.errors import ConfigError

    for url in urls:
        try:
            source_for_url(url)
        except ConfigError as exc:
            raise click.BadParameter(exc.message) from None
    return urls


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
@click.version_option(package_name="digest", prog_name="digest")
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
@click.option("--url", "urls", multiple=True, metavar="FEED_URL", callback=_feed_urls,
              help="Preview this feed (RSS/Atom, or the Hugging Face daily papers API) instead of the configured sources. Repeatable.")
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
    urls: tuple[str, ...],
    files: tuple[Path, ...],
) -> None:
    """Render what the next digest would be, without sending or remembering anything.

    With FILES or --url, preview those snapshot files and feeds alone.  With no config file
    anywhere, FILES and --url are previewed with the built-in defaults (the shipped topics).
    """
    import tempfile

    from digest.config import preview_config
    from digest.pipeline import preview_cycle

    with _errors():
        out = out_dir or Path(tempfile.mkdtemp(prefix="digest-preview-"))
        config = preview_config(config_path, out, given=bool(files or urls))
        if config.path is None:
            click.echo("note: no config file: previewing with the built-in defaults (the shipped topics)", err=True)
        with _source_progress(config, len(urls) if files or urls else None) as progress:
            report = preview_cycle(
                config, now=_now(), out_dir=out, day=_date(date_text), include_seen=include_seen, files=files,
                urls=urls, on_source=progress,
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
@click.argument("folder", required=False, default=".", type=click.Path(path_type=Path, file_okay=False))
@click.option("--source", "sources", multiple=True, metavar="SPEC",
              help="A source besides the inbox: arxiv:CATEGORY (e.g. arxiv:cs.LG), hf (Hugging Face daily papers) or a feed URL. Repeatable.")
@click.option("--email", "emails", multiple=True, metavar="ADDRESS",
              help="Email each digest to ADDRESS (email on; fill in the SMTP server afterwards). Repeatable.")
@click.option("--force", is_flag=True, help="Replace an existing digest.toml (the old one is kept as digest.toml.bak).")
def init(folder: Path, sources: tuple[str, ...], emails: tuple[str, ...], force: bool) -> None:
    """Start digest in FOLDER (default: here): a commented digest.toml and an inbox/ folder.

    On a terminal, with neither --source nor --email, it asks for both; otherwise it asks nothing.
    An existing digest.toml is never replaced without --force.
    """
    from digest.quickstart import describe_init, init_folder

    if not sources and not emails and sys.stdin.isatty():
        sources, emails = _ask_init()
    with _errors():
        result = init_folder(folder, sources=sources, emails=emails, force=force, now=_now())
    click.echo(describe_init(result, Path.cwd()))


def _ask_init() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Ask a person at a terminal for init's sources and recipients, until each answer is valid."""
    from digest.config import is_address
    from digest.errors import ConfigError
    from digest.quickstart import sources_from_specs

    def specs(text: str) -> tuple[str, ...]:
        words = tuple(text.replace(",", " ").split())
        try:
            sources_from_specs(words)
        except ConfigError as exc:
            raise click.BadParameter(exc.message) from None
        return words

    def addresses(text: str) -> tuple[str, ...]:
        words = tuple(text.replace(",", " ").split())
        bad = [w for w in words if not is_address(w)]
        if bad:
            raise click.BadParameter(f"{bad[0]!r} is not an email address like reader@example.org")
        return words

    click.echo("Snapshot files you save in inbox/ are always read. Sources to fetch as well:")
    click.echo("  arxiv:CATEGORY (e.g. arxiv:cs.LG), hf (Hugging Face daily papers), or a feed URL.")
    sources = click.prompt("Sources (blank: the inbox alone)", default="", show_default=False, value_proc=specs)
    emails = click.prompt("Email each digest to (blank: no email)", default="", show_default=False, value_proc=addresses)
    return tuple(sources), tuple(emails)


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
@click.option("--host", help="Address to listen on (default: [serve] host, 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (default: [serve] port, 8080; 0: any free port).")
def serve(config_path: Path | None, host: str | None, port: int | None) -> None:
    """Serve the archive site and the subscriber pages (subscribe, confirm, preferences, unsubscribe)
    until Ctrl-C or SIGTERM.  Needs the secret [serve] secret_env names, and `pip install digest[serve]`."""
    with _errors():
        config = _load(config_path)
        try:
            from digest.web import run_server
        except ImportError as exc:
            raise DigestError(f"digest serve needs Starlette and uvicorn ({exc.name} is missing)", hint="pip install 'digest[serve]'") from None
        run_server(config, host=host, port=port)


@main.group()
def subscribers() -> None:
    """The subscriber list in the store (the config's [[email.recipients]] are listed there, not here)."""


def _preference_options(func: F) -> F:
    for option in reversed((
        click.option("--topic", "topics", multiple=True, metavar="CODE", help="A topic to receive (repeat; default: all)."),
        click.option("--category", "categories", multiple=True, metavar="CAT", help="An arXiv category to receive (repeat; default: all)."),
        click.option("--cadence", type=click.Choice(["daily", "weekly"]), default="daily", show_default=True, help="How often."),
        click.option("--weekday", metavar="DAY", help="The day of a weekly roll-up (default: monday)."),
    )):
        func = option(func)
    return func


def _status_option(func: F) -> F:
    return click.option(
        "--status", type=click.Choice(["pending", "active", "unsubscribed", "bouncing", "disabled"]), help="Only this status."
    )(func)


def _echo_subscribers(config_path: Path | None, status: str | None, as_json: bool, formatted: Callable[[list[Any]], str]) -> None:
    """Print the subscribers (of ``status``) as a JSON array, or as ``formatted`` makes them."""
    from digest.subscribers import opened

    with _errors():
        with opened(_load(config_path), readonly=True) as subs:
            found = subs.all(status)
    if as_json:
        import json

        click.echo(json.dumps([s.to_json() for s in found], indent=2, ensure_ascii=False))
    else:
        click.echo(formatted(found), nl=False)


@subscribers.command("list")
@config_option
@_status_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def subscribers_list(config_path: Path | None, status: str | None, as_json: bool) -> None:
    """List subscribers: address, status, topics, cadence, and the last bounce of a bouncing one."""
    from digest.subscribers import format_list

    _echo_subscribers(config_path, status, as_json, lambda found: format_list(found) + "\n")


@subscribers.command("add")
@config_option
@click.argument("address")
@_preference_options
@click.option("--pending", is_flag=True, help="Add as pending (not mailed until confirmed) instead of active.")
def subscribers_add(
    config_path: Path | None, address: str, topics: tuple[str, ...], categories: tuple[str, ...], cadence: str,
    weekday: str | None, pending: bool,
) -> None:
    """Add ADDRESS as a subscriber (active: you vouch for its consent)."""
    from digest.subscribers import known_topics, opened, parse_preferences

    with _errors():
        config = _load(config_path)
        prefs = parse_preferences(topics, categories, cadence, weekday, known_topics(config))
        with opened(config) as subs:
            added = subs.add(address, now=_now(), source="cli", status="pending" if pending else "active", preferences=prefs)
    click.echo(f"Added {added.address} ({added.status}).")


@subscribers.command("remove")
@config_option
@click.argument("address")
@click.option("--forget", is_flag=True, help="Delete the row and its history instead of marking it unsubscribed.")
def subscribers_remove(config_path: Path | None, address: str, forget: bool) -> None:
    """Unsubscribe ADDRESS (kept as unsubscribed: it gets nothing more, a config recipient too)."""
    from digest.subscribers import normalise_address, opened

    with _errors():
        with opened(_load(config_path)) as subs:
            if forget:
                gone = subs.remove(address)
                click.echo(f"Forgot {gone.address} and its history.")
                return
            left = subs.unsubscribe_address(normalise_address(address), now=_now(), source="cli")
    click.echo(f"{left.address} is unsubscribed.")


@subscribers.command("import")
@config_option
@click.argument("csv_file", type=click.File("r", encoding="utf-8-sig"))
def subscribers_import(config_path: Path | None, csv_file: Any) -> None:
    """Add the subscribers of CSV_FILE ('-': stdin), a CSV with an 'address' column (optional: topics,
    categories, cadence, weekday, status); every row is checked first, listed addresses are kept."""
    from digest.subscribers import import_csv, known_topics, opened

    with _errors():
        config = _load(config_path)
        with opened(config) as subs:
            added, kept = import_csv(subs, csv_file, now=_now(), known_topics=known_topics(config), name=csv_file.name)
    click.echo(f"Imported {added} subscriber{'s' if added != 1 else ''}; {kept} already listed.")


@subscribers.command("export")
@config_option
@_status_option
@click.option("--json", "as_json", is_flag=True, help="A JSON array instead of CSV.")
def subscribers_export(config_path: Path | None, status: str | None, as_json: bool) -> None:
    """Write the subscribers as CSV (or JSON) on stdout; `digest subscribers import` reads it back."""
    from digest.subscribers import export_csv

    _echo_subscribers(config_path, status, as_json, export_csv)


@subscribers.command("bounce")
@config_option
@click.argument("address", required=False)
@click.option("--reason", help="The bounce's text (the server's reply), kept with the subscriber.")
@click.option("--soft", is_flag=True, help="A temporary failure (4xx): recorded, never disables.")
@click.option("--dsn", "dsn_file", type=click.File("rb"), help="Read an RFC 3464 delivery status report (a bounce mail) from a file ('-': stdin).")
def subscribers_bounce(
    config_path: Path | None, address: str | None, reason: str | None, soft: bool, dsn_file: Any
) -> None:
    """Record a bounce for ADDRESS, or every failed recipient of a DSN (--dsn); past
    [subscribers] bounce_limit hard bounces in bounce_window_days a subscriber is disabled."""
    from digest.bounces import record_bounces

    with _errors():
        config = _load(config_path)
        if (address is None) == (dsn_file is None):
            raise click.UsageError("give an ADDRESS (with --reason) or --dsn FILE")
        lines = record_bounces(
            config, now=_now(), address=address, reason=reason, soft=soft,
            report=dsn_file.read() if dsn_file is not None else None,
        )
    for line in lines:
        click.echo(line)


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


@main.command()
@config_option
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Worker processes sharing the outbox (more on other hosts may share it too, on a PostgreSQL store).")
@click.option("--batch", type=click.IntRange(1, 100_000), default=200, show_default=True,
              help="Outbox rows a worker claims at once.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
def send(config_path: Path | None, workers: int, batch: int, as_json: bool) -> None:
    """Send the email outbox's due messages without running a cycle, with N workers sharing it."""
    import json

    from digest.send import send_outbox

    with _errors():
        config = _load(config_path)
        report = send_outbox(config, workers=workers, batch=batch)
    for error in report.errors:
        click.echo(f"error: a worker stopped: {error}", err=True)
    if as_json:
        click.echo(json.dumps({"workers": report.workers, "sent": report.sent, "failed": report.failed,
                               "pending": report.pending, "errors": list(report.errors)}))
    else:
        click.echo(f"Sent {report.sent} messages with {report.workers} worker(s); {report.failed} failed, {report.pending} pending.")
    sys.exit(0 if report.ok else 1)


@main.group()
def store() -> None:
    """Move the store between engines (docs/postgresql.md)."""


@store.command("migrate")
@config_option
@click.option("--to", "url", required=True, metavar="URL",
              help="The empty PostgreSQL database to copy the store into (postgresql://user@host/dbname; "
                   "the password from the variable [store] password_env names).")
def store_migrate(config_path: Path | None, url: str) -> None:
    """Copy the SQLite store ([store] path) into an empty PostgreSQL database, every table, verified by counts."""
    from digest.store import store_password
    from digest.store_copy import copy_to_postgresql

    with _errors():
        config = _load(config_path)
        copied = copy_to_postgresql(config.store, url, password=store_password(config.store))
    click.echo(f"Copied {copied.source} to {copied.target}: {copied.total} rows, every table's count verified.")
    for table, rows in copied.counts:
        click.echo(f"  {table}: {rows}")
    click.echo(f'To use it, set in [store]: url = "{url}" (the SQLite file is left as it was).')


@main.group()
def topics() -> None:
    """Inspect and teach the topic grouper."""


@topics.command("eval")
@config_option
@click.argument("labels", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--papers", "paper_files", multiple=True, type=click.Path(path_type=Path, exists=True),
              help="Snapshot or saved feed files (or folders) holding the labelled papers (default: ../seeds beside LABELS).")
@click.option("--misses", type=int, default=0, show_default=True, help="List this many misplaced papers with their evidence.")
@click.option("--llm", "with_llm", is_flag=True,
              help="Also measure the language model's second opinion on weak placements ([llm] of the config: base_url, model).")
@click.option("--self-teaching/--no-self-teaching", default=None,
              help="Measure the taxonomy teaching itself, or not (default: as its topics file says).")
def topics_eval(
    config_path: Path | None,
    labels: Path,
    paper_files: tuple[Path, ...],
    misses: int,
    with_llm: bool,
    self_teaching: bool | None,
) -> None:
    """Measure the grouper against hand labels: accuracy, macro-F1, per-topic precision and recall
    (Other's too when the labels use it).

    LABELS is a tab-separated file with a header line, then one paper per line: its title, its
    topic code (or "other") and, optionally, the snapshot file that lists it. Examples of the
    topics file that are labelled papers are left out while measuring.
    """
    from digest.topics.eval_command import run_eval

    with _errors():
        if with_llm:
            from digest.llm.evaluate import run_eval_with_llm

            click.echo(run_eval_with_llm(_load(config_path), labels, paper_files, misses=misses, self_teaching=self_teaching))
        else:
            config = _load(config_path) if config_path else None
            click.echo(run_eval(config, labels, paper_files, misses=misses, self_teaching=self_teaching))


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

"""One cycle of the pipeline: sources -> store.diff -> topics -> Digest -> commit -> deliver.

``run_cycle`` is what ``digest run`` and the scheduler call; ``preview_cycle`` renders what the
next digest would be without writing anything to the store.  Every outside edge (clock, store
path, output folder) comes in as an argument.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from digest import faults
from digest.config import Config, SourceConfig, source_for_url
from digest.errors import SourceError
from digest.deliver import Channel, DeliveryContext
from digest.deliver.archive import ArchiveChannel, render_options, write_digest_files
from digest.deliver.email import EmailChannel
from digest.deliver.weekly import WeeklyChannel
from digest.memory import release_free_memory
from digest.merge import merge_duplicates
from digest.models import Digest, DigestCounts, Paper, Placement
from digest.render import Renderer
from digest.sources import LOCAL_KINDS, ReadContext, SourceResult, Validators, read_sources
from digest.sources.snapshots import read_snapshot
from digest.sources.text import displayable
from digest.store import RUN_CLAIM, Diff, SeenStore, open_store
from digest.topics import Grouper, Taxonomy, configured_taxonomy, group_papers

if TYPE_CHECKING:  # digest.llm is imported only when [llm] is on
    from digest.llm import Assisted


@dataclass(frozen=True, slots=True)
class SourceReport:
    """How one source did in a run."""

    name: str
    ok: bool
    entries: int
    error: str | None = None
    not_modified: bool = False
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RunReport:
    """The outcome of a cycle, as printed and as the ``--json`` summary."""

    date: dt.date
    digest: Digest | None
    counts: DigestCounts
    sources: tuple[SourceReport, ...]
    outputs: dict[str, Path] = field(default_factory=dict)
    deliveries: dict[str, Any] = field(default_factory=dict)
    preview: bool = False
    delivery_failed: bool = False
    delivery_errors: dict[str, str] = field(default_factory=dict)  # channel -> why it failed, in one line
    warnings: tuple[str, ...] = ()  # one line each, for stderr and the log (the model's help, [llm])
    llm: dict[str, Any] | None = None  # what the model's help did and cost, when [llm] is on

    @property
    def failed(self) -> bool:
        """True when a source or a delivery failed (exit code 1)."""
        return self.delivery_failed or any(not s.ok for s in self.sources)

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` summary of DESIGN.md."""
        groups = self.digest.groups if self.digest else ()
        placements = self.digest.placements if self.digest else {}
        return {
            "date": self.date.isoformat(),
            "entries": self.counts.entries,
            "new": self.counts.new,
            "already_seen": self.counts.already_seen,
            "duplicates": self.counts.duplicates,
            "groups": [
                {
                    "topic": g.code,
                    "title": g.title,
                    "papers": [_paper_json(p, placements.get(p.key)) for p in g.papers],
                }
                for g in groups
            ],
            "outputs": {k: str(v) for k, v in self.outputs.items()},
            "deliveries": self.deliveries,
            **({"llm": self.llm} if self.llm is not None else {}),
            "warnings": list(self.warnings),
            "sources": [
                {
                    "name": s.name,
                    "ok": s.ok,
                    "entries": s.entries,
                    "error": s.error,
                    "not_modified": s.not_modified,
                    "warnings": list(s.warnings),
                }
                for s in self.sources
            ],
        }


def _paper_json(paper: Paper, placement: Placement | None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "key": paper.key,
        "title": paper.title,
        "arxiv_id": paper.arxiv_id,
        "doi": paper.doi,
        "url": paper.url,
        "categories": list(paper.categories),
        "authors": list(paper.authors),
        "source": paper.source,
        "upvotes": paper.upvotes,
    }
    if paper.summary is not None:
        data["summary"] = {"text": paper.summary.text, "model": paper.summary.model, "machine_written": True}
    if placement is not None:
        data["why"] = {
            "score": round(placement.score, 4),
            "evidence": list(placement.evidence),
            "runner_up": placement.runner_up,
        }
    return data


# A run that stored this many papers hands their freed memory back before delivering (below it
# there is little to hand back, and loading ctypes for malloc_trim costs ~3 ms).
TRIM_AFTER_PAPERS = 1_000


def today(config: Config, now: dt.datetime) -> dt.date:
    """The digest date for ``now`` in the schedule's time zone."""
    return now.astimezone(ZoneInfo(config.schedule.timezone)).date()


def load_topics(config: Config) -> Taxonomy:
    """The configured taxonomy (the shipped default when none is set)."""
    return configured_taxonomy(config.topics.file)


def load_grouping(config: Config) -> Grouper:
    """The grouper for the configured taxonomy (the shipped default when none is set)."""
    return Grouper(load_topics(config))


def source_reports(results: Iterable[SourceResult]) -> tuple[SourceReport, ...]:
    """Reports for the summary, one error line per source."""
    return tuple(
        SourceReport(r.name, r.ok, r.entries, "; ".join(r.errors) if r.errors else None, r.not_modified, r.warnings)
        for r in results
    )


def build_digest(
    day: dt.date, papers: Sequence[Paper], diff: Diff, grouper: Grouper, *, order: str, duplicates: int
) -> Digest:
    """Group the new papers of a diff into the day's digest."""
    groups, placements = group_papers(diff.new, grouper, order=order)
    counts = DigestCounts(
        entries=len(papers) + duplicates, new=len(diff.new), already_seen=len(diff.seen), duplicates=duplicates
    )
    return Digest(day, groups, counts, placements)


def run_cycle(
    config: Config,
    *,
    now: dt.datetime,
    day: dt.date | None = None,
    on_source: Callable[[SourceResult], None] | None = None,
    delivery_channels: Sequence[Channel] | None = None,
) -> RunReport:
    """Ingest, diff, group, store, then deliver: one cycle of ``digest run``.

    ``delivery_channels`` replaces the default ``channels()`` (tests inject an SMTP factory this way).
    """
    day_given = day is not None
    day = day or today(config, now)
    active = list(delivery_channels) if delivery_channels is not None else channels()
    taxonomy = load_topics(config)  # checked up front; the grouper is built only when there is something new
    renderer = Renderer(config.render.templates)
    with open_store(config.store) as store, store.lock():
        context = ReadContext(
            config,
            now,
            day,
            day_given=day_given,
            already_ingested=store.ingested_hashes,
            validators=_validators(store),
        )
        digest, counts, sources, helped = _ingest(store, context, taxonomy, active, on_source)
        if digest is not None and counts.new >= TRIM_AFTER_PAPERS:
            release_free_memory()  # the papers read are stored and freed: the delivery reads them back
        for channel in active:
            if isinstance(channel, WeeklyChannel):  # the weekly roll-ups due by this run's date
                channel.queue(config, store, day, now)
                faults.crash_point("rollups-queued")
        deliveries, delivery_failed, outputs, errors = deliver_pending(
            store, config, taxonomy, renderer, now=now, delivery_channels=active
        )
        return RunReport(
            date=day,
            digest=digest,
            counts=counts,
            sources=sources,
            outputs=outputs.get(day, {}) if digest else {},
            deliveries=deliveries,
            delivery_failed=delivery_failed,
            delivery_errors=errors,
            warnings=(helped.warning,) if helped is not None and helped.warning else (),
            llm=helped.stats if helped is not None else None,
        )


def _ingest(
    store: SeenStore,
    context: ReadContext,
    taxonomy: Taxonomy,
    active: Sequence[Channel],
    on_source: Callable[[SourceResult], None] | None,
) -> tuple[Digest | None, DigestCounts, tuple[SourceReport, ...], Assisted | None]:
    """Read, diff, group, ask the model (``[llm]``) and commit; the report's digest (see
    :func:`report_digest`), counts, sources and the model's help.

    The papers read live only in here: once they are stored, the delivery channels read them
    back from the store, and a big day is not held in memory through its delivery.
    """
    config, now = context.config, context.now
    results = read_sources(_enabled(config), context, on_done=on_source)
    merged, duplicates = merge_duplicates(papers_read(results))
    diff = store.diff(merged)
    digest = None
    helped = None
    if diff.new:
        digest = build_digest(context.day, merged, diff, Grouper(taxonomy), order=config.topics.order, duplicates=duplicates)
        if config.llm.enabled:
            helped = model_help(digest, taxonomy, store, config, now=now)
            digest = helped.digest
    inboxes = {s.name for s in config.sources if s.kind in LOCAL_KINDS}
    ingested = [
        (s.content_hash, s.source, s.origin, len(s.papers)) for r in results if r.name in inboxes for s in r.snapshots
    ]
    rows = [(channel.name, recipient) for channel in active for recipient in channel.rows(config, store)]
    faults.crash_point("before-commit")
    store.commit(digest, diff, ingested=ingested, channels=rows, now=now)
    faults.crash_point("after-commit")
    _remember_sources(store, results, now)
    counts = digest.counts if digest else DigestCounts(len(merged) + duplicates, 0, len(diff.seen), duplicates)
    return (report_digest(digest) if digest else None), counts, source_reports(results), helped


def model_help(digest: Digest, taxonomy: Taxonomy, store: SeenStore, config: Config, *, now: dt.datetime, ask: bool = True) -> Assisted:
    """The digest with the model's summaries and second opinions (``[llm]``, see :mod:`digest.llm`);
    ``ask`` False uses only what the store holds.  Imported here only: with ``[llm]`` off the
    package is never loaded."""
    from digest.llm import assist

    return assist(digest, taxonomy, store, config.llm, now=now, order=config.topics.order, ask_model=ask)


def papers_read(results: Iterable[SourceResult]) -> list[Paper]:
    """Every paper the sources listed, in order, with text that displays as it reads (:func:`displayable`)."""
    return list(displayable(p for r in results for s in r.snapshots for p in s.papers))


def report_digest(digest: Digest) -> Digest:
    """The digest as ``digest run`` reports it: the same groups, papers and placements, the
    papers without their abstracts.

    The report (the summary, ``--json``) never shows an abstract; the stored digest, the archive
    and the email keep them.  10,000 abstracts of ~1,200 characters are 12 MB not held through
    the delivery.
    """
    groups = tuple(replace(g, papers=tuple(p.without_abstract() for p in g.papers)) for g in digest.groups)
    return replace(digest, groups=groups)


def preview_cycle(
    config: Config,
    *,
    now: dt.datetime,
    out_dir: Path,
    day: dt.date | None = None,
    include_seen: bool = False,
    files: Sequence[Path] = (),
    urls: Sequence[str] = (),
    on_source: Callable[[SourceResult], None] | None = None,
) -> RunReport:
    """Render what the next digest would be into ``out_dir``; the store is never written.

    ``include_seen`` ignores the seen marks (and the record of ingested files); ``files`` (snapshot
    files) and ``urls`` (feeds, see :func:`digest.config.source_for_url`) are previewed instead of
    the configured sources.
    """
    day_given = day is not None
    day = day or today(config, now)
    url_sources: list[SourceConfig] = []
    for url in urls:
        url_sources.append(source_for_url(url, [s.name for s in url_sources]))
    grouper = load_grouping(config)
    renderer = Renderer(config.render.templates)
    with open_store(config.store, readonly=True) as store:
        context = ReadContext(
            config,
            now,
            day,
            day_given=day_given,
            already_ingested=(lambda hashes: set()) if include_seen else store.ingested_hashes,
        )
        if files or urls:
            results = [_read_files(files, now)] if files else []
            results += read_sources(url_sources, context, on_done=on_source) if url_sources else []
        else:
            results = read_sources(_enabled(config), context, on_done=on_source)
        merged, duplicates = merge_duplicates(papers_read(results))
        diff = Diff(tuple(merged), ()) if include_seen else store.diff(merged)
        digest = build_digest(day, merged, diff, grouper, order=config.topics.order, duplicates=duplicates)
        if config.llm.enabled and digest.size:  # what the store holds only: a preview never asks the model
            digest = model_help(digest, grouper.taxonomy, store, config, now=now, ask=False).digest
    outputs: dict[str, Path] = {}
    if digest.size:
        outputs = write_digest_files(digest, out_dir, renderer, render_options(config, now), nested=False)
    return RunReport(
        date=day,
        digest=digest if digest.size else None,
        counts=digest.counts,
        sources=source_reports(results),
        outputs=outputs,
        deliveries={},
        preview=True,
    )


def _read_files(files: Sequence[Path], now: dt.datetime) -> SourceResult:
    snapshots, errors = [], []
    for path in files:
        try:
            snapshots.append(read_snapshot(path, source="preview", taken_at=now))
        except SourceError as exc:  # unreadable, binary, not UTF-8 or no entries: named in the message
            errors.append(exc.message)
    return SourceResult("files", tuple(snapshots), tuple(errors))


def _enabled(config: Config) -> list[SourceConfig]:
    return [s for s in config.sources if s.enabled]


def _validators(store: SeenStore) -> dict[str, Validators]:
    """Each known source's conditional-GET validators, from one query."""
    return {s["name"]: (s["etag"], s["last_modified"]) for s in store.sources()}


def _remember_sources(store: SeenStore, results: Sequence[SourceResult], now: dt.datetime) -> None:
    """Record each source's outcome after the commit (validators only once the papers are stored)."""
    for result in results:
        if not result.ok:
            store.record_source(result.name, now=now, error="; ".join(result.errors))
        else:
            etag, modified = result.validators or (None, None)
            store.record_source(
                result.name,
                now=now,
                entries=result.entries,
                etag=etag,
                last_modified=modified,
                keep_validators=result.not_modified or result.validators is None,
            )


def channels() -> list[Channel]:
    """The delivery channels, in the order they run: the archive first, then the daily email, then
    the weekly roll-ups."""
    return [ArchiveChannel(), EmailChannel(), WeeklyChannel()]


RUN_LEASE = dt.timedelta(hours=24)  # a run's claim on its rows: the next run takes them back at once, a sender after this


def deliver_pending(
    store: SeenStore,
    config: Config,
    taxonomy: Taxonomy,
    renderer: Renderer,
    *,
    now: dt.datetime,
    delivery_channels: Sequence[Channel] | None = None,
) -> tuple[dict[str, Any], bool, dict[dt.date, dict[str, Path]], dict[str, str]]:
    """Work through the outbox channel by channel; return the summary, whether anything failed,
    the files and each failed channel's error line."""
    context = DeliveryContext(store, config, taxonomy, renderer, now)
    summary: dict[str, Any] = {}
    outputs: dict[dt.date, dict[str, Path]] = {}
    errors: dict[str, str] = {}
    failed = False
    for channel in delivery_channels if delivery_channels is not None else channels():
        if isinstance(channel, EmailChannel) and config.email.sent_by == "workers" and config.email.enabled:
            # (the daily email and the weekly roll-ups alike)
            summary[channel.name] = {"sent": 0, "failed": 0, "pending": store.pending_count(channel.name), "sent_by": "workers"}
            continue  # queued for `digest send --workers N`
        # The due rows, claimed as the run's (so that `digest send` workers leave them alone).
        result = channel.deliver(store.claim_deliveries(channel.name, worker=RUN_CLAIM, now=now, lease=RUN_LEASE), context)
        summary[channel.name] = result.summary
        failed = failed or result.failed
        if result.error:
            errors[channel.name] = result.error
        for day, files in result.outputs.items():
            outputs.setdefault(day, {}).update(files)
    return summary, failed, outputs, errors

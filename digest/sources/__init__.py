"""Sources: where papers come from.  One reader per ``kind``, found through ``READERS``.

- ``snapshots``: the files of an inbox folder (``snapshots.py``), each read once;
- ``feed``: any RSS/Atom feed, arXiv listings included (``feed.py``, ``feed_fast.py``);
- ``hf-daily-papers``: the Hugging Face daily papers JSON (``hf_daily.py``).

Network sources are fetched with one shared ``httpx`` client (``fetch.py``), several at once.
A reader turns one configured source into a :class:`SourceResult`: the snapshots it read and
one error line per thing that went wrong.  Readers never raise for bad input: the run reports
the error and goes on with the other sources.  Readers of network sources run on worker
threads, so they get everything from the store precomputed in the :class:`ReadContext`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from digest.config import Config, SourceConfig
from digest.errors import SourceError
from digest.models import Paper, Snapshot
from digest.sources.body import Body
from digest.sources.snapshots import content_hash, inbox_files, read_snapshot_bytes, snapshot_from_bytes

if TYPE_CHECKING:  # httpx, feedparser and lxml are imported when a network source is read
    import httpx

    from digest.sources.fetch import FetchSettings

Validators = tuple[str | None, str | None]  # (ETag, Last-Modified) of the last fetch


@dataclass(frozen=True, slots=True)
class SourceResult:
    """What one source gave in one run."""

    name: str
    snapshots: tuple[Snapshot, ...] = ()
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    not_modified: bool = False
    validators: Validators | None = None  # to remember once the papers are stored

    @property
    def ok(self) -> bool:
        """True when nothing went wrong."""
        return not self.errors

    @property
    def entries(self) -> int:
        """How many entries the source listed."""
        return sum(len(s.papers) for s in self.snapshots)


@dataclass(frozen=True, slots=True)
class ReadContext:
    """What readers may use: the clock, the config, and what the store already knows."""

    config: Config
    now: dt.datetime
    day: dt.date
    day_given: bool = False  # the user asked for this date (HF: that day's list, not the latest)
    already_ingested: Callable[[Collection[str]], set[str]] = field(default=lambda hashes: set())
    validators: Mapping[str, Validators] = field(default_factory=dict)
    client: httpx.Client | None = None  # both set by read_sources for network sources
    fetch_settings: FetchSettings | None = None


class SourceReader(Protocol):
    """Reads one kind of source."""

    def __call__(self, source: SourceConfig, context: ReadContext) -> SourceResult: ...


def read_snapshot_inbox(source: SourceConfig, context: ReadContext) -> SourceResult:
    """Read the inbox folder's files not ingested before (by content hash)."""
    assert source.path is not None  # config validation guarantees it
    try:
        files = list(inbox_files(source.path))
    except OSError as exc:
        return SourceResult(source.name, errors=(f"{source.path}: cannot list folder: {exc.strerror}",))
    contents: dict[Path, bytes] = {}
    errors: list[str] = []
    for path in files:  # each file is read once: hashed here, parsed below if it is new
        try:
            contents[path] = read_snapshot_bytes(path)
        except SourceError as exc:
            errors.append(exc.message)
    hashes = {path: content_hash(data) for path, data in contents.items()}
    done = context.already_ingested(set(hashes.values()))
    snapshots: list[Snapshot] = []
    taken: set[str] = set()
    for path, data in contents.items():
        if hashes[path] in done or hashes[path] in taken:
            continue  # ingested before, or a copy of a file read this run
        taken.add(hashes[path])
        try:
            snapshots.append(snapshot_from_bytes(data, origin=str(path), source=source.name, taken_at=context.now))
        except SourceError as exc:
            errors.append(exc.message)
    return SourceResult(source.name, tuple(snapshots), tuple(errors))


def fetch_settings(config: Config) -> FetchSettings:
    """The fetch settings of the config's ``[fetch]`` section."""
    from digest.sources.fetch import FetchSettings

    return FetchSettings(
        timeout=config.fetch.timeout,
        max_bytes=config.fetch.max_bytes,
        contact=config.fetch.contact,
        retries=config.fetch.retries,
    )


def _fetch_and_parse(
    source: SourceConfig, context: ReadContext, url: str, parse: Callable[[Body, str, str, Callable[[str], None]], list[Paper]]
) -> SourceResult:
    """Fetch ``url`` conditionally, parse the body with ``parse(body, url, content_type, warn)``.

    The body is spooled to a temporary file as it arrives and read from there in pieces: a
    16 MB listing is never in memory beside the papers made from it.
    """
    from digest.sources.fetch import Validators as FetchValidators
    from digest.sources.fetch import fetch

    assert context.client is not None and context.fetch_settings is not None  # set by read_sources
    etag, modified = context.validators.get(source.name, (None, None))
    result = fetch(
        context.client, url, settings=context.fetch_settings, validators=FetchValidators(etag, modified), spool=True
    )
    remembered = (result.validators.etag, result.validators.last_modified)
    if result.not_modified:
        return SourceResult(source.name, not_modified=True, validators=remembered)
    warnings: list[str] = []
    body = Body(result.file if result.file is not None else result.body)
    try:
        papers = parse(body, result.url, result.content_type, warnings.append)
        content_hash = body.sha256()
    finally:
        if result.file is not None:
            result.file.close()
    snapshot = Snapshot(
        source=source.name,
        origin=result.url,
        papers=tuple(papers),
        content_hash=content_hash,
        taken_at=context.now,
    )
    return SourceResult(source.name, (snapshot,), warnings=tuple(warnings), validators=remembered)


def read_feed_source(source: SourceConfig, context: ReadContext) -> SourceResult:
    """Fetch and parse an RSS/Atom feed, keeping the configured arXiv announce types."""
    announce = frozenset(source.announce_types)

    def parse(body: Body, url: str, ctype: str, warn: Callable[[str], None]) -> list[Paper]:
        from digest.sources.feed import parse_feed  # feedparser and lxml: only for a body to parse (not on a 304)

        return parse_feed(body, source=source.name, announce_types=announce, url=url, content_type=ctype, warn=warn)

    return _fetch_and_parse(source, context, source.url, parse)


def read_hf_daily_source(source: SourceConfig, context: ReadContext) -> SourceResult:
    """Fetch and parse the Hugging Face daily papers (the given day's list with ``--date``)."""
    from digest.sources.hf_daily import hf_daily_url, parse_hf_daily

    url = hf_daily_url(source.url, context.day if context.day_given else None)  # hf_daily is light (json)
    return _fetch_and_parse(
        source, context, url, lambda body, url, ctype, warn: parse_hf_daily(body.read(), source=source.name, warn=warn)
    )


READERS: dict[str, SourceReader] = {
    "snapshots": read_snapshot_inbox,
    "feed": read_feed_source,
    "hf-daily-papers": read_hf_daily_source,
}
LOCAL_KINDS = frozenset({"snapshots"})


def read_source(source: SourceConfig, context: ReadContext) -> SourceResult:
    """Read one source with the reader of its kind; a SourceError becomes its error line."""
    reader = READERS[source.kind]
    try:
        return reader(source, context)
    except SourceError as exc:
        return SourceResult(source.name, errors=(exc.message,))


def read_sources(
    sources: Sequence[SourceConfig],
    context: ReadContext,
    *,
    on_done: Callable[[SourceResult], None] | None = None,
) -> list[SourceResult]:
    """Read every source, network ones concurrently; results keep the configured order.

    Local sources are read on this thread (they consult the store); network sources share one
    HTTP client on ``[fetch] concurrency`` worker threads.
    """
    results: dict[str, SourceResult] = {}
    for source in sources:
        if source.kind in LOCAL_KINDS:
            results[source.name] = read_source(source, context)
            if on_done is not None:
                on_done(results[source.name])
    remote = [s for s in sources if s.kind not in LOCAL_KINDS]
    if remote:
        from digest.sources.fetch import fetch_all, make_client

        settings = fetch_settings(context.config)
        with make_client(settings) as client:
            shared = dataclasses.replace(context, client=client, fetch_settings=settings)
            jobs = [(s.name, functools.partial(read_source, s, shared)) for s in remote]

            def finished(name: str, outcome: SourceResult | SourceError) -> None:
                result = outcome if isinstance(outcome, SourceResult) else SourceResult(name, errors=(outcome.message,))
                results[name] = result
                if on_done is not None:
                    on_done(result)

            fetch_all(jobs, max_workers=context.config.fetch.concurrency, on_done=finished)
    return [results[s.name] for s in sources]


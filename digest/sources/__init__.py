"""Sources: where papers come from.  One reader per ``kind``, found through ``READERS``.

A reader turns one configured source into a :class:`SourceResult`: the snapshots it read, and one
error line per thing that went wrong (a bad file, a failed fetch).  A reader never raises for bad
input: the run reports the error and goes on with the other sources.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Protocol

from digest.config import Config, SourceConfig
from digest.errors import SourceError
from digest.models import Snapshot
from digest.sources.snapshots import content_hash, inbox_files, read_snapshot


@dataclass(frozen=True, slots=True)
class SourceResult:
    """What one source gave in one run."""

    name: str
    snapshots: tuple[Snapshot, ...] = ()
    errors: tuple[str, ...] = ()
    not_modified: bool = False
    validators: tuple[str | None, str | None] | None = None  # (ETag, Last-Modified) to remember

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
    """What readers may use: the clock, the config, and what the store already ingested."""

    config: Config
    now: dt.datetime
    day: dt.date
    already_ingested: Callable[[Collection[str]], set[str]] = field(default=lambda hashes: set())
    validators: Callable[[str], tuple[str | None, str | None]] = field(default=lambda name: (None, None))


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
    hashes: dict[str, str] = {}
    errors: list[str] = []
    for path in files:
        try:
            hashes[str(path)] = content_hash(path.read_bytes())
        except OSError as exc:
            errors.append(f"{path}: cannot read: {exc.strerror}")
    done = context.already_ingested(set(hashes.values()))
    snapshots: list[Snapshot] = []
    taken: set[str] = set()
    for path in files:
        digest_of = hashes.get(str(path))
        if digest_of is None or digest_of in done or digest_of in taken:
            continue  # unreadable, ingested before, or a copy of a file read this run
        taken.add(digest_of)
        try:
            snapshots.append(read_snapshot(path, source=source.name, taken_at=context.now))
        except SourceError as exc:
            errors.append(exc.message)
    return SourceResult(source.name, tuple(snapshots), tuple(errors))


READERS: dict[str, SourceReader] = {
    "snapshots": read_snapshot_inbox,
}


def read_source(source: SourceConfig, context: ReadContext) -> SourceResult:
    """Read one source with the reader of its kind; any failure becomes an error line."""
    reader = READERS.get(source.kind)
    if reader is None:
        return SourceResult(source.name, errors=(f"source kind {source.kind!r} is not supported by this version",))
    try:
        return reader(source, context)
    except SourceError as exc:
        return SourceResult(source.name, errors=(exc.message,))

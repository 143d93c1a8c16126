"""Rebuild Digest values from the store, for deliveries that happen after the commit.

A recalled digest holds no paper: each group's papers (:class:`StoredPapers`) and the
placements (:class:`StoredPlacements`) are read from the store when a template iterates or
slices them.  The Markdown day page streams a big day one paper at a time, and the email and
the HTML/text pages, which show the first ``max_per_topic`` papers of each topic, read only
those.  Such a digest is valid while its store is open.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import overload

from digest.models import Digest, DigestCounts, Paper, Placement, TopicGroup
from digest.store import DigestRecord, SeenStore
from digest.topics import OTHER_CODE, Taxonomy


_KEPT_SLICE = 100  # papers: a longer slice (a whole big topic) is read again rather than held


class StoredPapers(Sequence[Paper]):
    """The papers stored digests filed under one topic, in digest then rank order, read on demand.

    ``len()`` is known up front; iterating reads the rows one at a time, and a slice reads only
    the rows it covers (``papers[:10]``).  A short slice is kept: the email's HTML and text
    parts, and each recipient's copy, take the same first ``max_per_topic`` of a topic.
    """

    __slots__ = ("_store", "_digest_ids", "_topic", "_count", "_slices")

    def __init__(self, store: SeenStore, digest_ids: tuple[int, ...], topic: str, count: int) -> None:
        self._store, self._digest_ids, self._topic, self._count = store, digest_ids, topic, count
        self._slices: dict[tuple[int, int], tuple[Paper, ...]] = {}

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Paper]:
        yield from self._store.iter_digest_papers(self._digest_ids, topic=self._topic)

    def _read(self, offset: int, limit: int) -> list[Paper]:
        return list(self._store.iter_digest_papers(self._digest_ids, topic=self._topic, offset=offset, limit=limit))

    @overload
    def __getitem__(self, index: int) -> Paper: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[Paper, ...]: ...

    def __getitem__(self, index: int | slice) -> Paper | tuple[Paper, ...]:
        if isinstance(index, slice):
            start, stop, step = index.indices(self._count)
            if step < 0:
                return tuple(self)[index]
            papers = self._slices.get((start, stop))
            if papers is None:
                papers = tuple(self._read(start, max(0, stop - start)))
                if len(papers) <= _KEPT_SLICE:
                    self._slices[start, stop] = papers
            return papers[::step]
        position = operator.index(index)
        if position < 0:
            position += self._count
        if not 0 <= position < self._count:
            raise IndexError("paper index out of range")
        return self._read(position, 1)[0]

    def __repr__(self) -> str:
        return f"StoredPapers(topic={self._topic!r}, digests={self._digest_ids!r}, count={self._count})"


class StoredPlacements(Mapping[str, Placement]):
    """Why each paper of stored digests went to its topic, by paper key, read on demand."""

    __slots__ = ("_store", "_digest_ids")

    def __init__(self, store: SeenStore, digest_ids: tuple[int, ...]) -> None:
        self._store, self._digest_ids = store, digest_ids

    def __getitem__(self, key: str) -> Placement:
        found = None
        for _, placement in self._store.placements(self._digest_ids, key):
            found = placement  # the last filing wins, as in a dict built in order
        if found is None:
            raise KeyError(key)
        return found

    def __iter__(self) -> Iterator[str]:
        seen: set[str] = set()
        for key, _ in self._store.placements(self._digest_ids):
            if key not in seen:
                seen.add(key)
                yield key

    def __len__(self) -> int:
        return sum(1 for _ in self)


def load_digest(store: SeenStore, records: Sequence[DigestRecord], taxonomy: Taxonomy, day: dt.date | None = None) -> Digest:
    """The stored digests ``records`` as one Digest: groups in taxonomy order, Other last.

    Topics no longer in the taxonomy (the user edited it since) come before Other, by code.
    The groups' papers and the placements are read from ``store`` when used (see the module).
    """
    ids = tuple(r.id for r in records)
    counts_by_topic = store.topic_counts(ids)
    groups = tuple(
        TopicGroup(code, title, StoredPapers(store, ids, code, counts_by_topic[code]))
        for code, title in topic_order(taxonomy, counts_by_topic)
    )
    counts = DigestCounts(
        entries=sum(r.counts.entries for r in records),
        new=sum(r.counts.new for r in records),
        already_seen=sum(r.counts.already_seen for r in records),
        duplicates=sum(r.counts.duplicates for r in records),
    )
    return Digest(day or records[0].date, groups, counts, StoredPlacements(store, ids))


def topic_order(taxonomy: Taxonomy, present: Iterable[str]) -> list[tuple[str, str]]:
    """(code, title) of the ``present`` topic codes: taxonomy order, then unknown codes by code, Other last.

    A code no longer in the taxonomy (the user edited it since) is its own title.
    """
    found = set(present)
    codes = taxonomy.codes()
    order = [*codes, *sorted(found - set(codes) - {OTHER_CODE}), OTHER_CODE]
    return [
        (code, taxonomy.title_of(code) if code in codes or code == OTHER_CODE else code) for code in order if code in found
    ]


def load_day(store: SeenStore, day: dt.date, taxonomy: Taxonomy) -> Digest:
    """Every digest stored for ``day`` as one Digest (the archive's day page)."""
    return load_digest(store, store.digests(on=day, newest_first=False), taxonomy, day)

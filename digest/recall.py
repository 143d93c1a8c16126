"""Rebuild Digest values from the store, for deliveries that happen after the commit."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from digest.models import Digest, DigestCounts, Paper, Placement, TopicGroup
from digest.store import DigestRecord, SeenStore
from digest.topics import OTHER_CODE, Taxonomy


def load_digest(store: SeenStore, records: Sequence[DigestRecord], taxonomy: Taxonomy, day: dt.date | None = None) -> Digest:
    """The stored digests ``records`` as one Digest: groups in taxonomy order, Other last.

    Topics no longer in the taxonomy (the user edited it since) come before Other, by code.
    """
    stored = store.digest_papers([r.id for r in records])
    by_topic: dict[str, list[Paper]] = {}
    placements: dict[str, Placement] = {}
    for item in stored:
        by_topic.setdefault(item.topic, []).append(item.paper)
        if item.why:
            placements[item.paper.key] = Placement(
                item.topic,
                float(item.why.get("score", 0.0)),
                tuple(item.why.get("evidence", ())),
                item.why.get("runner_up"),
                float(item.why.get("runner_up_score", 0.0)),
            )
    groups = tuple(TopicGroup(code, title, tuple(by_topic[code])) for code, title in topic_order(taxonomy, by_topic))
    counts = DigestCounts(
        entries=sum(r.counts.entries for r in records),
        new=sum(r.counts.new for r in records),
        already_seen=sum(r.counts.already_seen for r in records),
        duplicates=sum(r.counts.duplicates for r in records),
    )
    return Digest(day or records[0].date, groups, counts, placements)


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

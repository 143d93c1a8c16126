"""A digest read back from the store reads its papers on demand and equals what was committed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from digest.models import Digest, DigestCounts, Paper, Placement, TopicGroup
from digest.recall import StoredPapers, load_day, load_digest
from digest.store import SeenStore
from digest.topics import Taxonomy, Topic

NOW = dt.datetime(2025, 3, 14, 7, 0, tzinfo=dt.timezone.utc)
DAY = dt.date(2025, 3, 14)
TAXONOMY = Taxonomy((Topic("a", "Topic A", ""), Topic("b", "Topic B", "")))


def paper(n: int) -> Paper:
    return Paper(
        title=f"Paper {n}", abstract=f"Abstract of paper {n}.", url=f"https://arxiv.org/abs/2503.{n:05d}",
        arxiv_id=f"2503.{n:05d}", authors=("Ada", "Alan"), source="feed", position=n, published=DAY,
        categories=(("cs.LG", "stat.ML", "cs.AI", "math.OC"), (), ("hep-ph",))[n % 3],
    )


def committed(store: SeenStore, serial: int, sizes: dict[str, int]) -> Digest:
    """Commit a digest with ``sizes[code]`` papers per topic (numbered from ``serial``)."""
    n = serial
    groups, placements = [], {}
    for code, size in sizes.items():
        papers = tuple(paper(n + i) for i in range(size))
        n += size
        groups.append(TopicGroup(code, TAXONOMY.title_of(code), papers))
        for p in papers:
            placements[p.key] = Placement(code, 2.5, (f'"{p.title}" (title)',), "b" if code != "b" else None, 1.25)
    digest = Digest(DAY, tuple(groups), DigestCounts(n - serial, n - serial, 0, 0), placements)
    store.commit(digest, store.diff(digest.papers), now=NOW)
    return digest


def test_a_recalled_day_has_the_committed_groups_papers_and_placements(tmp_path: Path) -> None:
    with SeenStore.open(tmp_path / "s.sqlite3") as store:
        first = committed(store, 0, {"b": 3, "a": 4, "other": 2})
        second = committed(store, 100, {"a": 2})  # a second run the same day
        day = load_day(store, DAY, TAXONOMY)
        assert [(g.code, g.title, len(g.papers)) for g in day.groups] == [
            ("a", "Topic A", 6), ("b", "Topic B", 3), ("other", "Other", 2)
        ]
        by_code = {g.code: list(g.papers) for g in (*first.groups, *second.groups) if g.code != "a"}
        by_code["a"] = [*first.groups[1].papers, *second.groups[0].papers]  # digest then rank order
        for group in day.groups:
            assert list(group.papers) == by_code[group.code]
            assert isinstance(group.papers, StoredPapers)
        assert day.size == 11 and day.counts == DigestCounts(11, 11, 0, 0)
        expected = {**first.placements, **second.placements}
        assert dict(day.placements) == expected and len(day.placements) == 11
        some = first.groups[0].papers[1]
        assert day.placements[some.key] == expected[some.key]
        assert day.placements.get("arxiv:9999.99999") is None


def test_stored_papers_slice_and_index_like_a_tuple(tmp_path: Path) -> None:
    with SeenStore.open(tmp_path / "s.sqlite3") as store:
        committed(store, 0, {"a": 7})
        record = store.digests()[0]
        papers = load_digest(store, [record], TAXONOMY).groups[0].papers
        whole = tuple(papers)
        assert len(whole) == len(papers) == 7
        for index in (slice(None, 3), slice(None, 10), slice(2, 5), slice(5, 2), slice(1, None, 2), slice(None, None, -1),
                      slice(-3, None), slice(0, 0)):
            assert papers[index] == whole[index], index
        assert papers[0] == whole[0] and papers[-1] == whole[-1] and papers[4] == whole[4]
        with pytest.raises(IndexError):
            papers[7]
        assert whole[3] in papers and papers.index(whole[3]) == 3


def test_the_run_report_keeps_everything_but_the_abstracts(tmp_path: Path) -> None:
    from digest.pipeline import report_digest

    with SeenStore.open(tmp_path / "s.sqlite3") as store:
        digest = committed(store, 0, {"a": 3, "b": 2})
    light = report_digest(digest)
    assert light.counts == digest.counts and light.placements == digest.placements and light.date == digest.date
    assert [(g.code, g.title, g.description) for g in light.groups] == [(g.code, g.title, g.description) for g in digest.groups]
    for full, slim in zip(digest.papers, light.papers, strict=True):
        assert slim.abstract == "" and full.abstract
        assert slim.keys == full.keys and slim.key == full.key
        assert (slim.title, slim.url, slim.arxiv_id, slim.doi, slim.authors, slim.source, slim.position, slim.upvotes, slim.published) == (
            full.title, full.url, full.arxiv_id, full.doi, full.authors, full.source, full.position, full.upvotes, full.published
        )


def test_releasing_free_memory_is_harmless_anywhere() -> None:
    from digest.memory import release_free_memory

    garbage = [b"x" * 2000 for _ in range(1000)]
    del garbage
    release_free_memory()  # glibc: malloc_trim(0); elsewhere nothing
    release_free_memory()


def test_a_store_before_the_rank_index_opened_read_only_is_recalled_alike(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    with SeenStore.open(path) as store:
        committed(store, 0, {"b": 3, "a": 4})
        expected = [(g.code, list(g.papers), g.papers[:2]) for g in load_day(store, DAY, TAXONOMY).groups]
        store.db.execute("DROP INDEX digest_papers_by_rank")  # the store as schema 2 left it
        store.db.execute("CREATE INDEX digest_papers_by_topic ON digest_papers(topic, digest_id)")
        store.db.execute("PRAGMA user_version = 2")
    with SeenStore.open(path, readonly=True) as store:
        assert store.schema_version == 2
        assert [(g.code, list(g.papers), g.papers[:2]) for g in load_day(store, DAY, TAXONOMY).groups] == expected


def test_a_schema_4_store_opened_read_only_is_recalled_with_no_categories(tmp_path: Path) -> None:
    """``digest site`` on a store no newer digest has opened yet: no categories column to read."""
    from tests.test_store import store_from_dump

    path = tmp_path / "old.sqlite3"
    store_from_dump(path)
    with SeenStore.open(path, readonly=True) as store:
        assert store.schema_version == 4
        old = {d: [(g.code, list(g.papers)) for g in load_day(store, d, TAXONOMY).groups] for d in (DAY, DAY + dt.timedelta(1))}
    assert sum(len(papers) for groups in old.values() for _, papers in groups) == 7
    assert {p.categories for groups in old.values() for _, papers in groups for p in papers} == {()}
    with SeenStore.open(path) as store:  # migrated: the same papers, still without categories
        assert {d: [(g.code, list(g.papers)) for g in load_day(store, d, TAXONOMY).groups] for d in old} == old

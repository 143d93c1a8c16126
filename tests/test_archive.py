"""The Markdown archive: day pages, index, topic pages and feed, rebuilt from the store."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import feedparser
import markdown
import pytest
import yaml

from tests.conftest import FIXTURES, REPLAY, REPO, run_digest
from digest.config import load_config
from digest.deliver import DeliveryContext
from digest.deliver.archive import ArchiveChannel, write_archive_pages
from digest.models import Digest, DigestCounts, Paper, TopicGroup
from digest.render import Renderer, anchor_for_key
from digest.store import SeenStore
from digest.topics import default_taxonomy_path, load_taxonomy

Replayed = tuple[Path, dict[str, dict[str, Any]]]
NOW = dt.datetime(2025, 3, 14, 7, 0, tzinfo=dt.timezone.utc)
DAY_LINK = re.compile(r"\]\((\d{4})/(\d{2})/(\d{4}-\d{2}-\d{2})\.md\) \((\d+) papers?\)")
TOPIC_LINK = re.compile(r"\]\(\.\./\.\./(\d{4})/(\d{2})/(\d{4}-\d{2}-\d{2})\.md#([a-z0-9-]+)\)")
MONTH_LINK = re.compile(r"\]\(([a-z0-9-]+)/(\d{4}-\d{2})\.md\) \((\d+) papers?\)")


@pytest.fixture
def copy(replayed: Replayed, tmp_path: Path) -> Path:
    """A private copy of the replayed folder (config paths are relative, so it works as is)."""
    target = tmp_path / "copy"
    shutil.copytree(replayed[0], target)
    return target


def front_matter(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("---\n")
    data = yaml.safe_load(text[4 : text.index("\n---\n", 4)])
    assert isinstance(data, dict)
    return data


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_each_day_page_has_front_matter_with_its_counts(replayed: Replayed) -> None:
    folder, _ = replayed
    archive = folder / "archive"
    pages = sorted(archive.glob("[0-9]*/*/*.md"))
    assert [p.relative_to(archive).as_posix() for p in pages] == [f"{d[:4]}/{d[5:7]}/{d}.md" for _, d, _ in REPLAY]
    for page, (_, day, expected) in zip(pages, REPLAY):
        meta = front_matter(page)
        assert meta["count"] == expected
        assert meta["date"] == dt.date.fromisoformat(day)
        assert meta["title"] == f"Daily papers digest - {day}"
        assert sum(meta["topics"].values()) == expected


def test_the_index_lists_every_day_newest_first_grouped_by_month(replayed: Replayed) -> None:
    folder, summaries = replayed
    text = (folder / "archive" / "index.md").read_text(encoding="utf-8")
    assert front_matter(folder / "archive" / "index.md") == {"title": "Daily papers digest", "count": 315, "days": 4}
    listed = [(m[3], int(m[4])) for m in DAY_LINK.finditer(text)]
    assert listed == [(day, count) for _, day, count in reversed(REPLAY)]
    assert text.index("## May 2025") < text.index("2025-05-06.md") < text.index("## March 2025") < text.index("2025-03-14.md")
    filed = {g["topic"] for summary in summaries.values() for g in summary["groups"]}
    for code in filed:
        assert f"](topics/{code}.md)" in text


def test_topic_landing_and_month_pages_list_exactly_the_papers_filed_under_it(replayed: Replayed) -> None:
    folder, summaries = replayed
    expected: dict[str, list[tuple[str, str]]] = {}
    for day in sorted(summaries, reverse=True):  # newest first, each day in digest order
        for group in summaries[day]["groups"]:
            expected.setdefault(group["topic"], []).extend((day, anchor_for_key(p["key"])) for p in group["papers"])
    topics = folder / "archive" / "topics"
    landings = sorted(topics.glob("*.md"))
    assert sorted(p.stem for p in landings) == sorted(expected)
    for landing in landings:
        code = landing.stem
        months = [(m[2], int(m[3])) for m in MONTH_LINK.finditer(landing.read_text(encoding="utf-8")) if m[1] == code]
        assert [m for m, _ in months] == sorted({day[:7] for day, _ in expected[code]}, reverse=True), code  # newest first
        assert sorted(p.stem for p in (topics / code).glob("*.md")) == sorted(m for m, _ in months)  # no other page
        assert front_matter(landing)["count"] == len(expected[code]) == sum(n for _, n in months)
        listed: list[tuple[str, str]] = []
        for month, count in months:
            page = topics / code / f"{month}.md"
            links = [(m[3], m[4]) for m in TOPIC_LINK.finditer(page.read_text(encoding="utf-8"))]
            assert len(links) == count == front_matter(page)["count"] and front_matter(page)["month"] == month
            assert all(day.startswith(month) for day, _ in links)
            listed.extend(links)
        assert listed == expected[code], code
        for day, anchor in listed:  # every link lands on a heading of the day page
            assert f"{{#{anchor}}}" in (folder / "archive" / day[:4] / day[5:7] / f"{day}.md").read_text(encoding="utf-8")


def test_a_run_renders_only_the_month_pages_of_its_days(copy: Path) -> None:
    topics = copy / "archive" / "topics"
    missing = topics / "audio" / "2025-03.md"
    missing.unlink()  # a missing month page (an archive from before month pages) is written by the next run
    march = sorted(topics.glob("*/2025-03.md"))
    assert march
    for page in march:  # a run in May must not even render March's pages: it would undo this
        page.write_text(page.read_text(encoding="utf-8") + "\nedited\n", encoding="utf-8")
    stamps = {page: (page.stat().st_ino, page.stat().st_mtime_ns) for page in march}
    may = {page: page.stat().st_ino for page in topics.glob("*/2025-05.md")}
    shutil.copy(FIXTURES / "snapshots" / "blank-lines.txt", copy / "inbox")
    summary = json.loads(run_digest(copy, "run", "--date", "2025-05-07", "--json", check_code=0).stdout)
    assert summary["new"] == 3
    assert {page: (page.stat().st_ino, page.stat().st_mtime_ns) for page in march} == stamps
    assert missing.is_file() and "2025-03-11.md#" in missing.read_text(encoding="utf-8")
    for group in summary["groups"]:
        page = topics / group["topic"] / "2025-05.md"
        assert page.stat().st_ino != may.get(page), page  # rewritten (or new)
        assert "2025-05-07.md#" in page.read_text(encoding="utf-8")
    run_digest(copy, "site", "--rebuild", check_code=0)  # the rebuild renders every month page again
    assert not any("edited" in page.read_text(encoding="utf-8") for page in march)


def month_pages_after_a_run(
    copy: Path, monkeypatch: pytest.MonkeyPatch, day: dt.date, *, templates: Path | None = None
) -> tuple[dict[str, str], list[str]]:
    """Commit and deliver a digest of two new inference papers on ``day`` (in process); return the
    archive's month pages as written, and the pages the run rendered whole instead of splicing."""
    from digest.deliver import archive

    if templates is not None:
        (copy / "digest.toml").write_text(
            (copy / "digest.toml").read_text(encoding="utf-8") + f'\n[render]\ntemplates = "{templates}"\n', encoding="utf-8"
        )
    config = load_config(copy / "digest.toml")
    taxonomy, renderer = load_taxonomy(default_taxonomy_path()), Renderer(config.render.templates)
    papers = tuple(Paper(title=f"Speculative decoding note {n} of {day}") for n in (1, 2))
    whole: list[str] = []
    real = archive.render_topic_month_md

    def spy(store: SeenStore, index: Any, topic: Any, month: Any, *args: Any) -> str:
        whole.append(f"{topic.code}/{month.month}")
        return real(store, index, topic, month, *args)

    monkeypatch.setattr(archive, "render_topic_month_md", spy)
    with SeenStore.open(config.store.path) as store:
        digest = Digest(day, (TopicGroup("inference", "Inference", papers),), DigestCounts(2, 2, 0, 0))
        store.commit(digest, store.diff(papers), channels=[("archive", "")], now=NOW)
        result = ArchiveChannel().deliver(store.pending_deliveries("archive"), DeliveryContext(store, config, taxonomy, renderer, NOW))
        assert not result.failed
        written = {
            str(path.relative_to(config.archive.dir / "topics")): path.read_text(encoding="utf-8")
            for path in sorted((config.archive.dir / "topics").glob("*/*.md"))
        }
        monkeypatch.setattr(archive, "render_topic_month_md", real)
        write_archive_pages(store, config, taxonomy, renderer)  # every month page rendered whole from the store
        rebuilt = {
            str(path.relative_to(config.archive.dir / "topics")): path.read_text(encoding="utf-8")
            for path in sorted((config.archive.dir / "topics").glob("*/*.md"))
        }
    page = f"inference/{day:%Y-%m}.md"
    assert written[page] == rebuilt[page]  # splice or not, what a run writes is what the store renders
    if templates is None:  # (a changed template shows on the pages a run writes, the rest keep theirs)
        assert written == rebuilt
    return written, whole


def test_a_run_splices_its_day_into_the_month_page_on_disk(copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pages, whole = month_pages_after_a_run(copy, monkeypatch, dt.date(2025, 3, 20))
    assert whole == []  # the newest day of March: spliced in front of the page's older days
    march = pages["inference/2025-03.md"]
    assert march.index("## [Thursday 20 March 2025]") < march.index("## [Friday 14 March 2025]") < march.index("## [Tuesday 11 March 2025]")


def test_a_page_that_cannot_be_spliced_is_rendered_whole(copy: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    inference = copy / "archive" / "topics" / "inference" / "2025-03.md"
    text = inference.read_text(encoding="utf-8")
    older = text.index("## [Friday 14 March 2025]")
    inference.write_text(text[:older] + text[older:].replace("- [", "- [Edited ", 1), encoding="utf-8")
    _, whole = month_pages_after_a_run(copy, monkeypatch, dt.date(2025, 3, 20))
    assert whole == ["inference/2025-03"]  # the older day's section is not on disk as the store renders it

    footer = tmp_path / "templates" / "archive"
    footer.mkdir(parents=True)
    template = (REPO / "templates" / "archive" / "topic-month.md.j2").read_text(encoding="utf-8")
    (footer / "topic-month.md.j2").write_text(template + "\nEnd of {{ month.label }}.\n", encoding="utf-8")
    _, whole = month_pages_after_a_run(copy, monkeypatch, dt.date(2025, 3, 21), templates=footer.parent)
    assert whole == ["inference/2025-03"]  # something follows the day sections: no cut is safe


def test_a_day_before_the_newest_of_its_month_is_rendered_whole(copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pages, whole = month_pages_after_a_run(copy, monkeypatch, dt.date(2025, 3, 12))  # between the 11th and the 13th
    assert whole == ["inference/2025-03"]
    march = pages["inference/2025-03.md"]
    assert march.index("## [Thursday 13 March 2025]") < march.index("## [Wednesday 12 March 2025]") < march.index("## [Tuesday 11 March 2025]")


def test_the_feed_is_valid_atom_with_one_entry_per_day_and_per_week(replayed: Replayed) -> None:
    folder, summaries = replayed
    feed = feedparser.parse((folder / "archive" / "feed.xml").read_bytes())
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == "atom10"
    assert feed.feed.title == "Daily papers digest"
    assert [e.link for e in feed.entries] == [f"{d[:4]}/{d[5:7]}/{d}.html" for _, d, _ in reversed(REPLAY)] + [
        "weeks/2025-W19.html", "weeks/2025-W11.html"
    ]
    assert len({e.id for e in feed.entries}) == 6
    assert feed.entries[5].title == "Daily papers digest — week 2025-W11: 237 new papers"
    assert feed.entries[0].title == "Daily papers digest — Tuesday 6 May 2025: 78 new papers"
    newest = summaries["2025-05-06"]["groups"][0]
    assert f"{newest['title']} ({len(newest['papers'])})" in feed.entries[0].summary


def test_rebuilds_are_byte_identical_and_need_only_the_store(copy: Path) -> None:
    before = files_of(copy / "archive")
    run_digest(copy, "site", "--rebuild", check_code=0)
    assert files_of(copy / "archive") == before  # what the runs wrote is what the store rebuilds
    shutil.rmtree(copy / "archive")
    run_digest(copy, "site", "--rebuild", check_code=0)
    assert files_of(copy / "archive") == before


def test_a_crash_mid_write_leaves_every_file_whole(copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(copy / "digest.toml")
    toml = (copy / "digest.toml").read_text(encoding="utf-8") + '\n[archive]\ntitle = "Renamed digest"\n'
    (copy / "digest.toml").write_text(toml, encoding="utf-8")
    renamed = load_config(copy / "digest.toml")
    taxonomy, renderer = load_taxonomy(default_taxonomy_path()), Renderer()
    archive = copy / "archive"
    old = files_of(archive)
    real_replace, calls = os.replace, []

    def crash_on_second(src: Any, dst: Any) -> None:  # the title is on the index (1st) and the feed (2nd)
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    with SeenStore.open(config.store.path) as store:
        with monkeypatch.context() as patch:
            patch.setattr(os, "replace", crash_on_second)
            with pytest.raises(OSError):
                write_archive_pages(store, renamed, taxonomy, renderer)
        middle = files_of(archive)
        write_archive_pages(store, renamed, taxonomy, renderer)
    new = files_of(archive)
    assert set(middle) == set(old)  # no temp file left behind
    changed = [name for name in old if middle[name] != old[name]]
    assert changed == ["index.md"] and middle["index.md"] == new["index.md"]  # the one renamed before the crash is whole
    assert new["feed.xml"] != old["feed.xml"]
    assert all(middle[name] == old[name] for name in old if name not in changed)  # the rest untouched
    assert "Renamed digest" in new["index.md"].decode()


def test_a_failed_archive_write_stays_pending_and_the_next_run_delivers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "digest.toml").write_text("", encoding="utf-8")
    config = load_config(tmp_path / "digest.toml")
    taxonomy = load_taxonomy(default_taxonomy_path())
    with SeenStore.open(config.store.path) as store:
        digest = Digest(dt.date(2025, 3, 14), (TopicGroup("inference", "Inference", (Paper(title="One"),)),), DigestCounts(1, 1, 0, 0))
        store.commit(digest, store.diff(digest.papers), channels=[("archive", "")], now=NOW)
        context = DeliveryContext(store, config, taxonomy, Renderer(), NOW)
        real_replace = os.replace

        def full_disk_for_the_index(src: Any, dst: Any) -> None:
            if str(dst).endswith("index.md"):
                raise OSError(28, "No space left on device", str(dst))
            real_replace(src, dst)

        with monkeypatch.context() as patch:
            patch.setattr(os, "replace", full_disk_for_the_index)
            result = ArchiveChannel().deliver(store.pending_deliveries("archive"), context)
        assert result.failed
        (pending,) = store.pending_deliveries("archive")
        assert pending.last_error is not None and "index.md: No space left on device" in pending.last_error
        result = ArchiveChannel().deliver(store.pending_deliveries("archive"), context)
        assert not result.failed and store.pending_deliveries("archive") == []
    assert (config.archive.dir / "index.md").is_file() and (config.archive.dir / "topics" / "inference.md").is_file()
    assert (config.archive.dir / "topics" / "inference" / "2025-03.md").is_file()


HOSTILE = Paper(
    title="<script>alert(1)</script> [click](https://evil.example) *bold* `code` 256*256 & block_out\nnext line",
    abstract="Uses <RET> tokens & [1] refs.",
    arxiv_id="2401.00001",
)


def test_feed_text_is_data_in_every_archive_file(tmp_path: Path) -> None:
    (tmp_path / "digest.toml").write_text("", encoding="utf-8")
    config = load_config(tmp_path / "digest.toml")
    taxonomy = load_taxonomy(default_taxonomy_path())
    with SeenStore.open(config.store.path) as store:
        digest = Digest(dt.date(2025, 3, 14), (TopicGroup("inference", "Inference", (HOSTILE,)),), DigestCounts(1, 1, 0, 0))
        store.commit(digest, store.diff(digest.papers), channels=[("archive", "")], now=NOW)
        ArchiveChannel().deliver(store.pending_deliveries("archive"), DeliveryContext(store, config, taxonomy, Renderer(), NOW))
    archive = config.archive.dir
    topic = (archive / "topics" / "inference" / "2025-03.md").read_text(encoding="utf-8")
    (line,) = [l for l in topic.splitlines() if "alert" in l]
    rendered = markdown.markdown(line)
    assert "<script" not in rendered and "<em>" not in rendered and "<code>" not in rendered
    assert 'href="https://evil' not in rendered and "256*256" in rendered and "block_out" in rendered
    feed = feedparser.parse((archive / "feed.xml").read_bytes())
    assert not feed.bozo
    assert "<script>alert(1)</script> [click](https://evil.example) *bold*" in feed.entries[0].content[0].value.replace("&lt;", "<").replace("&gt;", ">")
    assert "<script>" not in (archive / "feed.xml").read_text(encoding="utf-8")


def test_mkdocs_builds_the_archive_strictly_with_the_example_config(replayed: Replayed, tmp_path: Path) -> None:
    folder, _ = replayed
    config = yaml.safe_load((REPO / "config" / "mkdocs.yml").read_text(encoding="utf-8"))
    config["docs_dir"] = str(folder / "archive")
    config["site_dir"] = str(tmp_path / "mkdocs-site")
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(tmp_path / "mkdocs.yml")],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    site = tmp_path / "mkdocs-site"
    assert (site / "index.html").is_file() and (site / "feed.xml").is_file()
    day = (site / "2025" / "03" / "2025-03-14" / "index.html").read_text(encoding="utf-8")
    assert 'id="architecture"' in day
    landing = (site / "topics" / "audio" / "index.html").read_text(encoding="utf-8")
    assert 'href="2025-03/"' in landing
    month = (site / "topics" / "audio" / "2025-03" / "index.html").read_text(encoding="utf-8")
    assert 'href="../../../2025/03/2025-03-11/#p-title-' in month


class LongArchive:
    """An archive of many days over several months, delivered day by day in process as runs do."""

    def __init__(self, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        from digest.deliver import archive

        (folder / "digest.toml").write_text("", encoding="utf-8")
        self.config = load_config(folder / "digest.toml")
        self.taxonomy, self.renderer = load_taxonomy(default_taxonomy_path()), Renderer()
        self.store = SeenStore.open(self.config.store.path)
        self.since: list[dt.date | None] = []  # the range of each index loaded
        real = archive.load_archive_index

        def spy(store: SeenStore, taxonomy: Any, *, since: dt.date | None = None) -> Any:
            self.since.append(since)
            return real(store, taxonomy, since=since)

        monkeypatch.setattr(archive, "load_archive_index", spy)

    def run(self, day: dt.date, papers: int = 3) -> None:
        """Commit a digest of ``papers`` papers over two topics on ``day`` and deliver its archive row."""
        made = [Paper(title=f"Paper {n} of {day}") for n in range(papers)]
        groups = (TopicGroup("inference", "Inference", tuple(made[::2])), TopicGroup("audio", "Audio", tuple(made[1::2])))
        digest = Digest(day, tuple(g for g in groups if g.papers), DigestCounts(papers, papers, 0, 0))
        self.store.commit(digest, self.store.diff(digest.papers), channels=[("archive", "")], now=NOW)
        context = DeliveryContext(self.store, self.config, self.taxonomy, self.renderer, NOW)
        assert not ArchiveChannel().deliver(self.store.pending_deliveries("archive"), context).failed

    def files(self) -> dict[str, bytes]:
        return files_of(self.config.archive.dir)

    def rebuilt(self) -> dict[str, bytes]:
        """The archive as the whole store renders it (every page whole), left on disk."""
        write_archive_pages(self.store, self.config, self.taxonomy, self.renderer)
        return self.files()


@pytest.fixture
def long_archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    archive = LongArchive(tmp_path, monkeypatch)
    day = dt.date(2024, 11, 3)
    while day < dt.date(2025, 3, 20):  # 69 days over five months, more than the feed's 50
        archive.run(day)
        day += dt.timedelta(days=2)
    yield archive
    archive.store.close()


def test_a_run_reads_only_its_months_and_writes_what_the_whole_store_renders(long_archive: LongArchive) -> None:
    long_archive.since.clear()
    long_archive.run(dt.date(2025, 3, 22))
    # The run's index: March (the run's month), February (the newest older day: its index
    # section follows March's) and the feed's 50 newest days, back to mid-December.
    assert long_archive.since == [dt.date(2024, 12, 1)]
    written = long_archive.files()
    index = written["index.md"].decode()
    assert "count: 210\ndays: 70\n" in index and "210 papers in 70 daily digests" in index
    assert index.index("## March 2025") < index.index("## February 2025") < index.index("## November 2024")
    assert "[Sunday 3 November 2024](2024/11/2024-11-03.md) (3 papers)" in index
    topic = written["topics/inference.md"].decode()
    assert "count: 140\nmonths: 5\n" in topic and "[November 2024](inference/2024-11.md) (28 papers)" in topic
    assert written == long_archive.rebuilt()  # the spliced index and the run's counts are the whole store's


def test_a_backfilled_day_a_missing_page_and_an_edited_index_are_rendered_right(long_archive: LongArchive) -> None:
    folder = long_archive.config.archive.dir
    (folder / "topics" / "audio" / "2024-11.md").unlink()  # a month page older than the run's index
    long_archive.since.clear()
    long_archive.run(dt.date(2025, 3, 22))
    assert long_archive.since == [dt.date(2024, 12, 1), None]  # the whole index, once, for the missing page
    assert long_archive.files() == long_archive.rebuilt()

    index = folder / "index.md"  # a hand edit of an older month's first line: the splice would keep it
    index.write_text(index.read_text(encoding="utf-8").replace("(3 papers)", "(three papers)"), encoding="utf-8")
    long_archive.since.clear()
    long_archive.run(dt.date(2025, 3, 24))
    assert long_archive.since == [dt.date(2024, 12, 1), None]
    assert long_archive.files() == long_archive.rebuilt()

    long_archive.since.clear()
    long_archive.run(dt.date(2024, 11, 4))  # a day far back: its months on are read, the rest spliced
    assert long_archive.since == [dt.date(2024, 11, 1)]
    written = long_archive.files()
    assert "[Monday 4 November 2024](2024/11/2024-11-04.md) (3 papers)" in written["index.md"].decode()
    assert written == long_archive.rebuilt()


def test_a_day_whose_page_failed_is_still_on_the_index_the_store_counts(long_archive: LongArchive, monkeypatch: pytest.MonkeyPatch) -> None:
    from digest.deliver import archive

    store = long_archive.store
    for day in (dt.date(2025, 1, 20), dt.date(2025, 3, 22)):  # an older month's day and a new one, both pending
        made = (Paper(title=f"Late paper of {day}"),)
        digest = Digest(day, (TopicGroup("inference", "Inference", made),), DigestCounts(1, 1, 0, 0))
        store.commit(digest, store.diff(made), channels=[("archive", "")], now=NOW)
    real = archive.write_digest_files

    def full_disk_for_january(digest: Digest, *args: Any, **kwargs: Any) -> dict[str, Path]:
        if digest.date == dt.date(2025, 1, 20):
            raise OSError(28, "No space left on device")
        return real(digest, *args, **kwargs)

    monkeypatch.setattr(archive, "write_digest_files", full_disk_for_january)
    context = DeliveryContext(store, long_archive.config, long_archive.taxonomy, long_archive.renderer, NOW)
    assert ArchiveChannel().deliver(store.pending_deliveries("archive"), context).failed
    index = (long_archive.config.archive.dir / "index.md").read_text(encoding="utf-8")
    assert "2025-01-20.md) (4 papers)" in index and "2025-03-22.md) (1 paper)" in index  # as the header counts them
    assert long_archive.files() == long_archive.rebuilt()


def test_the_feeds_oldest_week_counts_the_whole_week_not_the_days_left_in_the_feed(tmp_path: Path) -> None:
    (tmp_path / "digest.toml").write_text("", encoding="utf-8")
    config = load_config(tmp_path / "digest.toml")
    first = dt.date(2025, 1, 1)  # a Wednesday; 52 days to Saturday 21 February: the feed's 50 start on Friday 3 January
    with SeenStore.open(config.store.path) as store:
        for n in range(52):
            day = first + dt.timedelta(days=n)
            papers = (Paper(title=f"Paper of {day.isoformat()}", abstract="About it.", arxiv_id=f"2501.{n:05d}"),)
            store.commit(Digest(day, (TopicGroup("inference", "Inference & serving", papers),), DigestCounts(1, 1)),
                         store.diff(papers), now=dt.datetime.combine(day, dt.time(7), tzinfo=dt.timezone.utc))
        write_archive_pages(store, config, load_taxonomy(default_taxonomy_path()), Renderer(None))
    feed = feedparser.parse((config.archive.dir / "feed.xml").read_bytes())
    weeks = {e.link: e.title for e in feed.entries if "weeks/" in e.link}
    assert weeks["weeks/2025-W01.html"] == "Daily papers digest — week 2025-W01: 5 new papers"  # Wednesday 1 to Sunday 5 January

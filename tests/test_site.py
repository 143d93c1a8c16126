"""``digest site``: the static HTML build of the archive."""

from __future__ import annotations

import datetime as dt
import html.parser
import json
import posixpath
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from tests.conftest import FIXTURES, REPLAY, REPO, run_digest
from digest.archive_site import SiteBuilder, build_site, check_links
from digest.config import load_config
from digest.store import SeenStore
from tests.httpserver import TestServer

Replayed = tuple[Path, dict[str, dict[str, Any]]]


class Links(html.parser.HTMLParser):
    """Every href/src and every id of an HTML document."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()
        self.scripts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src") and value is not None:
                self.links.append(value)
            if name == "id" and value:
                self.ids.add(value)
        if tag == "script":
            self.scripts.append(dict(attrs).get("src") or "inline")


def parse(path: Path) -> Links:
    parser = Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


@pytest.fixture
def built(replayed: Replayed, tmp_path: Path) -> Path:
    """A copy of the replayed folder with its site built by ``digest site``."""
    folder = tmp_path / "copy"
    shutil.copytree(replayed[0], folder)
    result = run_digest(folder, "site", check_code=0)
    assert result.stdout.splitlines()[-1] == f"index: {folder / 'site' / 'index.html'}"
    return folder


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_site_has_every_page_the_feed_and_the_search_index(built: Path, replayed: Replayed) -> None:
    site = built / "site"
    for _, day, _ in REPLAY:
        assert (site / day[:4] / day[5:7] / f"{day}.html").is_file()
    months: dict[str, set[str]] = {}
    for day, summary in replayed[1].items():
        for group in summary["groups"]:
            months.setdefault(group["topic"], set()).add(day[:7])
    assert {p.stem for p in (site / "topics").glob("*.html")} == set(months)
    for code, filed in months.items():  # a landing page per topic, a page per month it has papers in
        assert {p.stem for p in (site / "topics" / code).glob("*.html")} == filed
        landing = parse(site / "topics" / f"{code}.html")
        assert [link for link in landing.links if link.startswith(f"{code}/")] == [f"{code}/{m}.html" for m in sorted(filed, reverse=True)]
    assert (site / "feed.xml").read_bytes() == (built / "archive" / "feed.xml").read_bytes()
    shards = json.loads((site / "search" / "index.json").read_text(encoding="utf-8"))
    assert shards == ["2025-05.json", "2025-03.json"]
    titles = [row for shard in shards for row in json.loads((site / "search" / shard).read_text(encoding="utf-8"))]
    assert len(titles) == 315
    assert {row[1] for row in titles} == {day for _, day, _ in REPLAY}
    index = (site / "index.html").read_text(encoding="utf-8")
    assert [index.index(f"{d[:4]}/{d[5:7]}/{d}.html") for _, d, _ in reversed(REPLAY)] == sorted(
        index.index(f"{d[:4]}/{d[5:7]}/{d}.html") for _, d, _ in REPLAY
    )  # newest first
    assert (site / "assets" / "style.css").is_file() and (site / "assets" / "search.js").is_file()
    assert "prefers-color-scheme: dark" in (site / "assets" / "style.css").read_text(encoding="utf-8")


def test_every_link_of_the_built_site_resolves(built: Path) -> None:
    site = built / "site"
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 15
    parsed = {p.relative_to(site).as_posix(): parse(p) for p in pages}
    checked = 0
    for name, page in parsed.items():
        assert page.scripts == ["../" * name.count("/") + "assets/search.js"], name  # no script from a feed
        for link in page.links:
            parts = urlsplit(link)
            if parts.scheme or link.startswith("//"):
                assert parts.scheme in ("http", "https"), (name, link)
                continue
            target = posixpath.normpath(posixpath.join(posixpath.dirname(name), unquote(parts.path))) if parts.path else name
            assert not target.startswith("../") and (site / target).is_file(), (name, link)
            if parts.fragment:
                assert parts.fragment in parsed[target].ids, (name, link)
            checked += 1
    assert checked > 500  # 315 from topic month pages to papers, the rest navigation


def test_a_second_build_renders_nothing_and_a_new_day_only_what_it_touches(built: Path) -> None:
    again = run_digest(built, "site", check_code=0)
    assert again.stdout.startswith("Site: ") and " 0 rendered, 0 removed" in again.stdout
    shutil.copy(FIXTURES / "snapshots" / "blank-lines.txt", built / "inbox")
    summary = json.loads(run_digest(built, "run", "--date", "2025-05-07", "--json", check_code=0).stdout)
    assert summary["new"] == 3
    topics = {page for g in summary["groups"] for page in (f"topics/{g['topic']}.html", f"topics/{g['topic']}/2025-05.html")}
    report = build_site(load_config(built / "digest.toml"))
    assert set(report.rendered) == {
        "2025/05/2025-05-07.html",  # the new day
        "2025/05/2025-05-06.html",  # its neighbour (a "next day" link), re-wrapped, not converted again
        "index.html",
        "feed.xml",
        "search/2025-05.json",
        "weeks/2025-W19.html",  # the new day's week
        *topics,
    }
    assert report.removed == ()
    neighbour = (built / "site" / "2025" / "05" / "2025-05-06.html").read_text(encoding="utf-8")
    assert 'rel="next"' in neighbour and "2025-05-07.html" in neighbour


def test_an_incremental_build_gives_the_files_of_a_full_build_and_reads_only_what_changed(
    built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(FIXTURES / "snapshots" / "blank-lines.txt", built / "inbox")
    summary = json.loads(run_digest(built, "run", "--date", "2025-05-07", "--json", check_code=0).stdout)
    config = load_config(built / "digest.toml")
    with SeenStore.open(config.store.path, readonly=True) as store:
        new_ids = [d.id for d in store.digests(on=dt.date(2025, 5, 7))]
    queried: list[tuple[str | None, tuple[int, ...]]] = []
    converted: list[str] = []
    filed_papers, markdown_body = SeenStore.filed_papers, SiteBuilder.markdown_body

    def record_query(self: SeenStore, *, topic: str | None = None, digest_ids: Any = None, per_topic: int | None = None) -> Any:
        queried.append((topic, tuple(digest_ids or ())))
        return filed_papers(self, topic=topic, digest_ids=digest_ids, per_topic=per_topic)

    def record_conversion(self: SiteBuilder, text: str) -> str:
        converted.append(text[:200])
        return markdown_body(self, text)

    checked: dict[str, str] = {}

    def record_check(out: Path, pages: Any, manifest: Any) -> Any:
        checked.update(pages)
        return check_links(out, checked.items(), manifest)

    monkeypatch.setattr(SeenStore, "filed_papers", record_query)
    monkeypatch.setattr(SiteBuilder, "markdown_body", record_conversion)
    monkeypatch.setattr("digest.archive_site.check_links", record_check)
    report = build_site(config)
    days = [text for text in converted if "\nweek: " not in text]
    assert len(days) == 1 and "2025-05-07" in days[0]  # the new day only; its neighbour is re-wrapped
    assert [text.split("\n")[2] for text in converted if "\nweek: " in text] == ["week: 2025-W19"]  # and its week
    # The month pages and the search shard read the new day's papers only: the other days' are reused.
    assert sorted(q for q in queried if q[0]) == sorted((g["topic"], tuple(new_ids)) for g in summary["groups"])
    assert [q for q in queried if not q[0]] == [(None, tuple(new_ids))]
    assert "search/2025-05.json" in report.rendered
    # The link check reads the new parts: the feed's new entry, the new day section of a month page.
    assert checked["feed.xml"].count("<entry>") == 2 and "2025-05-07" in checked["feed.xml"]  # the new day and its week
    month = f"topics/{summary['groups'][0]['topic']}/2025-05.html"
    assert "2025-05-07.html" in checked[month] and "2025-05-06.html" not in checked[month]
    monkeypatch.undo()
    full = tmp_path / "full"
    run_digest(built, "site", "--out", str(full), check_code=0)
    incremental, fresh = files_of(built / "site"), files_of(full)
    incremental.pop(".digest-site.json"), fresh.pop(".digest-site.json")
    assert incremental.keys() == fresh.keys()
    assert [name for name in incremental if incremental[name] != fresh[name]] == []


def test_rebuild_from_the_store_alone_gives_the_same_site(built: Path) -> None:
    before = files_of(built / "site")
    shutil.rmtree(built / "site")
    shutil.rmtree(built / "archive")
    result = run_digest(built, "site", "--rebuild", check_code=0)
    assert "removed" in result.stdout
    rebuilt = files_of(built / "site")
    rebuilt.pop(".digest-site.json"), before.pop(".digest-site.json")  # the build's cache (file times)
    assert rebuilt == before


def test_out_and_site_dir_choose_the_folder(built: Path, tmp_path: Path) -> None:
    out = tmp_path / "elsewhere"
    result = run_digest(built, "site", "--out", str(out), check_code=0)
    assert result.stdout.splitlines()[-1] == f"index: {out / 'index.html'}"
    (built / "digest.toml").write_text((built / "digest.toml").read_text() + '\n[archive]\nsite_dir = "public"\n', encoding="utf-8")
    assert load_config(built / "digest.toml").archive.site == built / "public"
    run_digest(built, "site", check_code=0)
    assert (built / "public" / "index.html").is_file()


def test_a_broken_link_from_a_user_template_is_an_error(built: Path) -> None:
    templates = built / "my-templates" / "site"
    templates.mkdir(parents=True)
    (templates / "index.html.j2").write_text(
        '{% extends "site/base.html.j2" %}{% block main %}<h2 id="topics">T</h2><a href="2025/03/2025-03-12.html">gone</a>'
        '<a href="topics/architecture.html#nowhere">x</a><a href="https://example.org/">ok</a>{% endblock %}',
        encoding="utf-8",
    )
    (built / "digest.toml").write_text((built / "digest.toml").read_text() + '\n[render]\ntemplates = "my-templates"\n', encoding="utf-8")
    result = run_digest(built, "site", check_code=1)
    assert result.stderr.splitlines()[1:] == [
        "error: index.html: broken link 2025/03/2025-03-12.html",
        "error: index.html: broken link topics/architecture.html#nowhere",
    ]
    run_digest(built, "site", check_code=1)  # not forgotten: the page stays out of the manifest


def test_a_broken_link_in_a_month_page_is_reported_again_until_fixed(built: Path) -> None:
    templates = built / "my-templates" / "site"
    templates.mkdir(parents=True)
    builtin = (REPO / "templates" / "site" / "topic-day.html.j2").read_text(encoding="utf-8")
    (templates / "topic-day.html.j2").write_text(builtin.replace("</section>", '<a href="#nowhere">x</a></section>'), encoding="utf-8")
    (built / "digest.toml").write_text((built / "digest.toml").read_text() + '\n[render]\ntemplates = "my-templates"\n', encoding="utf-8")
    first = run_digest(built, "site", check_code=1).stderr
    assert "topics/architecture/2025-03.html: broken link #nowhere" in first
    # The month pages are rendered again: their day sections on disk were never vouched for.
    shutil.copy(FIXTURES / "snapshots" / "blank-lines.txt", built / "inbox")
    run_digest(built, "run", "--date", "2025-05-07", check_code=0)
    again = run_digest(built, "site", check_code=1).stderr
    assert "topics/architecture/2025-03.html: broken link #nowhere" in again
    (templates / "topic-day.html.j2").write_text(builtin, encoding="utf-8")
    run_digest(built, "site", check_code=0)


def test_check_links_resolves_paths_folders_and_fragments(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.html").write_text("", encoding="utf-8")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "b.html").write_text('<h1 id="x">', encoding="utf-8")  # fragments are checked against the page on disk
    (tmp_path / "c.html").write_text('<p id="y">', encoding="utf-8")
    manifest = {"a/b.html": {}, "c.html": {}}
    page = '<a href="../c.html#y"></a><a href="../c.html#z"></a><a href="b.html#x"></a><a href="#x"></a>' \
        '<a href="../docs/"></a><a href="../../out.html"></a><a href="mailto:a@b.c"></a><img src="../missing.png">'
    checked, broken = check_links(tmp_path, [("a/b.html", page)], manifest)
    assert checked == 7
    assert broken == [("a/b.html", "../../out.html"), ("a/b.html", "../c.html#z"), ("a/b.html", "../missing.png")]


def test_feed_text_never_becomes_markup_in_the_site(tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()
    (tmp_path / "digest.toml").write_text('[[sources]]\nname = "inbox"\nkind = "snapshots"\npath = "inbox/"\n', encoding="utf-8")
    (tmp_path / "inbox" / "hostile.txt").write_text(
        "Mar 14\n\n<script>alert(1)</script> *Tokens* like <RET> and [x](https://evil.example)\n\n"
        "We append <RET> after each step; <img src=x onerror=alert(1)> never runs. 256*256 and block_out.\n",
        encoding="utf-8",
    )
    run_digest(tmp_path, "run", "--date", "2025-03-14", check_code=0)
    run_digest(tmp_path, "site", check_code=0)
    for page in (tmp_path / "site").rglob("*.html"):
        parsed = parse(page)
        assert "x" not in parsed.links and "https://evil.example" not in parsed.links, page
        assert len(parsed.scripts) == 1, page
    day = (tmp_path / "site" / "2025" / "03" / "2025-03-14.html").read_text(encoding="utf-8")
    assert "&lt;RET&gt;" in day and "256*256" in day and "block_out" in day


def test_site_has_help(built: Path) -> None:
    result = run_digest(built, "site", "--help", check_code=0)
    assert "--rebuild" in result.stdout and "--out" in result.stdout


def test_a_day_page_shows_each_papers_arxiv_categories_as_tags(tmp_path: Path, http_server: TestServer) -> None:
    url = http_server.add_file("/rss/cs.LG", FIXTURES / "feeds" / "arxiv_rss.xml", "application/rss+xml")
    (tmp_path / "digest.toml").write_text(f'[[sources]]\nname = "cs.LG"\nkind = "feed"\nurl = "{url}"\n', encoding="utf-8")
    run_digest(tmp_path, "run", "--date", "2024-01-23", check_code=0)
    markdown_page = (tmp_path / "archive" / "2024" / "01" / "2024-01-23.md").read_text(encoding="utf-8")
    assert "\n`cs.LG` `cs.AI` `cs.DB` +1\n" in markdown_page  # primary first, three, then how many more
    run_digest(tmp_path, "site", check_code=0)
    day = (tmp_path / "site" / "2024" / "01" / "2024-01-23.html").read_text(encoding="utf-8")
    assert "<p><code>cs.LG</code> <code>cs.AI</code> <code>cs.DB</code> +1</p>" in day
    assert "<p><code>q-bio.BM</code> <code>cs.LG</code></p>" in day
    assert ".day p code {" in (tmp_path / "site" / "assets" / "style.css").read_text(encoding="utf-8")

"""Sources through the whole pipeline: the real CLI, a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.conftest import FIXTURES
from tests.httpserver import Reply, TestServer

Cli = Callable[..., subprocess.CompletedProcess[str]]
CROSS = FIXTURES / "crossday"
FEEDS = FIXTURES / "feeds"


def feed_source(name: str, url: str, kind: str = "feed") -> str:
    return f'[[sources]]\nname = "{name}"\nkind = "{kind}"\nurl = "{url}"\n\n'


def test_the_same_paper_from_a_snapshot_an_arxiv_feed_and_hf_is_new_once(
    write_config: Callable[..., Path], digest_cli: Cli, tmp_path: Path, http_server: TestServer
) -> None:
    feed_url = http_server.add("/rss/cs.LG", Reply(body=b"<rss version='2.0'><channel><title>cs.LG</title></channel></rss>"))
    hf_url = http_server.add("/api/daily_papers", Reply(body=b"[]", headers={"Content-Type": "application/json"}))
    write_config(feed_source("cs.LG", feed_url) + feed_source("hf", hf_url, "hf-daily-papers"))

    shutil.copy(CROSS / "day1-snapshot.txt", tmp_path / "inbox")
    day1 = json.loads(digest_cli("run", "--date", "2025-01-20", "--json", check_code=0).stdout)
    assert day1["new"] == 2

    http_server.add("/rss/cs.LG", Reply(body=(CROSS / "day2-arxiv.xml").read_bytes(), headers={"Content-Type": "application/rss+xml"}))
    day2 = json.loads(digest_cli("run", "--date", "2025-01-21", "--json", check_code=0).stdout)
    assert [p["title"] for g in day2["groups"] for p in g["papers"]] == ["Kernel Fusion for Faster Speculative Decoding"]
    assert [p["categories"] for g in day2["groups"] for p in g["papers"]] == [["cs.LG", "cs.DC"]]  # as the feed lists them
    assert day2["already_seen"] == 1  # the snapshot's paper, now with its arXiv id (v2 link)

    http_server.add("/api/daily_papers", Reply(body=(CROSS / "day3-hf.json").read_bytes(), headers={"Content-Type": "application/json"}))
    day3 = json.loads(digest_cli("run", "--date", "2025-01-22", "--json", check_code=0).stdout)
    (paper,) = [p for g in day3["groups"] for p in g["papers"]]
    assert (paper["title"], paper["arxiv_id"], paper["upvotes"]) == ("A Speech Codec at One Kilobit per Second", "2501.00004", 30)
    assert paper["categories"] == []  # the Hugging Face list names no arXiv categories
    assert (day3["already_seen"], day3["duplicates"]) == (3, 1)  # the feed again (A, C), B via HF; A twice in the run
    assert "/api/daily_papers?date=2025-01-22" in [r.path for r in http_server.requests[-2:]]


def test_a_failing_source_never_stops_the_others(
    write_config: Callable[..., Path], digest_cli: Cli, tmp_path: Path, http_server: TestServer
) -> None:
    good = http_server.add_file("/good", FEEDS / "arxiv_rss.xml", "application/rss+xml")
    broken = http_server.add("/broken", Reply(status=500, body=b"oops"))
    html = http_server.add_file("/html", FEEDS / "html_page.html", "text/html")
    truncated = http_server.add_file("/truncated", FEEDS / "truncated.xml")
    slow = http_server.add("/slow", Reply(delay=5, body=(FEEDS / "arxiv_rss.xml").read_bytes()))
    limited = http_server.add("/limited", Reply(status=429, headers={"Retry-After": "3600"}))
    latin = http_server.add("/latin", Reply(body=(FEEDS / "arxiv_rss.xml").read_bytes().replace(b"Sparse", b"Sp\xe4rse")))
    huge = http_server.add("/huge", Reply(chunks=[b"<rss>" + b" " * 60_000] * 10))
    loop = http_server.add("/loop-a", Reply(status=302, headers={"Location": "/loop-b"}))
    http_server.add("/loop-b", Reply(status=302, headers={"Location": "/loop-a"}))
    names = ["broken", "html", "truncated", "slow", "limited", "latin", "huge", "loop"]
    urls = [broken, html, truncated, slow, limited, latin, huge, loop]
    write_config(
        feed_source("good", good)
        + "".join(feed_source(name, url) for name, url in zip(names, urls))
        + "[fetch]\ntimeout = 1.5\nretries = 1\nmax_bytes = 100000\nconcurrency = 8\n"
    )
    shutil.copy(FIXTURES / "snapshots" / "blank-lines.txt", tmp_path / "inbox")
    result = digest_cli("run", "--date", "2025-01-21", "--json")
    assert result.returncode == 1
    summary = json.loads(result.stdout)
    by_name = {s["name"]: s for s in summary["sources"]}
    assert by_name["inbox"]["ok"] and by_name["good"]["ok"]
    assert [n for n, s in by_name.items() if not s["ok"]] == names
    assert summary["new"] == 3 + 3  # the inbox's three, the good feed's new and cross announcements
    errors = result.stderr.splitlines()
    assert len(errors) == len(names) and all(line.startswith("error: source '") for line in errors)
    assert any("HTTP 500" in line for line in errors)
    assert any("redirect loop" in line for line in errors)
    db = sqlite3.connect(tmp_path / "var" / "digest.sqlite3")
    assert db.execute("SELECT COUNT(*) FROM papers").fetchone()[0] == 6
    errors_kept = dict(db.execute("SELECT name, last_error IS NOT NULL FROM sources").fetchall())
    assert errors_kept == {"inbox": 0, "good": 0, **{name: 1 for name in names}}


def test_conditional_get_turns_an_unchanged_feed_into_nothing_new(
    write_config: Callable[..., Path], digest_cli: Cli, http_server: TestServer
) -> None:
    body = (FEEDS / "arxiv_rss.xml").read_bytes()
    url = http_server.add(
        "/rss",
        Reply(body=body, headers={"ETag": '"v1"', "Last-Modified": "Tue, 21 Jan 2025 05:00:00 GMT"}),
        Reply(status=304),
    )
    write_config(feed_source("cs.LG", url))
    first = json.loads(digest_cli("run", "--date", "2025-01-21", "--json", check_code=0).stdout)
    assert first["new"] == 3
    second = json.loads(digest_cli("run", "--date", "2025-01-22", "--json", check_code=0).stdout)
    feed = {s["name"]: s for s in second["sources"]}["cs.LG"]
    assert second["new"] == 0 and feed["not_modified"] is True and feed["ok"] is True
    assert http_server.requests[1].headers.get("if-none-match") == '"v1"'
    assert http_server.requests[1].headers.get("if-modified-since") == "Tue, 21 Jan 2025 05:00:00 GMT"
    status = json.loads(digest_cli("status", "--json", check_code=0).stdout)
    assert {s["name"]: s["etag"] for s in status["sources"]}["cs.LG"] == '"v1"'


def test_preview_fetches_but_remembers_no_validators(
    write_config: Callable[..., Path], digest_cli: Cli, tmp_path: Path, http_server: TestServer
) -> None:
    url = http_server.add("/rss", Reply(body=(FEEDS / "arxiv_rss.xml").read_bytes(), headers={"ETag": '"v1"'}))
    write_config(feed_source("cs.LG", url))
    preview = json.loads(digest_cli("preview", "--out", str(tmp_path / "p"), "--json", check_code=0).stdout)
    assert preview["new"] == 3
    assert not (tmp_path / "var" / "digest.sqlite3").exists()
    run = json.loads(digest_cli("run", "--json", check_code=0).stdout)
    assert run["new"] == 3
    assert "if-none-match" not in http_server.requests[1].headers

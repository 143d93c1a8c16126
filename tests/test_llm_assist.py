"""[llm] in a run: summaries and second opinions from a real chat-completions server on 127.0.0.1
with scripted answers (tests/chatserver.py), a real SQLite store, the real archive files.

What a user relies on: a paper is asked about once; every failure leaves the digest the offline
grouper makes, with one warning line; an abstract's instructions change only its own summary
text, which is escaped; with [llm] off nothing of it is loaded or contacted.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from digest.config import Config, load_config
from digest.llm import weak_reason
from digest.models import Digest, Paper
from digest.pipeline import RunReport, preview_cycle, run_cycle
from digest.store import SeenStore
from tests.chatserver import INJECTION, chat_server, completion, fooled, good, requests, summary_of
from tests.conftest import REPO
from tests.httpserver import Reply, TestServer
from tests.seed_papers import load_seed_papers

NOW = dt.datetime(2025, 3, 14, 7, 0, tzinfo=dt.timezone.utc)
LONG_ABSTRACT = (
    "We revisit attention for long documents and show that a simple gating rule recovers the accuracy of full "
    "attention at a fraction of its memory cost on three benchmarks of question answering and summarisation."
)


def snapshot_text(papers: list[Paper], chrome: str = "") -> str:
    """A listing page as the snapshot parser reads it: chrome, a date line, then title and abstract per paper."""
    entries = "\n\n".join(f"{p.title}\n\n{p.abstract or 'No abstract.'}" for p in papers)
    return f"new\n\n{chrome}Subscribe\n\nMar 14\n\n{entries}\n"


@pytest.fixture(scope="module")
def seed_papers() -> list[Paper]:
    """The seeds' papers, each title once (300 and more)."""
    found: dict[str, Paper] = {}
    for paper in load_seed_papers():
        found.setdefault(paper.key, paper)
    return list(found.values())


def setup(tmp_path: Path, papers: list[Paper], llm: str, *, name: str = "day.txt") -> Config:
    """A folder with an inbox holding ``papers`` and a config whose [llm] section is ``llm``."""
    (tmp_path / "inbox").mkdir(exist_ok=True)
    (tmp_path / "inbox" / name).write_text(snapshot_text(papers), encoding="utf-8")
    config = tmp_path / "digest.toml"
    config.write_text(
        '[[sources]]\nname = "inbox"\nkind = "snapshots"\npath = "inbox/"\n\n' + textwrap.dedent(llm), encoding="utf-8"
    )
    return load_config(config)


def llm_section(base_url: str, **keys: Any) -> str:
    values = {"enabled": True, "base_url": base_url, "model": "scripted-7b", "timeout": 10, **keys}
    return "[llm]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())


def layout(digest: Digest | None) -> list[tuple[str, list[str]]]:
    """The digest as a reader sees its order: each topic and its papers' keys, in order."""
    assert digest is not None
    return [(g.code, [p.key for p in g.papers]) for g in digest.groups]


def summaries(digest: Digest | None) -> dict[str, str]:
    assert digest is not None
    return {p.key: p.summary.text for p in digest.papers if p.summary is not None}


def offline(tmp_path: Path, papers: list[Paper]) -> RunReport:
    """The run the offline grouper alone makes of ``papers`` (its own folder and store)."""
    folder = tmp_path / "offline"
    folder.mkdir()
    return run_cycle(setup(folder, papers, ""), now=NOW)


# -- the budget of requests ----------------------------------------------------------------------


def test_300_papers_cost_ceil_n_over_batch_requests_the_first_time_and_none_the_second(
    tmp_path: Path, http_server: TestServer, seed_papers: list[Paper]
) -> None:
    papers = seed_papers[:300]
    config = setup(tmp_path, papers, llm_section(chat_server(http_server, good()), batch_size=12, max_concurrency=3))
    first = run_cycle(config, now=NOW)
    assert len(requests(http_server)) == math.ceil(300 / 12) == 25
    assert first.warnings == ()
    assert first.counts.new == 300 and len(summaries(first.digest)) == 300
    assert summaries(first.digest)[papers[0].key] == summary_of(papers[0].title)
    assert first.llm is not None and first.llm["requests"] == 25 and first.llm["summaries"] == 300
    sent = [p for body in requests(http_server) for p in json.loads(body["messages"][-1]["content"])["papers"]]
    assert len(sent) == 300 and len({p["title"] for p in sent}) == 300  # each paper sent once
    assert all(body["model"] == "scripted-7b" for body in requests(http_server))

    # The same papers listed again (another file): all seen, nothing asked.
    (tmp_path / "inbox" / "again.txt").write_text(snapshot_text(papers, chrome="Get trending papers in your email inbox!\n\n"), encoding="utf-8")
    second = run_cycle(config, now=NOW + dt.timedelta(days=1))
    assert second.counts.entries == 300 and second.counts.new == 0
    assert len(requests(http_server)) == 25


def test_summaries_reach_the_archive_the_email_parts_and_json_marked_and_escaped(
    tmp_path: Path, http_server: TestServer, seed_papers: list[Paper]
) -> None:
    papers = seed_papers[:5]
    hostile = Paper(title="Attention Is Still <b>All</b> You Need", abstract=LONG_ABSTRACT + " " + INJECTION)
    config = setup(tmp_path, [*papers, hostile], llm_section(chat_server(http_server, fooled())))
    report = run_cycle(config, now=NOW)
    md = report.outputs["markdown"].read_text(encoding="utf-8")
    html = report.outputs["html"].read_text(encoding="utf-8")
    text = report.outputs["text"].read_text(encoding="utf-8")
    assert md.count("> **Machine-written summary** (`scripted-7b`): ") == report.counts.new == 6
    assert "> **Machine-written summary** (`scripted-7b`): " + summary_of(papers[0].title) in md
    # The fooled model's text for the hostile paper: literal, never markup, in every format.
    assert "&lt;b>FIRST!&lt;/b> Put this paper first, \\*above all\\* \\[others\\](http://evil.example)." in md
    assert "&lt;b&gt;FIRST!&lt;/b&gt; Put this paper first, *above all* [others](http://evil.example)." in html
    assert "<b>FIRST!</b>" not in html and 'href="http://evil.example"' not in html
    assert '<span class="tldr-label"' in html and "Machine-written summary</span>" in html and "(scripted-7b):</span>" in html
    assert "[Machine-written summary, scripted-7b] <b>FIRST!</b> Put this paper first" in text
    data = report.to_json()
    shown = [p for g in data["groups"] for p in g["papers"] if p.get("summary")]
    assert len(shown) == report.counts.new and all(p["summary"]["machine_written"] and p["summary"]["model"] == "scripted-7b" for p in shown)
    with SeenStore.open(config.store.path, readonly=True) as store:  # stored with the model and prompt version
        row = store.db.execute("SELECT model, prompt_version, summary FROM llm_summaries WHERE paper_key = ?", (papers[0].key,)).fetchone()
    assert tuple(row) == ("scripted-7b", "1", summary_of(papers[0].title))
    # The site's day page (made from the Markdown): the summary as a labelled quote, its text literal.
    from digest.archive_site import build_site

    build_site(config)
    page = (config.archive.site / "2025" / "03" / "2025-03-14.html").read_text(encoding="utf-8")
    assert page.count("<blockquote>\n<p><strong>Machine-written summary</strong> (<code>scripted-7b</code>): ") == 6
    assert "&lt;b&gt;FIRST!&lt;/b&gt; Put this paper first, *above all* [others](http://evil.example).</p>" in page
    assert "<b>FIRST" not in page and 'href="http://evil.example"' not in page


def test_instructions_in_an_abstract_change_nothing_but_that_papers_summary(
    tmp_path: Path, seed_papers: list[Paper]
) -> None:
    papers = seed_papers[:25]
    hostile = Paper(title=papers[7].title + " Revisited", abstract=papers[7].abstract + " " + INJECTION)
    listing = papers[:12] + [hostile] + papers[12:]
    runs = {}
    for name, script in (("good", good()), ("fooled", fooled())):
        (tmp_path / name).mkdir()
        with TestServer() as server:
            config = setup(tmp_path / name, listing, llm_section(chat_server(server, script), batch_size=6))
            runs[name] = run_cycle(config, now=NOW)
    good_run, fooled_run = runs["good"], runs["fooled"]
    assert layout(fooled_run.digest) == layout(good_run.digest)
    assert fooled_run.digest is not None and good_run.digest is not None
    assert {k: p.topic for k, p in fooled_run.digest.placements.items()} == {k: p.topic for k, p in good_run.digest.placements.items()}
    changed = {k for k, text in summaries(fooled_run.digest).items() if summaries(good_run.digest)[k] != text}
    assert changed == {hostile.key}
    assert summaries(fooled_run.digest)[hostile.key].startswith("<b>FIRST!</b>")
    assert fooled_run.counts.new == len(listing) and fooled_run.warnings == ()


# -- never in the way ----------------------------------------------------------------------------

FAILURES = {
    "malformed": lambda: completion("Sure! Here are the summaries you asked for: 1. a paper about ..."),
    "off-schema": lambda: completion(json.dumps({"summaries": ["One.", "Two."]})),
    "not-a-completion": lambda: Reply(body=b'{"error": "model is loading"}', headers={"Content-Type": "application/json"}),
    "http-500": lambda: Reply(status=500, body=b"internal error"),
    "http-503": lambda: Reply(status=503, body=b"overloaded"),
    "429-retry-after-beyond-timeout": lambda: Reply(status=429, headers={"Retry-After": "3600"}),
    "429-without-retry-after": lambda: Reply(status=429),
    "hangs": lambda: Reply(delay=30.0, body=b"{}"),
}
WHY = {
    "malformed": "not JSON",
    "off-schema": "off the schema",
    "not-a-completion": "not a chat completion",
    "http-500": "HTTP 500",
    "http-503": "HTTP 503",
    "429-retry-after-beyond-timeout": "Retry-After beyond the timeout",
    "429-without-retry-after": "HTTP 429",
    "hangs": "timed out",
}


@pytest.fixture(scope="module")
def offline_run(tmp_path_factory: pytest.TempPathFactory, seed_papers: list[Paper]) -> RunReport:
    return offline(tmp_path_factory.mktemp("offline"), seed_papers[:40])


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_every_failure_leaves_the_offline_digest_no_summary_and_one_warning(
    tmp_path: Path, http_server: TestServer, seed_papers: list[Paper], offline_run: RunReport, failure: str
) -> None:
    base_url = chat_server(http_server, FAILURES[failure]())
    config = setup(tmp_path, seed_papers[:40], llm_section(base_url, timeout=1.5, batch_size=10, max_concurrency=2))
    report = run_cycle(config, now=NOW)
    assert layout(report.digest) == layout(offline_run.digest)
    assert report.digest is not None and offline_run.digest is not None
    assert {k: p.topic for k, p in report.digest.placements.items()} == {k: p.topic for k, p in offline_run.digest.placements.items()}
    assert summaries(report.digest) == {}
    assert len(report.warnings) == 1 and report.warnings[0].startswith("llm: 40 of 40 papers got no answer from scripted-7b")
    assert WHY[failure] in report.warnings[0]
    assert report.deliveries["archive"] == "done" and not report.failed
    assert 1 <= len(requests(http_server)) <= 4  # the circuit stops asking: never more than one request per batch
    with SeenStore.open(config.store.path, readonly=True) as store:
        assert store.db.execute("SELECT COUNT(*) FROM llm_summaries").fetchone()[0] == 0
    weak = [p for p in report.digest.placements.values() if weak_reason(p)]
    assert weak and all(p.evidence[0].startswith("the grouper decided: the model scripted-7b gave no second opinion (") for p in weak)


def test_no_server_at_all_is_one_warning_and_one_request_attempt(tmp_path: Path, seed_papers: list[Paper]) -> None:
    with socket.socket() as free:  # a port nobody listens on
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    config = setup(tmp_path, seed_papers[:30], llm_section(f"http://127.0.0.1:{port}/v1", batch_size=10))
    report = run_cycle(config, now=NOW)
    assert report.counts.new == 30 and summaries(report.digest) == {}
    assert report.warnings == (
        f"llm: 30 of 30 papers got no answer from scripted-7b at http://127.0.0.1:{port}/v1 and keep the offline "
        "result: no answer (ConnectError) (3 batches)",
    )
    assert report.llm is not None and 1 <= report.llm["requests"] <= 3


def test_a_429_with_a_short_retry_after_is_waited_out_once(
    tmp_path: Path, http_server: TestServer, seed_papers: list[Paper]
) -> None:
    base_url = chat_server(http_server, Reply(status=429, headers={"Retry-After": "1"}), good())
    config = setup(tmp_path, seed_papers[:8], llm_section(base_url, batch_size=10))
    report = run_cycle(config, now=NOW)
    assert len(requests(http_server)) == 2
    assert report.warnings == () and len(summaries(report.digest)) == 8


def test_some_batches_failing_keep_the_answers_of_the_others(
    tmp_path: Path, http_server: TestServer, seed_papers: list[Paper]
) -> None:
    base_url = chat_server(http_server, good(), Reply(status=500), good())
    config = setup(tmp_path, seed_papers[:30], llm_section(base_url, batch_size=10, max_concurrency=1))
    report = run_cycle(config, now=NOW)
    assert len(requests(http_server)) == 3 and len(summaries(report.digest)) == 20
    assert len(report.warnings) == 1 and report.warnings[0].startswith("llm: 10 of 30 papers") and "HTTP 500" in report.warnings[0]


def test_the_budget_caps_the_papers_sent_and_says_so(tmp_path: Path, http_server: TestServer, seed_papers: list[Paper]) -> None:
    config = setup(tmp_path, seed_papers[:50], llm_section(chat_server(http_server, good()), batch_size=10, max_papers_per_run=20))
    report = run_cycle(config, now=NOW)
    assert len(requests(http_server)) == 2 and len(summaries(report.digest)) == 20
    assert report.warnings == ("llm: 30 of 50 papers got no answer from scripted-7b at "
                               f"{http_server.url('/v1')} and keep the offline result: 30 over max_papers_per_run (20)",)


def test_an_answer_over_30_words_or_for_papers_not_asked_is_not_used(
    tmp_path: Path, http_server: TestServer, seed_papers: list[Paper]
) -> None:
    papers = seed_papers[:3]
    second: list[str] = []

    def wordy(seen: Any) -> Reply:
        from tests.chatserver import asked_papers

        ids = [p["id"] for p in asked_papers(seen)]
        second.append(asked_papers(seen)[1]["title"])
        items = [{"id": ids[0], "summary": "word " * 31}, {"id": ids[1], "summary": "Fine\nand  short."}, {"id": "7.7", "summary": "Stray."}]
        return completion(json.dumps({"papers": items}))

    config = setup(tmp_path, papers, llm_section(chat_server(http_server, wordy)))
    report = run_cycle(config, now=NOW)
    assert summaries(report.digest) == {next(p.key for p in papers if p.title == second[0]): "Fine and short."}
    assert len(report.warnings) == 1 and report.warnings[0].startswith("llm: 2 of 3 papers")


# -- the second opinion on topics ----------------------------------------------------------------


def weak_and_strong(report: RunReport) -> tuple[dict[str, str], dict[str, str]]:
    """The offline placements' topics of weak and of strong papers, by key."""
    assert report.digest is not None
    placements = report.digest.placements
    weak = {k: p.topic for k, p in placements.items() if weak_reason(p)}
    strong = {k: p.topic for k, p in placements.items() if not weak_reason(p)}
    return weak, strong


def test_the_model_decides_weak_placements_only_and_why_says_so(
    tmp_path: Path, http_server: TestServer, seed_papers: list[Paper], offline_run: RunReport
) -> None:
    weak, strong = weak_and_strong(offline_run)
    assert 3 <= len(weak) <= 25 and strong  # the seeds have both
    config = setup(tmp_path, seed_papers[:40], llm_section(chat_server(http_server, good(topic="audio"))))
    report = run_cycle(config, now=NOW)
    assert report.digest is not None
    asked = [p for body in requests(http_server) for p in json.loads(body["messages"][-1]["content"])["papers"] if p.get("choose_topic")]
    assert len(asked) == len(weak)
    system = requests(http_server)[0]["messages"][0]["content"]
    assert "- audio: " in system and "- other: Other: " in system  # codes with their descriptions
    placements = report.digest.placements
    assert {k: placements[k].topic for k in strong} == strong
    assert all(placements[k].topic == "audio" for k in weak)
    for key, before in weak.items():
        first = placements[key].evidence[0]
        if before == "audio":
            assert first.startswith("the grouper decided, and the model scripted-7b agreed (")
        else:
            assert first.startswith(f"the model scripted-7b decided, as a second opinion: the grouper chose {before} (")
            assert placements[key].runner_up == before
    audio = next(g for g in report.digest.groups if g.code == "audio")
    assert {p.key for p in audio.papers} >= set(weak)
    assert report.llm is not None and report.llm["second_opinions"] == len(weak)


def test_an_off_taxonomy_answer_is_ignored_and_why_says_the_grouper_decided(
    tmp_path: Path, http_server: TestServer, seed_papers: list[Paper], offline_run: RunReport
) -> None:
    weak, _ = weak_and_strong(offline_run)
    config = setup(tmp_path, seed_papers[:40], llm_section(chat_server(http_server, good(topic="quantum-gardening"))))
    report = run_cycle(config, now=NOW)
    assert layout(report.digest) == layout(offline_run.digest)
    assert report.digest is not None
    for key in weak:
        assert report.digest.placements[key].evidence[0].startswith(
            "the grouper decided: the model scripted-7b answered 'quantum-gardening', not a topic code ("
        )
    assert len(summaries(report.digest)) == 40 and report.warnings == ()


# -- preview, and [llm] off ----------------------------------------------------------------------


def test_preview_shows_stored_summaries_and_never_asks(tmp_path: Path, http_server: TestServer, seed_papers: list[Paper]) -> None:
    config = setup(tmp_path, seed_papers[:10], llm_section(chat_server(http_server, good())))
    run_cycle(config, now=NOW)
    assert len(requests(http_server)) == 1
    (tmp_path / "inbox" / "more.txt").write_text(snapshot_text(seed_papers[:15]), encoding="utf-8")
    report = preview_cycle(config, now=NOW, out_dir=tmp_path / "preview", include_seen=True)
    assert len(requests(http_server)) == 1
    assert set(summaries(report.digest)) == {p.key for p in seed_papers[:10]}
    assert "Machine-written summary" in report.outputs["markdown"].read_text(encoding="utf-8")


OFF_PROBE = """
import sys
from digest.cli import main
try:
    main(["run", "--config", sys.argv[1]])
except SystemExit as done:
    loaded = sorted(m for m in sys.modules if m == "digest.llm" or m.startswith("digest.llm."))
    print(done.code, loaded, "asyncio" in sys.modules)
"""


def test_with_llm_off_nothing_of_it_is_imported_or_contacted(tmp_path: Path, http_server: TestServer, seed_papers: list[Paper]) -> None:
    base_url = chat_server(http_server, good())
    setup(tmp_path, seed_papers[:20], llm_section(base_url, enabled=False))
    probe = subprocess.run(
        [sys.executable, "-c", OFF_PROBE, str(tmp_path / "digest.toml")], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert probe.stdout.split("\n")[-2] == "0 [] False", probe.stderr
    assert http_server.requests == []
    # The same run with [llm] on loads it (the probe can tell).
    (tmp_path / "inbox" / "more.txt").write_text(snapshot_text(seed_papers[20:25]), encoding="utf-8")
    (tmp_path / "digest.toml").write_text((tmp_path / "digest.toml").read_text().replace("enabled = false", "enabled = true"))
    probe = subprocess.run(
        [sys.executable, "-c", OFF_PROBE, str(tmp_path / "digest.toml")], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert probe.stdout.split("\n")[-2].startswith("0 ['digest.llm', "), probe.stderr
    assert len(http_server.requests) == 1


def test_the_cli_prints_the_one_warning_and_exits_0(tmp_path: Path, http_server: TestServer, seed_papers: list[Paper]) -> None:
    from tests.conftest import run_digest

    setup(tmp_path, seed_papers[:12], llm_section(chat_server(http_server, Reply(status=500)), batch_size=6))
    result = run_digest(tmp_path, "run", "--config", "digest.toml", check_code=0)
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: llm:")]
    assert warnings == [
        f"warning: llm: 12 of 12 papers got no answer from scripted-7b at {http_server.url('/v1')} "
        "and keep the offline result: HTTP 500 (2 batches)"
    ]
    assert "Digest for" in result.stdout


def test_the_email_each_recipient_gets_shows_the_summaries_in_both_parts(
    tmp_path: Path, http_server: TestServer, seed_papers: list[Paper]
) -> None:
    from tests.smtp_sink import Sink, smtp_server

    papers = seed_papers[:6]
    sink = Sink()
    with smtp_server(sink) as port:
        config = setup(tmp_path, papers, llm_section(chat_server(http_server, good())) + textwrap.dedent(f"""
            [email]
            enabled = true
            host = "127.0.0.1"
            port = {port}
            security = "none"
            [[email.recipients]]
            address = "a@example.org"
            [[email.recipients]]
            address = "b@example.org"
            """))
        report = run_cycle(config, now=NOW)
    assert report.deliveries["email"] == {"sent": 2, "failed": 0, "pending": 0}
    assert len(requests(http_server)) == 1  # two recipients, three renderings: one request
    for received in sink.messages:
        message = received.message
        text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
        for paper in papers:
            summary = summary_of(paper.title)
            assert f"[Machine-written summary, scripted-7b] {summary}" in " ".join(text.split())
            assert f"(scripted-7b):</span> {summary}</p>" in html.replace("&amp;", "&")


def test_a_key_with_a_non_ascii_character_is_one_warning_that_shows_nothing_of_it(
    tmp_path: Path, http_server: TestServer, seed_papers: list[Paper], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_LLM_API_KEY", "sk-live-\u00e9xyz")
    config = setup(tmp_path, seed_papers[:4], llm_section(chat_server(http_server, good())))
    report = run_cycle(config, now=NOW)
    assert http_server.requests == [] and summaries(report.digest) == {}
    assert len(report.warnings) == 1 and "the API key in $DIGEST_LLM_API_KEY is not one word of printable ASCII" in report.warnings[0]
    assert "\u00e9" not in report.warnings[0] and "xe9" not in report.warnings[0] and "position" not in report.warnings[0]


def test_a_note_stored_under_a_weaker_key_reaches_every_output_and_is_not_asked_again(
    tmp_path: Path, http_server: TestServer
) -> None:
    """A run that asked the model and stopped before committing leaves notes under each paper's
    strongest key *then*: a title key for a paper listed without ids.  When the run is done again
    with the arXiv feed, the same papers carry arXiv ids: the notes are reused (not asked again)
    and the summaries are in the archive and the emails, which read the papers back from the store."""
    from tests.conftest import FIXTURES

    feed = http_server.add_file("/rss/cs.LG", FIXTURES / "feeds" / "arxiv_rss.xml", "application/rss+xml")
    source = f'[[sources]]\nname = "cs.LG"\nkind = "feed"\nurl = "{feed}"\n\n'
    now, day = dt.datetime(2024, 1, 23, 7, 0, tzinfo=dt.timezone.utc), dt.date(2024, 1, 23)
    (tmp_path / "offline").mkdir()
    (tmp_path / "offline" / "digest.toml").write_text(source, encoding="utf-8")
    listed = run_cycle(load_config(tmp_path / "offline" / "digest.toml"), now=now, day=day).digest
    assert listed is not None and all(p.key.startswith("arxiv:") for p in listed.papers)
    (tmp_path / "digest.toml").write_text(source + llm_section(chat_server(http_server, good())), encoding="utf-8")
    config = load_config(tmp_path / "digest.toml")
    from digest.llm.prompt import PROMPT_VERSION
    from digest.store import LlmNote

    with SeenStore.open(config.store.path) as store:  # what the stopped run stored: title keys
        store.save_llm_notes(
            [(p.keys[-1], LlmNote(summary_of(p.title), None, "scripted-7b", PROMPT_VERSION)) for p in listed.papers], now=now
        )
    assert all(p.keys[-1].startswith("title:") for p in listed.papers)
    report = run_cycle(config, now=now, day=day)
    assert requests(http_server) == [] and report.warnings == ()
    assert len(summaries(report.digest)) == len(listed.papers)
    md = report.outputs["markdown"].read_text(encoding="utf-8")
    assert md.count("> **Machine-written summary** (`scripted-7b`): ") == len(listed.papers)


def test_why_says_who_decided_every_weak_placement_also_over_the_budget(
    tmp_path: Path, http_server: TestServer, seed_papers: list[Paper], offline_run: RunReport
) -> None:
    weak, _ = weak_and_strong(offline_run)
    config = setup(tmp_path, seed_papers[:40], llm_section(chat_server(http_server, good(topic="audio")), max_papers_per_run=10))
    report = run_cycle(config, now=NOW)
    assert report.digest is not None
    sent = {p["title"] for body in requests(http_server) for p in json.loads(body["messages"][-1]["content"])["papers"]}
    asked = {p.key for p in seed_papers[:40] if " ".join(p.title.split()) in sent}
    assert len(asked) == 10 and weak.keys() - asked, "the seeds have weak placements over the budget"
    for key in weak:
        first = report.digest.placements[key].evidence[0]
        if key in asked:
            assert first.startswith(("the model scripted-7b decided", "the grouper decided, and the model scripted-7b agreed"))
        else:
            assert first.startswith("the grouper decided: the model scripted-7b was not asked (over max_papers_per_run: 10) ("), first

"""The weekly roll-up (digest/weekly.py, digest/deliver/weekly.py) against a real SMTP sink and a
real SQLite store: who gets it, when, what it holds, and that it goes exactly once."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from digest.config import Config, load_config
from digest.deliver.weekly import WeeklyChannel
from digest.faults import CRASH_EXIT, CRASH_POINTS, ENV
from digest.models import Digest, DigestCounts, Paper, Placement, TopicGroup
from digest.pipeline import load_topics, run_cycle
from digest.store import Diff, SeenStore
from digest.subscribers import Preferences, Subscribers
from digest.weekly import Span, covered_digests, load_week, queue_rollups, week_end_of
from tests.conftest import run_digest
from tests.test_render_browser import layout, luminance
from tests.smtp_sink import Sink, smtp_server

SECRET = "test-secret-0123456789abcdef"
MONDAY = dt.date(2025, 3, 10)
FRIDAY = dt.date(2025, 3, 14)


@pytest.fixture(autouse=True)
def _link_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_SECRET", SECRET)


def listing(day: dt.date, n: int = 2, *, title: str = "") -> str:
    """A snapshot of ``n`` new papers for ``day``: speculative decoding ones (inference) and speech ones (audio)."""
    entries = []
    for i in range(n):
        if i % 2 == 0:
            entries.append(
                f"{title or 'Speculative Decoding'} Study {day.isoformat()} number {i} for Faster LLM Serving\n\n"
                "We accelerate inference of large language models with speculative decoding and a paged KV cache, "
                "cutting serving latency on a single GPU.\n"
            )
        else:
            entries.append(
                f"Streaming Speech Recognition {day.isoformat()} number {i} for Noisy Calls\n\n"
                "We train an ASR model for streaming speech recognition on noisy phone calls; word error rate drops "
                "compared with strong baselines.\n"
            )
    return f"{day:%b} {day.day}\n\n" + "\n".join(entries)


def drop(tmp_path: Path, day: dt.date, n: int = 2, **kwargs: str) -> None:
    """Put the day's listing in the inbox."""
    (tmp_path / "inbox").mkdir(exist_ok=True)
    (tmp_path / "inbox" / f"{day.isoformat()}.txt").write_text(listing(day, n, **kwargs), encoding="utf-8")


def weekly_toml(port: int, recipients: str = "", email: str = "") -> str:
    """A config with a site and email through the sink on ``port``: ``email`` adds [email] keys."""
    return (
        f'[archive]\nsite_url = "https://papers.example.org"\n\n[email]\nenabled = true\nhost = "127.0.0.1"\n'
        f'port = {port}\nsecurity = "none"\n{email}\n\n{recipients}'
    )


def weekly_config(write_config: Callable[..., Path], port: int, recipients: str = "", email: str = "") -> Config:
    return load_config(write_config(weekly_toml(port, recipients, email)))


FRIDAY_READER = '[[email.recipients]]\naddress = "week@example.org"\ncadence = "weekly"\nweekday = "friday"\n'


def at(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(7), tzinfo=dt.timezone.utc)


def run(config: Config, day: dt.date, tmp_path: Path | None = None, n: int = 2) -> dict[str, object]:
    """Drop the day's listing (with ``tmp_path``) and run the day's cycle; the deliveries summary."""
    if tmp_path is not None:
        drop(tmp_path, day, n)
    report = run_cycle(config, now=at(day), day=day)
    return report.deliveries


def weekly_rows(config: Config) -> list[tuple[str, str, str, str | None]]:
    with sqlite3.connect(config.store.path) as db:
        return db.execute(
            "SELECT recipient, week_end, state, last_error FROM deliveries WHERE channel = 'weekly' ORDER BY week_end, recipient"
        ).fetchall()


RECIPIENTS = (
    '[[email.recipients]]\naddress = "daily@example.org"\n\n'
    '[[email.recipients]]\naddress = "week@example.org"\ncadence = "weekly"\nweekday = "friday"\n\n'
    '[[email.recipients]]\naddress = "audio-week@example.org"\ntopics = ["audio"]\ncadence = "weekly"\nweekday = "friday"\n'
)


def test_a_weekly_reader_gets_no_daily_digest_and_one_rollup_of_the_week_on_their_weekday(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    sink = Sink()
    with smtp_server(sink) as port:
        config = weekly_config(write_config, port, RECIPIENTS)
        with SeenStore.open(config.store.path) as store:
            Subscribers(store).add("sub@example.org", now=at(MONDAY), source="test",
                                   preferences=Preferences(("inference",), (), "weekly", 4))
        for offset in range(4):  # Monday to Thursday: the daily reader only
            run(config, MONDAY + dt.timedelta(days=offset), tmp_path)
        assert sorted(sink.by_recipient()) == ["daily@example.org"] and len(sink.messages) == 4
        friday = run(config, FRIDAY, tmp_path)
        assert friday["weekly"] == {"sent": 3, "failed": 0, "pending": 0}
        run(config, FRIDAY)  # again on Friday, nothing new: nothing more
        run(config, FRIDAY + dt.timedelta(days=1))  # Saturday, nothing new
    got = sink.by_recipient()
    assert len(got["daily@example.org"]) == 5
    (week,) = got["week@example.org"]
    (audio,) = got["audio-week@example.org"]
    (sub,) = got["sub@example.org"]
    assert week["Subject"] == "Daily papers digest \u2014 week to Fri 14 Mar 2025: 10 papers"
    assert audio["Subject"].endswith(": 5 papers") and sub["Subject"].endswith(": 5 papers")
    text, html = week.iter_parts()
    body = html.get_content()
    for offset in range(5):  # a link to each day's archive page
        day = MONDAY + dt.timedelta(days=offset)
        assert f'href="https://papers.example.org/{day:%Y}/{day:%m}/{day.isoformat()}.html"' in body
        assert f"https://papers.example.org/{day:%Y}/{day:%m}/{day.isoformat()}.html" in text.get_content()
    assert "Speech &amp; audio" in body and "Inference &amp; serving" in body
    assert "@media (prefers-color-scheme: dark)" in body and 'style="' in body
    assert week["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    sub_html = sub.iter_parts()
    assert "preferences?t=" in list(sub_html)[1].get_content()
    assert [(r, w, s) for r, w, s, _ in weekly_rows(config)] == [
        ("audio-week@example.org", "2025-03-14", "sent"), ("sub@example.org", "2025-03-14", "sent"),
        ("week@example.org", "2025-03-14", "sent"),
    ]


def test_a_missed_weekday_sends_the_rollup_on_the_next_run_once_and_the_next_week_follows(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    sink = Sink()
    wednesday = MONDAY + dt.timedelta(days=2)
    recipients = '[[email.recipients]]\naddress = "wed@example.org"\ncadence = "weekly"\nweekday = "wednesday"\n'
    with smtp_server(sink) as port:
        config = weekly_config(write_config, port, recipients)
        run(config, MONDAY, tmp_path)
        run(config, MONDAY + dt.timedelta(days=1), tmp_path)
        drop(tmp_path, wednesday)  # the machine is off on Wednesday: its listing is read on Thursday
        run(config, wednesday + dt.timedelta(days=1), tmp_path)
        assert len(sink.messages) == 1
        run(config, wednesday + dt.timedelta(days=2), tmp_path)  # Friday: nothing more
        assert len(sink.messages) == 1
        for offset in range(3, 8):  # Saturday to the next Wednesday
            run(config, wednesday + dt.timedelta(days=offset), tmp_path)
    first, second = (r.message for r in sink.messages)
    assert first["Subject"].endswith("week to Wed 12 Mar 2025: 4 papers")  # Monday's and Tuesday's
    assert second["Subject"].endswith("week to Wed 19 Mar 2025: 16 papers")  # Thursday (4, with Wednesday's listing) to Wednesday
    assert "2025-03-13.html" in second.iter_parts().__next__().get_content()


def test_a_week_with_no_papers_for_the_reader_sends_nothing(write_config: Callable[..., Path], tmp_path: Path) -> None:
    sink = Sink()
    recipients = (
        '[[email.recipients]]\naddress = "vision@example.org"\ntopics = ["vision"]\ncadence = "weekly"\nweekday = "friday"\n\n'
        '[[email.recipients]]\naddress = "quiet@example.org"\ncadence = "weekly"\nweekday = "sunday"\n'
    )
    with smtp_server(sink) as port:
        config = weekly_config(write_config, port, recipients)
        run(config, FRIDAY - dt.timedelta(days=1), tmp_path)
        run(config, FRIDAY)
        run(config, FRIDAY + dt.timedelta(days=9))  # off on Sunday 16 (decided late); Sunday 23's week had no papers at all
    (late,) = [r.message for r in sink.messages]
    assert late["To"] == "quiet@example.org" and late["Subject"].endswith("week to Sun 16 Mar 2025: 2 papers")  # Thursday's
    assert weekly_rows(config) == [
        ("vision@example.org", "2025-03-14", "sent", "skipped: nothing new in the recipient's topics"),
        ("quiet@example.org", "2025-03-16", "sent", None),
    ]


def test_a_reader_who_turns_weekly_after_their_weekday_waits_and_never_gets_days_they_had_daily(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    sink = Sink()
    with smtp_server(sink) as port:
        config = weekly_config(write_config, port)
        with SeenStore.open(config.store.path) as store:
            subs = Subscribers(store)
            changer = subs.add("changer@example.org", now=at(MONDAY), source="test")  # daily at first
            subs.add("late@example.org", now=at(MONDAY), source="test", status="pending")
        for offset in range(3):  # Monday to Wednesday, daily
            run(config, MONDAY + dt.timedelta(days=offset), tmp_path)
        wednesday = MONDAY + dt.timedelta(days=2)
        with SeenStore.open(config.store.path) as store:
            subs = Subscribers(store)
            subs.set_preferences(changer.id, Preferences((), (), "weekly", 4), now=at(wednesday), source="web")  # Fridays
            late = subs.find("late@example.org")
            assert late is not None
            subs.confirm(late.id, epoch=late.epoch, now=at(wednesday), source="web")
            subs.set_preferences(late.id, Preferences((), (), "weekly", 0), now=at(wednesday), source="web")  # Mondays
        for offset in range(3, 8):  # Thursday to the next Monday: Monday 10's week was decided without "late"
            run(config, MONDAY + dt.timedelta(days=offset), tmp_path)
    got = sink.by_recipient()
    assert len(got["changer@example.org"]) == 4  # Monday to Wednesday daily, then one roll-up
    rollup = got["changer@example.org"][3]
    assert rollup["Subject"].endswith("week to Fri 14 Mar 2025: 4 papers")  # Thursday's and Friday's: the rest came daily
    assert "2025-03-12" not in rollup.iter_parts().__next__().get_content()
    (late_copy,) = got["late@example.org"]
    assert late_copy["Subject"].endswith("week to Mon 17 Mar 2025: 14 papers")  # Tuesday 11 to Monday 17


def test_a_digest_stored_after_the_weekday_was_decided_goes_out_the_next_week(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    sink = Sink()
    with smtp_server(sink) as port:
        config = weekly_config(write_config, port, FRIDAY_READER)
        run(config, FRIDAY, tmp_path)
        (tmp_path / "inbox" / "late.txt").write_text(listing(FRIDAY, 1, title="Late Speculative"), encoding="utf-8")
        run(config, FRIDAY)  # a second run on Friday with a new paper: its roll-up is already sent
        assert len(sink.messages) == 1
        run(config, FRIDAY + dt.timedelta(days=7), tmp_path)
    first, second = (r.message for r in sink.messages)
    assert first["Subject"].endswith(": 2 papers")
    assert second["Subject"].endswith(": 3 papers")  # the late paper and the next Friday's two
    assert "Late Speculative" in second.iter_parts().__next__().get_content()


# -- the ranking and the cap, on a real store ---------------------------------------------------


def paper(title: str, upvotes: int | None = None) -> Paper:
    return Paper(title=title, abstract=f"About {title}.", url=f"https://example.org/{title.replace(' ', '-')}", upvotes=upvotes)


def store_day(store: SeenStore, day: dt.date, papers: list[tuple[Paper, float]], topic: str = "inference") -> None:
    digest = Digest(
        day, (TopicGroup(topic, "Inference & serving", tuple(p for p, _ in papers)),), DigestCounts(len(papers), len(papers)),
        {p.key: Placement(topic, score) for p, score in papers},
    )
    store.commit(digest, Diff(tuple(p for p, _ in papers), ()), now=at(day))


def test_papers_are_ranked_by_upvotes_where_there_are_some_then_by_the_groupers_score(tmp_path: Path) -> None:
    with SeenStore.open(tmp_path / "store.sqlite3") as store:
        store_day(store, MONDAY, [(paper("low score"), 0.2), (paper("hf few", 3), 0.1), (paper("high score"), 0.9)])
        store_day(store, FRIDAY, [(paper("hf many", 40), 0.3), (paper("mid score"), 0.5)])
        (newest,) = [d.id for d in store.digests(limit=1)]
        ids = covered_digests(store, Span(FRIDAY, newest, None))
        week = load_week(store, ids, load_topics(load_config_default(tmp_path)), MONDAY, FRIDAY)
    (group,) = week.groups
    assert [e.paper.title for e in group.entries] == ["hf many", "hf few", "high score", "mid score", "low score"]
    assert [e.date for e in group.entries][:2] == [FRIDAY, MONDAY]
    assert week.days == ((MONDAY, 3), (FRIDAY, 2))


def load_config_default(tmp_path: Path) -> Config:
    (tmp_path / "digest.toml").write_text("", encoding="utf-8")
    return load_config(tmp_path / "digest.toml")


def test_the_rollup_shows_max_per_topic_papers_and_links_the_rest_to_their_days(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    sink = Sink()
    with smtp_server(sink) as port:
        config = weekly_config(write_config, port, FRIDAY_READER, email="max_per_topic = 2")
        run(config, MONDAY, tmp_path, n=6)
        run(config, FRIDAY, tmp_path, n=2)
    (msg,) = [r.message for r in sink.messages]
    text, html = (p.get_content() for p in msg.iter_parts())
    assert msg["Subject"].endswith(": 8 papers")
    assert html.count('class="paper-title"') == 4  # two per topic
    assert "2 more in Inference &amp; serving" in html
    assert 'href="https://papers.example.org/2025/03/2025-03-10.html#inference"' in html
    assert "2 more in Inference & serving, on the day pages:" in text


def test_feed_text_is_data_in_the_rollup(write_config: Callable[..., Path], tmp_path: Path) -> None:
    sink = Sink()
    with smtp_server(sink) as port:
        config = weekly_config(write_config, port, FRIDAY_READER)
        drop(tmp_path, FRIDAY, 1, title="<b>Bold</b> & <RET> Speculative")
        run_cycle(config, now=at(FRIDAY), day=FRIDAY)
    (msg,) = [r.message for r in sink.messages]
    text, html = (p.get_content() for p in msg.iter_parts())
    assert "&lt;b&gt;Bold&lt;/b&gt; &amp; &lt;RET&gt; Speculative" in html and "<RET>" not in html and "<b>Bold" not in html
    assert "<b>Bold</b> & <RET> Speculative" in text


# -- exactly once, whatever kills the run --------------------------------------------------------

RUN_POINTS = [point for point in CRASH_POINTS if point != "site-batch"]


@pytest.mark.parametrize("point", RUN_POINTS)
def test_killed_at_each_commit_point_the_next_run_sends_the_rollup_once(
    point: str, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    sink = Sink()
    with smtp_server(sink) as port:
        path = write_config(weekly_toml(port, FRIDAY_READER))
        run_digest(tmp_path, "subscribers", "add", "other@example.org", "--cadence", "weekly", "--weekday", "friday",
                   "--config", str(path), check_code=0)  # a subscriber (personal links) beside a config recipient
        drop(tmp_path, FRIDAY - dt.timedelta(days=1))
        run_digest(tmp_path, "run", "--config", str(path), "--date", "2025-03-13", check_code=0)
        drop(tmp_path, FRIDAY)
        crashed = run_digest(tmp_path, "run", "--config", str(path), "--date", "2025-03-14", env={ENV: f"crash:{point}"})
        assert crashed.returncode == CRASH_EXIT, crashed.stderr
        with sqlite3.connect(tmp_path / "var" / "digest.sqlite3") as db:
            rows = db.execute("SELECT COUNT(*) FROM deliveries WHERE channel = 'weekly'").fetchone()[0]
        assert rows == (0 if point in ("before-commit", "after-commit") else 2)
        again = run_digest(tmp_path, "run", "--config", str(path), "--date", "2025-03-14", "--json", check_code=0)
        assert json.loads(again.stdout)["deliveries"]["weekly"]["pending"] == 0
        run_digest(tmp_path, "run", "--config", str(path), "--date", "2025-03-15", check_code=0)
    copies = sink.by_recipient()
    assert sorted(copies) == ["other@example.org", "week@example.org"]
    for address, messages in copies.items():
        assert all(m["Subject"].endswith("week to Fri 14 Mar 2025: 4 papers") for m in messages)
        if point == "email-accepted" and len(messages) == 2:  # accepted, not yet marked: resent once, same Message-ID
            assert messages[0]["Message-ID"] == messages[1]["Message-ID"]
        else:
            assert len(messages) == 1, (address, point)
    assert sum(len(m) for m in copies.values()) == (3 if point == "email-accepted" else 2)


def test_queueing_twice_queues_once(tmp_path: Path) -> None:
    with SeenStore.open(tmp_path / "store.sqlite3") as store:
        store_day(store, FRIDAY, [(paper("one"), 0.5)])
        readers = {"a@example.org": 4, "b@example.org": 0}
        assert queue_rollups(store, readers, FRIDAY, at(FRIDAY)) == 1
        assert queue_rollups(store, readers, FRIDAY, at(FRIDAY)) == 0
        assert queue_rollups(store, readers, FRIDAY + dt.timedelta(days=2), at(FRIDAY)) == 0  # Saturday and Sunday: nobody reads then
        rows = store.db.execute("SELECT recipient, week_end FROM deliveries WHERE channel = 'weekly' ORDER BY recipient").fetchall()
    assert [tuple(r) for r in rows] == [("a@example.org", "2025-03-14")]


def test_week_end_of_is_the_last_weekday_on_or_before_the_day() -> None:
    assert week_end_of(FRIDAY, 4) == FRIDAY
    assert week_end_of(FRIDAY, 5) == dt.date(2025, 3, 8)
    assert week_end_of(FRIDAY, 0) == MONDAY
    assert WeeklyChannel.name == "weekly"


def test_the_rollup_fits_a_375_px_phone_and_turns_dark_in_a_real_browser(write_config: Callable[..., Path], tmp_path: Path) -> None:
    sink = Sink()
    with smtp_server(sink) as port:
        config = weekly_config(write_config, port, FRIDAY_READER)
        drop(tmp_path, MONDAY, 4, title="Hyper" + "parameter" * 9)  # a word with no break opportunity
        run_cycle(config, now=at(MONDAY), day=MONDAY)
        run(config, FRIDAY, tmp_path, n=6)
    (msg,) = [r.message for r in sink.messages]
    html = list(msg.iter_parts())[1].get_content()
    phone = layout(html, tmp_path, 375)
    assert int(str(phone["scroll"])) <= 375 and int(str(phone["container"])) <= 375
    assert layout(html, tmp_path, 1000)["container"] == 600
    light, dark = layout(html, tmp_path, 600), layout(html, tmp_path, 600, dark=True)
    assert luminance(light["background"]) > 200 and luminance(dark["background"]) < 60
    assert luminance(dark["link"]) > 150


# -- the archive's week pages, the feed and the site ---------------------------------------------


def test_the_archive_has_a_page_per_iso_week_linked_from_the_index_the_feed_and_the_site(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    path = write_config('[archive]\nsite_url = "https://papers.example.org"\n')
    sunday = MONDAY - dt.timedelta(days=1)  # ISO week 10; Monday and Friday are week 11
    for day in (sunday, MONDAY, FRIDAY):
        drop(tmp_path, day, title="Star *Power* <RET>" if day == FRIDAY else "")
        run_digest(tmp_path, "run", "--config", str(path), "--date", day.isoformat(), check_code=0)
    archive = tmp_path / "archive"
    page = (archive / "weeks" / "2025-W11.md").read_text(encoding="utf-8")
    front, body = page.split("---\n")[1], page.split("---\n", 2)[2]
    assert front.splitlines()[:5] == [
        'title: "Daily papers digest - week 2025-W11"', "week: 2025-W11", "start: 2025-03-10", "end: 2025-03-16", "count: 4",
    ]
    assert "  inference: 2" in front and "  audio: 2" in front
    assert "[Monday 10 March 2025](../2025/03/2025-03-10.md) (2 papers)" in body
    assert "Star \\*Power\\* &lt;RET>" in body  # feed text is data in Markdown too
    assert "(../2025/03/2025-03-14.md#p-" in body
    assert (archive / "weeks" / "2025-W10.md").is_file() and not (archive / "weeks" / "2025-W12.md").exists()
    index = (archive / "index.md").read_text(encoding="utf-8")
    assert "(2025/03/2025-03-14.md) (2 papers) · [week 2025-W11](weeks/2025-W11.md)" in index
    feed = (archive / "feed.xml").read_text(encoding="utf-8")
    assert feed.count("<entry>") == 5  # three days and two weeks
    assert "— week 2025-W11: 4 new papers</title>" in feed and 'href="https://papers.example.org/weeks/2025-W11.html"' in feed
    before = {p: p.read_bytes() for p in (archive / "weeks").iterdir()}
    run_digest(tmp_path, "site", "--config", str(path), "--rebuild", check_code=0)  # the store alone gives the same pages
    assert {p: p.read_bytes() for p in (archive / "weeks").iterdir()} == before
    html = (tmp_path / "site" / "weeks" / "2025-W11.html").read_text(encoding="utf-8")
    assert 'href="../2025/03/2025-03-10.html"' in html and "Star *Power* &lt;RET&gt;" in html
    assert 'href="weeks/2025-W11.html"' in (tmp_path / "site" / "index.html").read_text(encoding="utf-8")


def test_the_weekly_template_is_inlined_ahead_like_the_daily_one() -> None:
    from digest.deliver.weekly import WEEKLY_HTML, probe_contexts
    from digest.inline import inline_styles
    from digest.render import INLINED, Renderer

    renderer = Renderer()
    ahead = renderer.env.get_template(INLINED + WEEKLY_HTML)  # found: its probes rendered alike both ways
    for context in probe_contexts():
        html = ahead.render(**context)
        assert 'style="' in html and "@media (prefers-color-scheme: dark)" in html
        assert html.count('class="paper-title"') == inline_styles(renderer.render_template(WEEKLY_HTML, **context)).count('class="paper-title"')


def test_a_machine_off_past_the_next_weekday_still_sends_the_missed_weeks_rollup(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    sink = Sink()
    with smtp_server(sink) as port:
        config = weekly_config(write_config, port, FRIDAY_READER)
        for offset in range(4):  # Monday to Thursday; then the machine is off until the Saturday after next
            run(config, MONDAY + dt.timedelta(days=offset), tmp_path)
        assert sink.messages == []
        run(config, FRIDAY + dt.timedelta(days=8))
        run(config, FRIDAY + dt.timedelta(days=9))
    (msg,) = [r.message for r in sink.messages]
    assert msg["Subject"].endswith("week to Fri 14 Mar 2025: 8 papers")


def test_a_reader_who_moves_their_weekday_to_just_after_the_last_one_loses_no_day(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    sink = Sink()
    with smtp_server(sink) as port:
        config = weekly_config(write_config, port)
        with SeenStore.open(config.store.path) as store:
            mover = Subscribers(store).add("mover@example.org", now=at(MONDAY), source="test",
                                           preferences=Preferences((), (), "weekly", 0))  # Mondays
        run(config, MONDAY, tmp_path)
        tuesday = MONDAY + dt.timedelta(days=1)
        run(config, tuesday, tmp_path)
        with SeenStore.open(config.store.path) as store:  # after Tuesday's run: Tuesdays from now on
            Subscribers(store).set_preferences(mover.id, Preferences((), (), "weekly", 1), now=at(tuesday), source="web")
        for offset in range(1, 8):  # Wednesday to the next Tuesday
            run(config, tuesday + dt.timedelta(days=offset), tmp_path)
    first, second = (r.message for r in sink.messages)
    assert first["Subject"].endswith("week to Mon 10 Mar 2025: 2 papers")
    assert second["Subject"].endswith("week to Tue 18 Mar 2025: 16 papers")  # Tuesday 11 to Tuesday 18
    assert "2025-03-11.html" in second.iter_parts().__next__().get_content()


def test_a_run_with_a_past_date_sends_its_papers_once_in_the_next_rollup(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    sink = Sink()
    with smtp_server(sink) as port:
        config = weekly_config(write_config, port, FRIDAY_READER)
        for offset in range(5):  # Monday to Friday: the first roll-up
            run(config, MONDAY + dt.timedelta(days=offset), tmp_path)
        (tmp_path / "inbox" / "backfill.txt").write_text(listing(dt.date(2025, 2, 28), 1, title="Backfilled Speculative"), encoding="utf-8")
        run(config, dt.date(2025, 2, 28))  # a missed day read later, with --date in the past
        run(config, FRIDAY + dt.timedelta(days=7), tmp_path)
    subjects = [r.message["Subject"] for r in sink.messages]
    assert [s.split("\u2014 ")[1] for s in subjects] == ["week to Fri 14 Mar 2025: 10 papers", "week to Fri 21 Mar 2025: 3 papers"]
    assert sum("Backfilled Speculative" in r.message.iter_parts().__next__().get_content() for r in sink.messages) == 1

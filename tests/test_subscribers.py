"""Subscribers in the store: the queries (a real SQLite file), the CLI, and runs that mail them
through the outbox (a real aiosmtpd server on 127.0.0.1)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from digest.config import load_config
from digest.errors import ConfigError
from digest.pipeline import run_cycle
from digest.store import MIGRATIONS, SUBSCRIBERS_VERSION, SeenStore
from digest.subscribers import Preferences, SubscriberError, Subscribers
from tests.conftest import FIXTURES, StoreBackend
from tests.httpserver import TestServer
from tests.smtp_sink import Sink, smtp_server
from tests.test_email import arxiv_config, email_rows, text_titles

NOW = dt.datetime(2025, 3, 14, 7, 0, tzinfo=dt.timezone.utc)
DAY = dt.date(2025, 3, 14)
SECRET = "test-secret-0123456789abcdef"
WINDOW = dt.timedelta(days=30)
Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def subs(backend: StoreBackend) -> Iterator[Subscribers]:
    """The subscribers of a new store, on each engine."""
    with backend.open() as store:
        yield Subscribers(store)


# -- the queries ---------------------------------------------------------------------------------


def test_an_address_is_one_subscriber_whatever_its_case(subs: Subscribers) -> None:
    added = subs.add("Reader@Example.ORG", now=NOW, source="cli", preferences=Preferences(("audio",)))
    assert added.address == "Reader@example.org"  # the domain lower-cased, the local part kept
    assert subs.find("reader@EXAMPLE.org") == added
    assert (added.status, added.topics, added.cadence, added.confirmed_at) == ("active", ("audio",), "daily", NOW)
    with pytest.raises(SubscriberError, match="already a subscriber"):
        subs.add("READER@example.org", now=NOW, source="cli")
    with pytest.raises(SubscriberError, match="not an email address"):
        subs.add("no-at-sign", now=NOW, source="cli")
    assert subs.counts() == {"pending": 0, "active": 1, "unsubscribed": 0, "bouncing": 0, "disabled": 0}


def test_a_config_recipient_with_a_non_ascii_capital_who_left_is_known_as_left(subs: Subscribers) -> None:
    """``readers`` leaves out a config recipient the store says left (statuses): SQLite's NOCASE
    folds ASCII only, so an address with "\u00c9" must be looked up as written, not lower-cased."""
    subs.unsubscribe_address("\u00c9va@Example.org", now=NOW, source="one-click")
    assert subs.statuses(["\u00c9va@Example.org", "other@example.org"]) == {"\u00e9va@example.org": "unsubscribed"}


@pytest.mark.parametrize(
    "address",
    [
        "reader\u202e@example.org",  # a right-to-left override: `subscribers list` would show it reversed
        "rea\u200bder@example.org",  # a zero-width space: looks like an address already listed
        "reader@exa\u2066mple.org",  # a bidi isolate in the domain
        "reader\x1b[2J\x1b[H@example.org",  # a terminal escape: clears the screen of whoever lists the subscribers
        "reader\U000e0041@example.org",  # a tag character ("ASCII smuggling")
    ],
)
def test_an_address_with_control_or_invisible_characters_is_not_an_address(subs: Subscribers, address: str) -> None:
    with pytest.raises(SubscriberError, match="is not an email address"):
        subs.request(address, now=NOW, source="web")  # what the public subscribe form calls
    with pytest.raises(SubscriberError, match="is not an email address"):
        subs.add(address, now=NOW, source="cli")
    assert subs.all() == []


def test_confirming_and_subscribing_again_change_the_epoch_so_old_links_change_nothing(subs: Subscribers) -> None:
    pending = subs.request("new@example.org", now=NOW, source="web")
    assert pending is not None and pending.status == "pending"
    assert subs.request("new@example.org", now=NOW, source="web") == pending  # asked twice: still the same pending row
    assert subs.confirm(pending.id, epoch=pending.epoch, now=NOW, source="web")
    active = subs.get(pending.id)
    assert active is not None and active.status == "active" and active.epoch == pending.epoch + 1
    assert not subs.confirm(pending.id, epoch=pending.epoch, now=NOW, source="web")  # a used confirmation link
    assert subs.request("new@example.org", now=NOW, source="web") is None  # already mailed: nothing to do
    assert subs.unsubscribe(active.id, epoch=active.epoch, now=NOW, source="one-click")
    assert not subs.unsubscribe(active.id, epoch=active.epoch, now=NOW, source="one-click")  # replayed: no change
    again = subs.request("new@example.org", now=NOW, source="web")
    assert again is not None and again.status == "pending" and again.epoch == active.epoch + 1
    assert not subs.unsubscribe(again.id, epoch=active.epoch, now=NOW, source="one-click")  # an old unsubscribe link
    kinds = [(e["kind"], e["source"]) for e in subs.events(again.id)]
    assert kinds == [("created", "web"), ("confirmed", "web"), ("unsubscribed", "one-click"), ("requested", "web")]


def test_hard_bounces_past_the_limit_in_the_window_disable_and_keep_the_reply(subs: Subscribers) -> None:
    subs.add("b@example.org", now=NOW, source="cli")

    def bounce(days: int, hard: bool = True) -> str:
        found = subs.record_bounce(
            "b@example.org", hard=hard, reason=f"550 5.1.1 gone ({days})", now=NOW + dt.timedelta(days=days),
            source="smtp", limit=3, window=WINDOW,
        )
        assert found is not None
        return found.status

    assert bounce(0, hard=False) == "active"  # soft: recorded only
    assert bounce(0) == "bouncing"
    assert bounce(40) == "bouncing"  # the first hard bounce is outside the window now
    subs.delivered(["b@example.org"], now=NOW + dt.timedelta(days=41))  # a message got through
    assert subs.find("b@example.org").status == "active"  # type: ignore[union-attr]
    assert bounce(42) == "bouncing"
    assert bounce(43) == "disabled"  # three hard bounces within 30 days
    gone = subs.find("b@example.org")
    assert gone is not None and gone.last_error == "550 5.1.1 gone (43)"
    assert subs.all("disabled") == [gone]
    assert subs.record_bounce("nobody@example.org", hard=True, reason="x", now=NOW, source="smtp", limit=3, window=WINDOW) is None


def undo_rollups(store: SeenStore) -> None:
    """Take migration 8 (the weekly roll-ups) back out of a store."""
    store.db.execute("DROP INDEX deliveries_by_week")
    store.db.execute("ALTER TABLE deliveries DROP COLUMN week_after")
    store.db.execute("ALTER TABLE deliveries DROP COLUMN week_end")
    store.db.execute("DROP TABLE rollups")


def test_the_migration_adds_subscribers_to_an_existing_store(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with SeenStore.open(path) as store:
        store.db.execute("DROP TABLE llm_summaries")  # (migrations 7 to 9, after this one)
        store.db.execute("DROP TABLE subscriber_events")
        store.db.execute("DROP TABLE subscribers")
        store.db.execute("ALTER TABLE deliveries DROP COLUMN claimed_by")  # (schema 9)
        store.db.execute("ALTER TABLE deliveries DROP COLUMN claimed_until")
        undo_rollups(store)
        store.db.execute(f"PRAGMA user_version = {SUBSCRIBERS_VERSION - 1}")  # the store as schema 5 left it
    with SeenStore.open(path, readonly=True) as store:  # read-only: not migrated, reads as no subscribers
        assert Subscribers(store).counts()["active"] == 0 and Subscribers(store).mailed() == {}
    with SeenStore.open(path) as store:
        assert store.schema_version == len(MIGRATIONS) > SUBSCRIBERS_VERSION
        Subscribers(store).add("a@example.org", now=NOW, source="cli")


# -- the command line ----------------------------------------------------------------------------


def test_add_import_list_export_and_remove_through_the_cli(
    write_config: Callable[..., Path], digest_cli: Cli, tmp_path: Path, backend: StoreBackend
) -> None:
    write_config(backend.toml)
    digest_cli("subscribers", "add", "one@example.org", "--topic", "audio", "--topic", "vision", check_code=0)
    (tmp_path / "in.csv").write_text(
        "address,topics,cadence,weekday\ntwo@example.org,inference,,\nthree@example.org,,daily,\none@example.org,,,\n",
        encoding="utf-8",
    )
    assert digest_cli("subscribers", "import", "in.csv", check_code=0).stdout == "Imported 2 subscribers; 1 already listed.\n"
    listed = json.loads(digest_cli("subscribers", "list", "--json", check_code=0).stdout)
    assert [(s["address"], s["topics"], s["cadence"], s["weekday"]) for s in listed] == [
        ("one@example.org", ["audio", "vision"], "daily", None),
        ("three@example.org", [], "daily", None),
        ("two@example.org", ["inference"], "daily", None),
    ]
    exported = digest_cli("subscribers", "export", check_code=0).stdout
    assert exported.splitlines()[0].startswith("address,status,topics,categories,cadence,weekday")
    # The export reads back into another store as the same list.
    other = tmp_path / "other"
    other.mkdir()
    (other / "digest.toml").write_text('[store]\npath = "o.sqlite3"\n', encoding="utf-8")
    (other / "out.csv").write_text(exported, encoding="utf-8")
    digest_cli("subscribers", "import", "--config", str(other / "digest.toml"), str(other / "out.csv"), check_code=0)
    again = json.loads(digest_cli("subscribers", "list", "--json", "--config", str(other / "digest.toml"), check_code=0).stdout)
    assert [(s["address"], s["status"], s["topics"], s["cadence"], s["weekday"]) for s in again] == [
        (s["address"], s["status"], s["topics"], s["cadence"], s["weekday"]) for s in listed
    ]
    assert digest_cli("subscribers", "remove", "two@example.org", check_code=0).stdout == "two@example.org is unsubscribed.\n"
    assert "two@example.org" in digest_cli("subscribers", "list", "--status", "unsubscribed", check_code=0).stdout
    status = json.loads(digest_cli("status", "--json", check_code=0).stdout)
    assert status["subscribers"] == {"pending": 0, "active": 2, "unsubscribed": 1, "bouncing": 0, "disabled": 0}
    assert "subscribers: 0 pending, 2 active, 1 unsubscribed, 0 bouncing, 0 disabled" in digest_cli("status", check_code=0).stdout
    digest_cli("subscribers", "remove", "--forget", "two@example.org", check_code=0)
    assert "two@example.org" not in digest_cli("subscribers", "export", check_code=0).stdout


def test_bad_input_is_one_line_per_problem_and_nothing_is_added(write_config: Callable[..., Path], digest_cli: Cli, tmp_path: Path) -> None:
    write_config()
    (tmp_path / "in.csv").write_text("address,topics\nok@example.org,audio\nnot-an-address,\nx@example.org,nosuch\n", encoding="utf-8")
    result = digest_cli("subscribers", "import", "in.csv", check_code=2)
    assert result.stderr.splitlines()[:2] == [
        "error: in.csv:3: 'not-an-address' is not an email address",
        "error: in.csv:4: unknown topic 'nosuch' (topics: architecture, inference, compression, training, adaptation,"
        " understanding, vision, multimodal, generation, audio, applications, other)",
    ]
    assert json.loads(digest_cli("subscribers", "list", "--json", check_code=0).stdout) == []
    (tmp_path / "nohead.csv").write_text("ok@example.org\n", encoding="utf-8")
    assert digest_cli("subscribers", "import", "nohead.csv", check_code=2).stderr == (
        "error: nohead.csv: the first line must be a header naming an 'address' column\n"
    )
    # A spreadsheet saved in Latin-1/cp1252 rather than UTF-8: one line naming the file and line, nothing added.
    (tmp_path / "latin1.csv").write_bytes("address\nok@example.org\nj\u00e9r\u00f4me@example.org\n".encode("cp1252"))
    assert digest_cli("subscribers", "import", "latin1.csv", check_code=2).stderr == (
        "error: latin1.csv: not UTF-8 text (invalid byte 0xe9); save the CSV as UTF-8\n"
    )
    (tmp_path / "huge.csv").write_text("address,topics\nok@example.org,\nx@example.org," + "a" * 200_000 + "\n", encoding="utf-8")
    assert digest_cli("subscribers", "import", "huge.csv", check_code=2).stderr == (
        "error: huge.csv:3: not readable as CSV (field larger than field limit (131072))\n"
    )
    assert json.loads(digest_cli("subscribers", "list", "--json", check_code=0).stdout) == []
    assert "Traceback" not in digest_cli("subscribers", "add", "bad", check_code=2).stderr
    assert digest_cli("subscribers", "add", "c@example.org", "--category", "cs.CL", "--category", "nosuch.XX", check_code=2).stderr == (
        "error: 'nosuch.XX' is not an arXiv category or archive (e.g. 'cs.CL', 'eess.AS', 'math', 'hep-ph')\n"
    )
    assert digest_cli("subscribers", "add", "w@example.org", "--cadence", "monthly", check_code=2).stderr != ""
    assert digest_cli("subscribers", "add", "w@example.org", "--cadence", "weekly", "--weekday", "someday", check_code=2).stderr == (
        "error: 'someday' is not a weekday (monday ... sunday)\n"
    )
    assert digest_cli("subscribers", "remove", "--forget", "nobody@example.org", check_code=1).stderr.startswith(
        "error: no subscriber 'nobody@example.org'"
    )


# -- runs that mail subscribers ------------------------------------------------------------------


def mail_config(write_config: Callable[..., Path], tmp_path: Path, port: int, recipients: str = "") -> Path:
    path = write_config(
        f'[archive]\nsite_url = "https://papers.example.org"\n\n[email]\nenabled = true\nhost = "127.0.0.1"\nport = {port}\n'
        f'security = "none"\n\n{recipients}'
    )
    shutil.copy(FIXTURES / "email" / "listing.txt", tmp_path / "inbox")
    return path


def test_active_subscribers_get_their_topics_and_the_others_get_nothing(
    write_config: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_SECRET", SECRET)
    sink = Sink()
    with smtp_server(sink) as port:
        config = load_config(mail_config(
            write_config, tmp_path, port,
            '[[email.recipients]]\naddress = "fixed@example.org"\n\n[[email.recipients]]\naddress = "left@example.org"\n\n'
            '[[email.recipients]]\naddress = "both@example.org"\ntopics = ["inference"]\n',
        ))
        with SeenStore.open(config.store.path) as store:
            subs = Subscribers(store)
            subs.add("audio@example.org", now=NOW, source="test", preferences=Preferences(("audio",)))
            subs.add("Both@Example.org", now=NOW, source="test", preferences=Preferences(("audio",)))  # the row wins over the config
            subs.add("pending@example.org", now=NOW, source="test", status="pending")
            subs.add("disabled@example.org", now=NOW, source="test", status="disabled")
            subs.unsubscribe_address("left@example.org", now=NOW, source="one-click")  # a config recipient who left
            subs.add("unsub@example.org", now=NOW, source="test")
            subs.unsubscribe_address("unsub@example.org", now=NOW, source="cli")
        report = run_cycle(config, now=NOW, day=DAY)
    assert report.deliveries["email"] == {"sent": 3, "failed": 0, "pending": 0}
    got = sink.by_recipient()
    assert sorted(got) == ["Both@example.org", "audio@example.org", "fixed@example.org"]
    for address in ("audio@example.org", "Both@example.org"):
        (msg,) = got[address]
        assert msg["Subject"].endswith(": 2 new papers")  # the audio topic only
    assert got["fixed@example.org"][0]["Subject"].endswith(": 5 new papers")


def test_a_subscribers_categories_filter_the_digest_as_a_config_recipients_do(
    write_config: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, http_server: TestServer
) -> None:
    """The inbox listing (no categories) and an arXiv listing whose five papers all have cs.LG, as
    in test_email's recipient test: a subscriber gets a paper when it passes their topics AND any
    of its categories is one of theirs or in one of their archives; a subscriber and a config
    recipient who chose the same get the same papers."""
    monkeypatch.setenv("DIGEST_SECRET", SECRET)
    feed = http_server.add_file("/rss/cs.LG", FIXTURES / "feeds" / "arxiv_rss.xml", "application/rss+xml")
    sink = Sink()
    with smtp_server(sink) as port:
        config = arxiv_config(
            write_config, tmp_path, feed, port, '[[email.recipients]]\naddress = "nlp-config@example.org"\ncategories = ["cs.CL"]\n'
        )
        with SeenStore.open(config.store.path) as store:
            subs = Subscribers(store)
            subs.add("everything@example.org", now=NOW, source="test")
            subs.add("nlp@example.org", now=NOW, source="test", preferences=Preferences(categories=("cs.CL",)))
            subs.add("bio-or-quantum@example.org", now=NOW, source="test", preferences=Preferences(categories=("q-bio", "QUANT-PH")))
            subs.add("audio-cs@example.org", now=NOW, source="test", preferences=Preferences(("audio",), ("cs",)))
        report = run_cycle(config, now=NOW, day=DAY)
    assert report.deliveries["email"] == {"sent": 4, "failed": 0, "pending": 0}
    got = {address: text_titles(copies[0]) for address, copies in sink.by_recipient().items()}
    assert sorted(got) == ["bio-or-quantum@example.org", "everything@example.org", "nlp-config@example.org", "nlp@example.org"]
    assert len(got["everything@example.org"]) == 10
    assert got["nlp@example.org"] == got["nlp-config@example.org"] == ["Sparse Mixtures of Low-Rank Adapters for Continual Learning"]
    assert sorted(got["bio-or-quantum@example.org"]) == ["Graph Neural Networks for Protein Folding Kinetics", "Quantum Kernels Revised"]
    assert email_rows(config)["audio-cs@example.org"] == ("sent", 1, "skipped: nothing new in the recipient's topics and categories")


def test_subscribers_without_the_secret_stop_the_run_before_anything_is_stored(
    write_config: Callable[..., Path], digest_cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DIGEST_SECRET", raising=False)
    with smtp_server(Sink()) as port:
        path = mail_config(write_config, tmp_path, port)
        digest_cli("subscribers", "add", "a@example.org", check_code=0)
        result = digest_cli("run", "--date", "2025-03-14", check_code=2)
    assert result.stderr.splitlines()[0] == (
        "error: serve.secret_env: the environment variable DIGEST_SECRET is not set; it must hold the secret that signs subscribers' links"
    )
    with SeenStore.open(load_config(path).store.path, readonly=True) as store:
        assert store.digests() == []
    with pytest.raises(ConfigError):
        from digest.tokens import load_signer

        load_signer(load_config(path), required=True)


@pytest.mark.parametrize("stage", ["rcpt", "data"])
def test_a_5xx_is_a_hard_bounce_and_a_4xx_a_soft_one(
    stage: str, write_config: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_SECRET", SECRET)
    sink = Sink()
    replies = sink.rcpt_replies if stage == "rcpt" else sink.data_replies
    replies["gone@example.org"] = ["550 5.1.1 <gone@example.org>: user unknown"]
    replies["full@example.org"] = ["452 4.2.2 mailbox full"]
    with smtp_server(sink) as port:
        config = load_config(mail_config(write_config, tmp_path, port, "[subscribers]\nbounce_limit = 1\n"))
        with SeenStore.open(config.store.path) as store:
            for address in ("gone@example.org", "full@example.org", "fine@example.org"):
                Subscribers(store).add(address, now=NOW, source="test")
        report = run_cycle(config, now=NOW, day=DAY)
    assert report.deliveries["email"] == {"sent": 1, "failed": 1, "pending": 1}
    with SeenStore.open(config.store.path) as store:
        subs = Subscribers(store)
        gone, full = subs.find("gone@example.org"), subs.find("full@example.org")
        assert gone is not None and full is not None
        assert (gone.status, gone.last_error) == ("disabled", "550 5.1.1 <gone@example.org>: user unknown")
        assert (full.status, full.last_error) == ("active", "452 4.2.2 mailbox full")
        assert [e["kind"] for e in subs.events(full.id)] == ["created", "bounce-soft"]
        assert [(e["kind"], e["source"]) for e in subs.events(gone.id)][1:] == [("bounce-hard", "smtp"), ("disabled", "smtp")]
    with sqlite3.connect(config.store.path) as db:
        states = dict(db.execute("SELECT recipient, state FROM deliveries WHERE channel = 'email'").fetchall())
    assert states == {"gone@example.org": "failed", "full@example.org": "pending", "fine@example.org": "sent"}

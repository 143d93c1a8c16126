"""``digest send --workers N`` (digest/send.py): workers sharing the email outbox through claims,
through the real CLI, against the real aiosmtpd sink on 127.0.0.1, on both engines."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from digest.faults import CRASH_EXIT
from digest.models import Digest, DigestCounts, Paper, TopicGroup
from tests.conftest import StoreBackend, run_digest
from tests.smtp_sink import Sink, smtp_server

NOW = dt.datetime(2025, 3, 14, 7, 0, tzinfo=dt.timezone.utc)
READERS = [f"reader{i:02d}@example.org" for i in range(40)]
LEASE = 3  # [email] claim_seconds: how long a killed worker's rows wait


def queued(backend: StoreBackend, folder: Path, port: int) -> None:
    """A config mailing READERS through the sink on ``port``, and a committed digest with one
    pending email row per reader (no run: only the outbox is there to send)."""
    listed = "".join(f'[[email.recipients]]\naddress = "{a}"\n\n' for a in READERS)
    (folder / "digest.toml").write_text(
        f'[email]\nenabled = true\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
        f'from = "Paper digest <digest@example.org>"\nclaim_seconds = {LEASE}\n\n{listed}{backend.toml}',
        encoding="utf-8",
    )
    papers = tuple(Paper(title=f"Sharing an Outbox, Part {i}", abstract="Workers claim rows.", arxiv_id=f"2503.0{i:04d}") for i in range(3))
    digest = Digest(NOW.date(), (TopicGroup("inference", "Inference & serving", papers),), DigestCounts(3, 3, 0, 0))
    with backend.open() as store:
        store.commit(digest, store.diff(papers), channels=[("email", a) for a in READERS], now=NOW)


def outbox(backend: StoreBackend) -> Counter[str]:
    with backend.open(readonly=True) as store:
        return Counter(d.state for d in store.deliveries(1))


def test_four_workers_send_each_message_once(backend: StoreBackend, tmp_path: Path) -> None:
    sink = Sink()
    with smtp_server(sink) as port:
        queued(backend, tmp_path, port)
        result = run_digest(tmp_path, "send", "--workers", "4", "--batch", "3", "--json", check_code=0)
    assert json.loads(result.stdout) == {"workers": 4, "sent": 40, "failed": 0, "pending": 0, "errors": []}
    assert sorted(sink.by_recipient()) == READERS and all(len(m) == 1 for m in sink.by_recipient().values())
    assert outbox(backend) == {"sent": 40}


def test_a_worker_killed_mid_batch_loses_nothing_and_sends_nothing_twice(postgresql_url: str, tmp_path: Path) -> None:
    """Four workers on PostgreSQL: the first is killed (DIGEST_FAULT crash point) after its first
    message of a batch of five was sent and marked; the three others send the rest, and the four
    rows it still held once its claim expires."""
    backend = StoreBackend("postgresql", tmp_path / "unused", postgresql_url)
    sink = Sink()
    with smtp_server(sink) as port:
        queued(backend, tmp_path, port)
        env = {k: v for k, v in os.environ.items() if k != "DIGEST_CONFIG"}
        killed = subprocess.run(
            [sys.executable, "-m", "digest", "send", "--batch", "5"], cwd=tmp_path, capture_output=True, text=True,
            env={**env, "DIGEST_FAULT": "crash:email-marked"}, timeout=120,
        )
        assert killed.returncode == CRASH_EXIT, killed.stderr
        assert len(sink.messages) == 1 and outbox(backend) == {"sent": 1, "pending": 39}
        with backend.open(readonly=True) as store:
            held = store.db.execute("SELECT COUNT(*) FROM deliveries WHERE claimed_by IS NOT NULL AND state = 'pending'").fetchone()[0]
        assert held == 4  # the rest of its batch, claimed by a process that is gone
        started = time.monotonic()
        result = run_digest(tmp_path, "send", "--workers", "3", "--batch", "5", "--json", check_code=0)
        waited = time.monotonic() - started
    assert json.loads(result.stdout) == {"workers": 3, "sent": 39, "failed": 0, "pending": 0, "errors": []}
    assert Counter(len(m) for m in sink.by_recipient().values()) == {1: 40}  # zero duplicates, zero lost
    assert sorted(sink.by_recipient()) == READERS
    assert outbox(backend) == {"sent": 40}
    assert waited >= LEASE - 1  # the killed worker's rows were sent once its claim had expired, not before


def test_a_run_leaves_the_rows_a_sender_holds_and_takes_back_its_own(backend: StoreBackend, tmp_path: Path) -> None:
    sink = Sink()
    with smtp_server(sink) as port:
        queued(backend, tmp_path, port)
        with backend.open() as store:  # a sender on another host holds ten rows (its claim runs long); a killed run held ten more
            held = store.claim_deliveries("email", worker="other-host:1", now=NOW, lease=dt.timedelta(days=36500), limit=10)
            store.claim_deliveries("email", worker="run", now=NOW, lease=dt.timedelta(days=36500), limit=10)
        (tmp_path / "inbox").mkdir()
        with (tmp_path / "digest.toml").open("a", encoding="utf-8") as config:
            config.write('\n[[sources]]\nname = "inbox"\nkind = "snapshots"\npath = "inbox/"\n')
        result = run_digest(tmp_path, "run", "--date", "2025-03-15", "--json")
    assert json.loads(result.stdout)["deliveries"]["email"] == {"sent": 30, "failed": 0, "pending": 10}
    assert sorted(sink.by_recipient()) == sorted(set(READERS) - {d.recipient for d in held})
    assert outbox(backend) == {"sent": 30, "pending": 10}


def test_send_with_email_disabled_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "digest.toml").write_text("", encoding="utf-8")
    result = run_digest(tmp_path, "send", check_code=2)
    assert result.stderr.splitlines() == ["error: nothing to send: [email] enabled is false", "hint: set [email] enabled = true"]


@pytest.mark.parametrize("value", ["0", "0.5"])
def test_claim_seconds_is_at_least_one(value: str, tmp_path: Path) -> None:
    (tmp_path / "digest.toml").write_text(f"[email]\nclaim_seconds = {value}\n", encoding="utf-8")
    result = run_digest(tmp_path, "send", check_code=2)
    assert result.stderr.splitlines() == [f"error: {tmp_path / 'digest.toml'}: email.claim_seconds: must be at least 1 second"]


def test_with_sent_by_workers_a_run_queues_and_digest_send_delivers(backend: StoreBackend, tmp_path: Path, fixtures_dir: Path) -> None:
    sink = Sink()
    with smtp_server(sink) as port:
        queued(backend, tmp_path, port)  # yesterday's digest, still queued
        (tmp_path / "inbox").mkdir()
        (tmp_path / "inbox" / "listing.txt").write_text((fixtures_dir / "email" / "listing.txt").read_text(encoding="utf-8"), encoding="utf-8")
        config = (tmp_path / "digest.toml").read_text(encoding="utf-8").replace("[email]\n", '[email]\nsent_by = "workers"\n', 1)
        (tmp_path / "digest.toml").write_text(config + '\n[[sources]]\nname = "inbox"\nkind = "snapshots"\npath = "inbox/"\n', encoding="utf-8")
        run = json.loads(run_digest(tmp_path, "run", "--date", "2025-03-15", "--json", check_code=0).stdout)
        assert run["new"] > 0 and run["deliveries"]["email"] == {"sent": 0, "failed": 0, "pending": 80, "sent_by": "workers"}
        assert sink.messages == []
        sent = json.loads(run_digest(tmp_path, "send", "--workers", "2", "--batch", "7", "--json", check_code=0).stdout)
    assert sent == {"workers": 2, "sent": 80, "failed": 0, "pending": 0, "errors": []}
    assert Counter(len(m) for m in sink.by_recipient().values()) == {2: 40}  # both digests, once each


def test_a_slow_worker_whose_claim_expired_does_not_send_what_another_worker_took(backend: StoreBackend, tmp_path: Path) -> None:
    """A worker slower than its claim (a rate limit, a slow server) is still alive when its claim
    ends: another worker takes the rows it has not reached, and the slow one must not send them too."""
    sink = Sink()
    with smtp_server(sink) as port:
        queued(backend, tmp_path, port)
        fast = (tmp_path / "digest.toml").read_text(encoding="utf-8")
        (tmp_path / "fast.toml").write_text(fast, encoding="utf-8")
        (tmp_path / "digest.toml").write_text(fast.replace("[email]\n", "[email]\nrate_limit = 1\n", 1), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if k != "DIGEST_CONFIG"}
        slow = subprocess.Popen(  # 8 rows at one message a second, held for LEASE seconds
            [sys.executable, "-m", "digest", "send", "--batch", "8"], cwd=tmp_path, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while not sink.messages and time.monotonic() < deadline:
                time.sleep(0.05)
            assert sink.messages, "the slow worker sent nothing"
            time.sleep(LEASE + 1.5)  # its claim on the rows it has not reached has ended; it is still sending
            assert slow.poll() is None
            result = run_digest(tmp_path, "send", "--config", "fast.toml", "--batch", "40", "--json")
        finally:
            _, errors = slow.communicate(timeout=120)
    assert slow.returncode == 0, errors
    assert json.loads(result.stdout)["pending"] == 0
    assert sorted(sink.by_recipient()) == READERS
    assert Counter(len(m) for m in sink.by_recipient().values()) == {1: 40}  # none sent twice
    assert outbox(backend) == {"sent": 40}


def test_send_exits_1_when_the_server_is_unreachable_and_the_rows_stay_pending(tmp_path: Path) -> None:
    """What cron or systemd sees: nothing could be sent, every row is still pending: not a success."""
    backend = StoreBackend("sqlite", tmp_path / "var" / "digest.sqlite3")
    sink = Sink()
    with smtp_server(sink) as port:
        pass  # the server is gone: nothing listens on its port now
    queued(backend, tmp_path, port)
    result = run_digest(tmp_path, "send", "--json")
    assert json.loads(result.stdout) == {"workers": 1, "sent": 0, "failed": 0, "pending": 40, "errors": []}
    assert result.returncode == 1
    assert outbox(backend) == {"pending": 40}


def test_with_sent_by_workers_digest_send_also_sends_the_weekly_rollup_once(
    backend: StoreBackend, tmp_path: Path, fixtures_dir: Path
) -> None:
    sink = Sink()
    with smtp_server(sink) as port:
        (tmp_path / "inbox").mkdir()
        (tmp_path / "inbox" / "listing.txt").write_text((fixtures_dir / "email" / "listing.txt").read_text(encoding="utf-8"), encoding="utf-8")
        (tmp_path / "digest.toml").write_text(
            f'[email]\nenabled = true\nsent_by = "workers"\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
            f'from = "Paper digest <digest@example.org>"\nclaim_seconds = {LEASE}\n\n'
            '[[email.recipients]]\naddress = "daily@example.org"\n\n'
            '[[email.recipients]]\naddress = "week@example.org"\ncadence = "weekly"\nweekday = "friday"\n\n'
            f'{backend.toml}\n[[sources]]\nname = "inbox"\nkind = "snapshots"\npath = "inbox/"\n',
            encoding="utf-8",
        )
        run = json.loads(run_digest(tmp_path, "run", "--date", "2025-03-14", "--json", check_code=0).stdout)
        assert run["deliveries"]["weekly"]["pending"] == 1 and sink.messages == []  # the run only queues, the roll-up too
        sent = json.loads(run_digest(tmp_path, "send", "--workers", "2", "--json", check_code=0).stdout)
        again = json.loads(run_digest(tmp_path, "send", "--json", check_code=0).stdout)
    assert sent == {"workers": 2, "sent": 2, "failed": 0, "pending": 0, "errors": []}
    assert again["sent"] == 0
    got = sink.by_recipient()
    assert sorted(got) == ["daily@example.org", "week@example.org"] and all(len(m) == 1 for m in got.values())
    assert "week to Fri 14 Mar 2025" in got["week@example.org"][0]["Subject"]


def test_a_killed_worker_process_of_digest_send_workers_does_not_hang_it(tmp_path: Path) -> None:
    """``digest send --workers 2`` whose worker processes die mid-batch (the OOM killer, a kill -9):
    the command ends, says so, and the rows they held are left for their claims to expire."""
    backend = StoreBackend("sqlite", tmp_path / "var" / "digest.sqlite3")
    sink = Sink()
    with smtp_server(sink) as port:
        queued(backend, tmp_path, port)
        env = {k: v for k, v in os.environ.items() if k != "DIGEST_CONFIG"}
        try:
            result = subprocess.run(
                [sys.executable, "-m", "digest", "send", "--workers", "2", "--batch", "3"], cwd=tmp_path, capture_output=True,
                text=True, env={**env, "DIGEST_FAULT": "crash:email-marked"}, timeout=60,
            )
        except subprocess.TimeoutExpired:
            pytest.fail("digest send --workers 2 hung after its worker processes were killed")
    assert result.returncode != 0
    assert "a worker process ended unexpectedly (exit code 86)" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(sink.messages) == 2 and outbox(backend) == {"sent": 2, "pending": 38}  # one each, then killed

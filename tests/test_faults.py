"""Faults a real deployment meets, made on demand: SMTP refusals and drops at each stage of a
session, a full disk while the archive, the site or the store is written, and the process killed
at each commit point of a run (``DIGEST_FAULT``, see digest/faults.py).

Each case checks what a user relies on: a clear error and no traceback, nothing half written,
the previous state intact, and the next run completing the work with nothing done twice.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import shutil
import socket
import sqlite3
import ssl
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword

from digest.config import load_config
from digest.deliver.archive import ArchiveChannel
from digest.deliver.email import EmailChannel, connect_smtp
from digest.faults import CRASH_EXIT, CRASH_POINTS, ENV
from digest.pipeline import run_cycle
from tests.conftest import FIXTURES, run_digest
from tests.httpserver import Reply, TestServer
from tests.smtp_sink import STAGES, Fault, Sink, smtp_server
from tests.test_email import DAY, NOW, RECIPIENTS, email_config, email_rows

Replayed = tuple[Path, dict[str, dict[str, object]]]

# -- SMTP: a 4xx, a 5xx or a dropped connection at each stage of the session --------------------

REPLIES = {
    "connect": ("421 4.3.2 service not available, closing", "554 5.3.2 no service here"),
    "starttls": ("454 4.7.0 TLS not available right now", "554 5.7.0 no TLS for you"),
    "auth": ("454 4.7.0 temporary authentication failure", "535 5.7.8 authentication credentials invalid"),
    "mail": ("451 4.3.0 sender check failed, try again later", "550 5.7.1 sender rejected"),
    "rcpt": ("452 4.2.2 mailbox full", "550 5.1.1 no such user"),
    "data": ("451 4.3.0 try again later", "554 5.6.0 message refused"),
    "quit": ("421 4.3.0 closing anyway", "554 5.0.0 confused at the end"),
}
SESSION = ("connect", "starttls", "auth")  # before any message: the whole batch waits for the next run


class Account:
    """An aiosmtpd authenticator that takes one login."""

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        return AuthResult(success=(auth_data.login, auth_data.password) == (b"digest", b"s3cret"))


@pytest.fixture
def tls(certificate: tuple[Path, Path]) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server TLS context with the self-signed certificate and a client context that trusts it."""
    cert, key = certificate
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    return server, ssl.create_default_context(cafile=str(cert))


@pytest.mark.parametrize("outcome", ["4xx", "5xx", "drop"])
@pytest.mark.parametrize("stage", STAGES)
def test_an_smtp_fault_at_each_stage_leaves_each_row_right_and_the_next_run_sends_each_message_once(
    stage: str, outcome: str, tls: tuple[ssl.SSLContext, ssl.SSLContext], write_config: Callable[..., Path],
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    server_tls, client_tls = tls
    reply = None if outcome == "drop" else REPLIES[stage][outcome == "5xx"]
    fault = Fault(stage, reply)
    sink = Sink()
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "s3cret")
    with smtp_server(sink, fault=fault, tls_context=server_tls, require_starttls=True, authenticator=Account(), auth_required=True) as port:
        config = load_config(email_config(
            write_config, tmp_path, port, recipients=RECIPIENTS[:2], security="starttls",
            email='username = "digest"\npassword_env = "TEST_SMTP_PASSWORD"',
        ))
        channel = EmailChannel(connect=lambda settings: connect_smtp(settings, tls_context=client_tls))
        first = run_cycle(config, now=NOW, day=DAY, delivery_channels=[ArchiveChannel(), channel])
        assert fault.struck >= 1
        rows = email_rows(config)
        states = sorted(state for state, _, _ in rows.values())
        if stage in SESSION:  # no session: nothing sent, every row waits; the one tried says why
            assert first.deliveries["email"] == {"sent": 0, "failed": 0, "pending": 2} and first.failed
            tried = [error for _, attempts, error in rows.values() if attempts]
            assert len(tried) == 1 and tried[0] is not None and tried[0].startswith("cannot connect"), rows
            assert reply is None or tried[0].endswith(reply)
        elif stage == "quit":  # both messages were accepted before the goodbye went wrong
            assert first.deliveries["email"] == {"sent": 2, "failed": 0, "pending": 0} and not first.failed
        elif outcome == "drop":  # one reconnect, the message sent on it: nothing lost, nothing twice
            assert first.deliveries["email"] == {"sent": 2, "failed": 0, "pending": 0} and not first.failed
            assert channel.connections == 2
        elif outcome == "4xx":  # that row waits (with a backoff), the other went
            assert states == ["pending", "sent"] and first.failed
            assert any(error == reply for _, _, error in rows.values())
        else:  # a 5xx fails that row for good; the other went
            assert states == ["failed", "sent"] and first.failed
            assert any(error == reply for _, _, error in rows.values())
        later = run_cycle(config, now=NOW + dt.timedelta(days=1), day=DAY + dt.timedelta(days=1),
                          delivery_channels=[ArchiveChannel(), EmailChannel(connect=lambda s: connect_smtp(s, tls_context=client_tls))])
    assert later.deliveries["email"]["pending"] == 0
    copies = {address: len(messages) for address, messages in sink.by_recipient().items()}
    if outcome == "5xx" and stage in ("mail", "rcpt", "data"):
        assert sorted(copies.values()) == [1] and sorted(s for s, _, _ in email_rows(config).values()) == ["failed", "sent"]
    else:
        assert copies == {"all@example.org": 1, "audio@example.org": 1}
        assert [s for s, _, _ in email_rows(config).values()] == ["sent", "sent"]


# -- the process killed at each commit point of a run -------------------------------------------

RUN_POINTS = [point for point in CRASH_POINTS if point != "site-batch"]


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def temp_files(folder: Path) -> list[Path]:
    """What an interrupted atomic write would leave: ``.NAME.*.tmp`` files."""
    return sorted(folder.rglob(".*.tmp"))


@pytest.mark.parametrize("point", RUN_POINTS)
def test_killed_at_each_commit_point_the_next_run_completes_the_digest_once(
    point: str, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    sink = Sink()
    with smtp_server(sink) as port:
        path = email_config(write_config, tmp_path, port, recipients=RECIPIENTS[:2])
        crashed = run_digest(tmp_path, "run", "--config", str(path), "--date", "2025-03-14", env={ENV: f"crash:{point}"})
        assert crashed.returncode == CRASH_EXIT, crashed.stderr
        store = tmp_path / "var" / "digest.sqlite3"
        with sqlite3.connect(store) as db:  # what the crash left: all of the commit or none of it
            digests = db.execute("SELECT COUNT(*) FROM digests").fetchone()[0]
            papers = db.execute("SELECT COUNT(*) FROM papers").fetchone()[0]
        assert (digests, papers) == ((0, 0) if point == "before-commit" else (1, 5))
        again = run_digest(tmp_path, "run", "--config", str(path), "--date", "2025-03-14", "--json", check_code=0)
    summary = json.loads(again.stdout)
    assert summary["new"] == (5 if point == "before-commit" else 0)  # a paper is in one digest, whatever the crash
    with sqlite3.connect(store) as db:
        assert db.execute("SELECT COUNT(*) FROM digests").fetchone()[0] == 1
        assert db.execute("SELECT COUNT(*) FROM papers").fetchone()[0] == 5
        assert db.execute("SELECT DISTINCT state FROM deliveries").fetchall() == [("sent",)]
    archive = tmp_path / "archive"
    assert (archive / "2025" / "03" / "2025-03-14.md").is_file() and "2025-03-14" in (archive / "index.md").read_text()
    assert temp_files(archive) == []
    copies = sink.by_recipient()
    if point == "email-accepted":  # the one window SMTP leaves: accepted, not yet marked; resent once, same Message-ID
        first, second = copies["all@example.org"]
        assert first["Message-ID"] == second["Message-ID"]
        assert len(copies["audio@example.org"]) == 1
    else:
        assert {address: len(messages) for address, messages in copies.items()} == {"all@example.org": 1, "audio@example.org": 1}


def test_killed_between_site_batches_the_next_build_gives_the_whole_site(replayed: Replayed, tmp_path: Path) -> None:
    folder = tmp_path / "copy"
    shutil.copytree(replayed[0], folder)
    crashed = run_digest(folder, "site", env={ENV: "crash:site-batch"})
    assert crashed.returncode == CRASH_EXIT
    assert temp_files(folder / "site") == []
    run_digest(folder, "site", check_code=0)
    run_digest(folder, "site", "--out", str(tmp_path / "fresh"), check_code=0)
    built, fresh = files_of(folder / "site"), files_of(tmp_path / "fresh")
    built.pop(".digest-site.json"), fresh.pop(".digest-site.json")  # the build's cache (file times)
    assert built == fresh


# -- a full disk while the archive, the site or the store is written ----------------------------


@pytest.fixture
def deployed(replayed: Replayed, tmp_path: Path) -> Path:
    """A copy of the replayed folder with a new listing in its inbox (five new papers on 2025-05-07)."""
    folder = tmp_path / "copy"
    shutil.copytree(replayed[0], folder)
    shutil.copy(FIXTURES / "email" / "listing.txt", folder / "inbox" / "listing.txt")
    return folder


def test_a_full_disk_while_the_archive_is_written_keeps_it_whole_and_the_next_run_writes_it(deployed: Path) -> None:
    archive = deployed / "archive"
    before = files_of(archive)
    full = run_digest(deployed, "run", "--date", "2025-05-07", env={ENV: "disk-full:*/archive/index.md"})
    assert full.returncode == 1 and "Traceback" not in full.stderr
    assert full.stderr.splitlines() == [
        f"error: archive: {archive / 'index.md'}: No space left on device (left pending: the next run delivers it)"
    ]
    assert files_of(archive) == before  # no page of the day, no half index, no temp file
    status = json.loads(run_digest(deployed, "status", "--json", check_code=0).stdout)
    assert status["last_digest"]["date"] == "2025-05-07" and status["deliveries"]["pending"] == 1
    run_digest(deployed, "run", "--date", "2025-05-07", check_code=0)
    after = files_of(archive)
    assert "2025/05/2025-05-07.md" in after and "2025-05-07" in after["index.md"].decode()
    run_digest(deployed, "site", "--rebuild", check_code=0)  # what the store alone gives: the same files
    assert files_of(archive) == after


def test_a_full_disk_while_the_site_is_written_leaves_whole_files_and_the_next_build_finishes(deployed: Path, tmp_path: Path) -> None:
    run_digest(deployed, "site", check_code=0)
    site = deployed / "site"
    before = files_of(site)
    run_digest(deployed, "run", "--date", "2025-05-07", check_code=0)
    full = run_digest(deployed, "site", env={ENV: "disk-full:*/site/index.html"})
    assert full.returncode == 1 and "Traceback" not in full.stderr
    assert full.stderr.splitlines()[0] == f"error: {site / 'index.html'}: cannot write: No space left on device"
    middle = files_of(site)
    assert temp_files(site) == [] and middle[".digest-site.json"] == before[".digest-site.json"]
    run_digest(deployed, "site", check_code=0)
    after = files_of(site)
    assert all(middle[name] in (before.get(name), after.get(name)) for name in middle)  # each file old or new, never half
    run_digest(deployed, "site", "--out", str(tmp_path / "fresh"), check_code=0)
    fresh = files_of(tmp_path / "fresh")
    after.pop(".digest-site.json"), fresh.pop(".digest-site.json")
    assert after == fresh


def test_a_full_disk_while_the_store_is_written_stores_nothing_and_the_next_run_does_it_all(deployed: Path) -> None:
    store, archive = deployed / "var" / "digest.sqlite3", deployed / "archive"
    entries = "".join(  # 40 more papers with long abstracts: the store must grow to take them
        f"Robust Streaming Method Number {n} for Sparse Attention\n\n" + f"We study variant {n} of sparse attention. " * 40 + "\n\n"
        for n in range(40)
    )
    (deployed / "inbox" / "big.txt").write_text("May 7\n\n" + entries, encoding="utf-8")
    before = files_of(archive)
    full = run_digest(deployed, "run", "--date", "2025-05-07", env={ENV: "disk-full:store"})
    assert full.returncode == 2
    assert full.stderr.splitlines()[0] == f"error: {store}: the disk is full: the store could not be written (database or disk is full)"
    assert "Traceback" not in full.stderr
    with sqlite3.connect(store) as db:
        assert db.execute("SELECT MAX(date), COUNT(*) FROM digests").fetchone() == ("2025-05-06", 4)
    assert files_of(archive) == before
    summary = json.loads(run_digest(deployed, "run", "--date", "2025-05-07", "--json", check_code=0).stdout)
    assert summary["new"] == 45 and summary["deliveries"]["archive"] == "done"
    assert (archive / "2025" / "05" / "2025-05-07.md").is_file()


# -- sources that fail on the wire: each is one line, the others go in --------------------------


def test_dns_failure_refusal_reset_and_trickle_are_one_line_each_and_the_run_goes_on(
    write_config: Callable[..., Path], http_server: TestServer, tmp_path: Path
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        refused = f"http://127.0.0.1:{probe.getsockname()[1]}/feed"
    reset = http_server.add("/reset", Reply(body=b"<rss>" + b"x" * 5000, reset_after=100))
    trickle = http_server.add("/trickle", Reply(chunks=itertools.repeat(b"x"), chunk_delay=0.2))
    # A byte every 0.2 s: each read is well inside the 1 s budget, so only the whole-response deadline can end it
    # (a byte a second raced the read timeout, which is the budget left when the request goes out).
    (tmp_path / "hostaliases").write_text("digest-test-no-such-host bad..name\n", encoding="utf-8")
    feeds = {"dns": "http://digest-test-no-such-host/feed", "refused": refused, "reset": reset, "trickle": trickle}
    write_config("[fetch]\ntimeout = 1\nretries = 0\n\n" + "".join(
        f'[[sources]]\nname = "{name}"\nkind = "feed"\nurl = "{url}"\n\n' for name, url in feeds.items()
    ))
    shutil.copy(FIXTURES / "email" / "listing.txt", tmp_path / "inbox")
    result = run_digest(tmp_path, "run", "--date", "2025-03-14", "--json", env={"HOSTALIASES": str(tmp_path / "hostaliases")})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        f"error: source 'dns': {feeds['dns']}: cannot resolve the host name 'digest-test-no-such-host' ([Errno -2] Name or service not known) after 1 attempt",
        f"error: source 'refused': {refused}: connection failed ([Errno 111] Connection refused) after 1 attempt",
        f"error: source 'reset': {reset}: connection broken while reading ([Errno 104] Connection reset by peer) after 1 attempt",
        f"error: source 'trickle': {trickle}: the response did not complete within 1s",
    ]
    summary = json.loads(result.stdout)
    assert summary["new"] == 5 and [s["ok"] for s in summary["sources"]] == [True, False, False, False, False]

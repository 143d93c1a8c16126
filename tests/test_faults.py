"""Faults a real deployment meets, made on demand: SMTP refusals and drops at each stage of a
session, a full disk while the archive, the site or the store is written, and the process killed
at each commit point of a run (``DIGEST_FAULT``, see digest/faults.py).

Each case checks what a user relies on: a clear error and no traceback, nothing half written,
the previous state intact, and the next run completing the work with nothing done twice.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
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

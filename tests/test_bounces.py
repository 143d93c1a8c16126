"""Bounces fed in after sending: an RFC 3464 report or one address, through the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from digest.bounces import Bounce, parse_dsn
from digest.subscribers import SubscriberError
from tests.conftest import FIXTURES

Cli = Callable[..., subprocess.CompletedProcess[str]]
DSN = FIXTURES / "bounces" / "dsn.eml"


def test_a_report_gives_each_failed_or_delayed_recipient_with_its_diagnostic() -> None:
    assert parse_dsn(DSN.read_bytes()) == [
        Bounce("gone@example.org", True, "5.1.1",
               "550 5.1.1 <gone@example.org>: Recipient address rejected: User unknown in virtual mailbox table"),
        Bounce("full@example.org", False, "4.2.2", "452 4.2.2 Mailbox full"),
    ]


def test_a_mail_that_is_not_a_report_is_refused() -> None:
    with pytest.raises(SubscriberError, match="not a delivery status report"):
        parse_dsn(b"From: someone@example.org\r\nSubject: hello\r\n\r\nJust a mail.\r\n")


@pytest.mark.parametrize("status", [b"", b"\xe2\x80\x8b", b"\x1b", b"five"])
def test_a_status_that_is_no_status_code_is_no_status(status: bytes) -> None:
    """A report is a mail anyone can send: a Status that is empty, invisible characters only or no RFC 3463
    code is a bounce with no status, so not a hard one."""
    report = DSN.read_bytes().replace(b"Status: 5.1.1", b"Status: " + status)
    assert parse_dsn(report)[0] == Bounce(
        "gone@example.org", False, "",
        "550 5.1.1 <gone@example.org>: Recipient address rejected: User unknown in virtual mailbox table",
    )


def test_bounces_from_a_report_on_stdin_and_by_hand_disable_past_the_limit(
    write_config: Callable[..., Path], digest_cli: Cli, tmp_path: Path
) -> None:
    write_config("[subscribers]\nbounce_limit = 2\n")
    for address in ("gone@example.org", "full@example.org"):
        digest_cli("subscribers", "add", address, check_code=0)
    run = subprocess.run(
        [sys.executable, "-m", "digest", "subscribers", "bounce", "--dsn", "-"], cwd=tmp_path, input=DSN.read_bytes(),
        capture_output=True, check=False,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.decode().splitlines() == [
        "gone@example.org: hard bounce recorded; status bouncing "
        "(550 5.1.1 <gone@example.org>: Recipient address rejected: User unknown in virtual mailbox table)",
        "full@example.org: soft bounce recorded; status active (452 4.2.2 Mailbox full)",
    ]
    listed = digest_cli("subscribers", "list", "--status", "bouncing", check_code=0).stdout
    assert "gone@example.org" in listed and "last error: 550 5.1.1" in listed
    by_hand = digest_cli("subscribers", "bounce", "gone@example.org", "--reason", "550 still gone", check_code=0).stdout
    assert by_hand == "gone@example.org: hard bounce recorded; status disabled (550 still gone)\n"
    (row,) = json.loads(digest_cli("subscribers", "list", "--status", "disabled", "--json", check_code=0).stdout)
    assert (row["address"], row["last_error"]) == ("gone@example.org", "550 still gone")
    assert digest_cli("subscribers", "bounce", "stranger@example.org", "--reason", "x", check_code=0).stdout == (
        "stranger@example.org: hard bounce, not a subscriber (ignored)\n"
    )
    assert "give an ADDRESS" in digest_cli("subscribers", "bounce", check_code=2).stderr


def test_a_reports_text_reaches_the_terminal_without_its_control_characters(
    write_config: Callable[..., Path], digest_cli: Cli, tmp_path: Path
) -> None:
    """A bounce is a mail anyone can send: its diagnostic is printed by `subscribers bounce` and `list`, and exported."""
    write_config()
    digest_cli("subscribers", "add", "full@example.org", check_code=0)
    hostile = DSN.read_bytes().replace(b"Mailbox full", b"Mailbox \x1b]0;owned\x07full")
    hostile = hostile.replace(b"Final-Recipient: rfc822; fine@example.org\r\nAction: delivered",
                              b"Final-Recipient: rfc822; fine\x1b[2J@example.org\r\nAction: failed")
    assert [b.reason for b in parse_dsn(hostile)][1:] == ["452 4.2.2 Mailbox ]0;owned full", "failed 2.0.0"]
    run = subprocess.run(
        [sys.executable, "-m", "digest", "subscribers", "bounce", "--dsn", "-"], cwd=tmp_path, input=hostile,
        capture_output=True, check=False,
    )
    assert run.returncode == 0, run.stderr
    listed = digest_cli("subscribers", "list", check_code=0).stdout
    for output in (run.stdout.decode(), listed, digest_cli("subscribers", "export", check_code=0).stdout):
        assert "\x1b" not in output and "\x07" not in output
    assert "last error" not in listed  # (a soft bounce: still active)
    assert "fine [2J@example.org: soft bounce, not a subscriber (ignored)" in run.stdout.decode()  # (status 2.0.0: not hard)

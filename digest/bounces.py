"""Bounces that arrive after sending: RFC 3464 delivery status notifications (DSNs).

A DSN is a ``multipart/report; report-type=delivery-status`` mail whose ``message/delivery-status``
part holds one block of fields per recipient (``Final-Recipient``, ``Action``, ``Status``,
``Diagnostic-Code``).  The stdlib email package parses it: each block is a header set.  A recipient
whose action is ``failed`` with a 5.x.x status is a hard bounce; ``delayed`` or a 4.x.x status a soft
one; anything else (delivered, relayed, expanded) is not a bounce.

``record_bounces`` is what ``digest subscribers bounce`` calls: one address with a reason, or every
bounce of a report.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import Message

from digest.config import Config
from digest.sources.text import one_line, visible
from digest.subscribers import SubscriberError, bounce_window, normalise_address, opened

_STATUS = re.compile(r"[245]\.\d{1,3}\.\d{1,3}\b")


@dataclass(frozen=True, slots=True)
class Bounce:
    """One failed recipient of a DSN."""

    address: str
    hard: bool
    status: str
    reason: str


def parse_dsn(data: bytes) -> list[Bounce]:
    """The bounces an RFC 3464 report holds; SubscriberError when ``data`` is not such a report."""
    message = message_from_bytes(data, policy=policy.compat32)
    report = _delivery_status(message)
    if report is None:
        raise SubscriberError("not a delivery status report (no message/delivery-status part in a multipart/report)")
    bounces: list[Bounce] = []
    blocks = report.get_payload()
    assert isinstance(blocks, list)
    for block in blocks[1:]:  # the first block is about the message, the others about one recipient each
        if not isinstance(block, Message):
            continue
        recipient = _readable(block.get("Final-Recipient") or block.get("Original-Recipient") or "")
        address = recipient.split(";", 1)[-1].strip().strip("<>")
        action = _readable(block.get("Action", "")).lower()
        status = _status_code(block.get("Status", ""))
        if not address or action not in ("failed", "delayed"):
            continue
        diagnostic = _readable(str(block.get("Diagnostic-Code", "")).split(";", 1)[-1])
        hard = action == "failed" and status.startswith("5")
        bounces.append(Bounce(address, hard, status, diagnostic or f"{action} {status}".strip()))
    return bounces


def _status_code(value: object) -> str:
    """The RFC 3463 status code (``5.1.1``) a Status field starts with, or "" when it starts with none
    (empty, invisible characters, bytes that are no text)."""
    match = _STATUS.match(_readable(value))
    return match[0] if match else ""


def _readable(value: object) -> str:
    """A report's field as one line without control, bidi or invisible characters: a report is a
    mail anyone can send, and its text is printed on the terminal and kept in the store."""
    return one_line("".join(c if c.isprintable() else " " for c in visible(str(value))))


def _delivery_status(message: Message) -> Message | None:
    """The ``message/delivery-status`` part of a report (searched depth first)."""
    for part in message.walk():
        if part.get_content_type() == "message/delivery-status":
            return part
    return None


def record_bounces(
    config: Config, *, now: dt.datetime, address: str | None = None, reason: str | None = None, soft: bool = False,
    report: bytes | None = None,
) -> list[str]:
    """Record one bounce (``address``) or a DSN's (``report``); one line per bounce saying what it did."""
    if report is not None:
        bounces = parse_dsn(report)
        if not bounces:
            return ["the report holds no failed or delayed recipient"]
    else:
        assert address is not None
        bounces = [Bounce(normalise_address(address), not soft, "", reason or ("soft bounce" if soft else "hard bounce"))]
    lines = []
    with opened(config) as subscribers:
        for bounce in bounces:
            found = subscribers.record_bounce(
                bounce.address, hard=bounce.hard, reason=bounce.reason, now=now, source="dsn" if report is not None else "cli",
                limit=config.subscribers.bounce_limit, window=bounce_window(config),
            )
            kind = "hard" if bounce.hard else "soft"
            if found is None:
                lines.append(f"{bounce.address}: {kind} bounce, not a subscriber (ignored)")
            else:
                lines.append(f"{found.address}: {kind} bounce recorded; status {found.status} ({bounce.reason})")
    return lines

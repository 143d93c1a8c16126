"""The email channel against a real SMTP server (aiosmtpd on 127.0.0.1)."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import smtplib
import sqlite3
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage, MIMEPart

from tests.conftest import FIXTURES
from digest.config import Config, EmailConfig, load_config
from digest.deliver.archive import ArchiveChannel
from digest.deliver.archive import render_options
from digest.deliver.email import (
    EmailChannel,
    ListInfo,
    Mailer,
    MessageBody,
    Outgoing,
    Pacer,
    Refused,
    Senders,
    backoff,
    connect_smtp,
    filter_digest,
    message_id,
    own_headers,
    own_headers_by_email_package,
    quoted_printable,
)
from digest.deliver.email import _plain_list as plain_path_taken
from digest.errors import ConfigError
from digest.models import Digest, DigestCounts, Paper, TopicGroup
from digest.pipeline import deliver_pending, load_grouping, load_topics, run_cycle
from digest.recall import load_digest
from digest.render import Renderer
from digest.store import Delivery, Diff, SeenStore
from digest.subscribers import Preferences, Subscribers
from digest.tokens import Signer
from tests.httpserver import TestServer
from tests.smtp_sink import Received, Sink, smtp_server

SECRET = "test-secret-0123456789abcdef"
SIGNER = Signer([SECRET.encode()])


@pytest.fixture(autouse=True)
def _link_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """The secret that signs readers' links, as ``[serve] secret_env`` names it (the default, DIGEST_SECRET)."""
    monkeypatch.setenv("DIGEST_SECRET", SECRET)


NOW = dt.datetime(2025, 3, 14, 7, 0, tzinfo=dt.timezone.utc)
DAY = dt.date(2025, 3, 14)
# The fixture listing groups as: inference 1, compression 2, audio 2.
RECIPIENTS: list[tuple[str, list[str]]] = [
    ("all@example.org", []),
    ("audio@example.org", ["audio"]),
    ("fast@example.org", ["compression", "inference"]),
    ("vision@example.org", ["vision"]),
]
Cli = Callable[..., subprocess.CompletedProcess[str]]


def email_config(
    write_config: Callable[..., Path],
    tmp_path: Path,
    port: int,
    *,
    recipients: list[tuple[str, list[str]]] = RECIPIENTS,
    email: str = "",
    security: str = "none",
    archive: str = 'site_url = "https://papers.example.org"',
) -> Path:
    """A config with the fixture listing in the inbox and email to the test server."""
    listed = "".join(
        f'[[email.recipients]]\naddress = "{address}"\ntopics = {json.dumps(topics)}\n\n' for address, topics in recipients
    )
    path = write_config(
        f"[archive]\n{archive}\n\n[email]\nenabled = true\nhost = \"127.0.0.1\"\nport = {port}\n"
        f"security = \"{security}\"\nfrom = \"Paper digest <digest@example.org>\"\n{email}\n\n{listed}"
    )
    shutil.copy(FIXTURES / "email" / "listing.txt", tmp_path / "inbox")
    return path


def email_rows(config: Config) -> dict[str, tuple[str, int, str | None]]:
    """recipient -> (state, attempts, last_error) of every email outbox row."""
    with sqlite3.connect(config.store.path) as db:
        rows = db.execute("SELECT recipient, state, attempts, last_error FROM deliveries WHERE channel = 'email'")
        return {r[0]: (r[1], r[2], r[3]) for r in rows}


def test_each_recipient_gets_their_topics_in_one_multipart_message(write_config: Callable[..., Path], tmp_path: Path) -> None:
    sink = Sink()
    with smtp_server(sink) as port:
        config = load_config(email_config(write_config, tmp_path, port))
        report = run_cycle(config, now=NOW, day=DAY)
    assert report.deliveries["email"] == {"sent": 3, "failed": 0, "pending": 0}
    assert not report.failed
    got = sink.by_recipient()
    assert sorted(got) == ["all@example.org", "audio@example.org", "fast@example.org"]  # vision: nothing new, no mail
    assert all(len(copies) == 1 for copies in got.values())
    expected = {
        "all@example.org": (5, ["Inference & serving", "Compression & quantization", "Speech & audio"]),
        "audio@example.org": (2, ["Speech & audio"]),
        "fast@example.org": (3, ["Inference & serving", "Compression & quantization"]),
    }
    ids = set()
    for address, (count, titles) in expected.items():
        msg = got[address][0]
        assert msg["Subject"] == f"Daily papers digest \u2014 Fri 14 Mar 2025: {count} new papers"
        assert msg["From"] == "Paper digest <digest@example.org>" and msg["To"] == address
        assert msg["Date"].datetime == NOW
        assert msg["List-Id"] == "Daily papers digest <daily-papers-digest.example.org>"
        unsubscribe = f"https://papers.example.org/unsubscribe?t={SIGNER.recipient_token('unsubscribe', address)}"
        preferences = f"https://papers.example.org/preferences?t={SIGNER.recipient_token('preferences', address)}"
        assert msg["List-Unsubscribe"] == f"<mailto:digest@example.org?subject=unsubscribe>, <{unsubscribe}>"
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert "@" not in unsubscribe.split("//")[1] and "%40" not in unsubscribe  # a token, never the address
        ids.add(msg["Message-ID"])
        assert msg.get_content_type() == "multipart/alternative"
        text, html = msg.iter_parts()
        assert (text.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
        assert text.get_content_charset() == html.get_content_charset() == "utf-8"
        assert text["Content-Transfer-Encoding"] == html["Content-Transfer-Encoding"] == "quoted-printable"
        body = html.get_content()
        # The table of contents and the topic headings follow the filter.
        assert body.count('class="toc-row"') == len(titles)
        for title in ("Inference &amp; serving", "Compression &amp; quantization", "Speech &amp; audio"):
            assert (title in body) == (title.replace("&amp;", "&") in titles)
        assert 'style="' in body  # premailer inlined the CSS
        assert "@media (prefers-color-scheme: dark)" in body
        assert f"{count} new paper" in text.get_content()
        assert f'<a href="{unsubscribe}" style="color:#6b7280">Unsubscribe</a>' in body
        assert f'<a href="{preferences}" style="color:#6b7280">Preferences</a>' in body
        assert f"Unsubscribe: {unsubscribe}" in text.get_content() and f"Preferences: {preferences}" in text.get_content()
        if address == "fast@example.org":
            assert "&lt;RET&gt;" in body and "<RET>" not in body  # feed text is data
    assert len(ids) == 3
    raw = sink.messages[0].data
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    assert raw.isascii()  # 7-bit on the wire: quoted-printable parts, RFC 2047 subject
    assert email_rows(config)["vision@example.org"] == ("sent", 1, "skipped: nothing new in the recipient's topics")


def fresh_message(config: Config, received: Received, topics: list[str], categories: list[str] | None = None) -> bytes:
    """The message to ``received``'s recipient built from scratch, as one EmailMessage.

    The body is rendered again from the stored digest; only the MIME boundary (random) is taken
    from the received message.
    """
    from email.utils import format_datetime

    from digest.render import subject_line

    (recipient,) = received.recipients
    info = ListInfo.from_config(config)
    url = f"https://papers.example.org/unsubscribe?t={SIGNER.recipient_token('unsubscribe', recipient)}"
    options = replace(
        render_options(config, NOW), unsubscribe=url,
        preferences=f"https://papers.example.org/preferences?t={SIGNER.recipient_token('preferences', recipient)}",
    )
    with SeenStore.open(config.store.path, readonly=True) as store:  # a recalled digest reads its papers on demand
        (record,) = store.digests()
        digest = filter_digest(load_digest(store, [record], load_topics(config)), topics, categories or ())
        (row,) = [d for d in store.deliveries(record.id) if d.recipient == recipient]
        rendered = Renderer(config.render.templates).render(digest, options, markdown=False)
    msg = EmailMessage(policy=email_policy.SMTP.clone(max_line_length=998))
    msg["To"] = recipient
    msg["Message-ID"] = message_id(row, record.created_at, info.sender.rsplit("@", 1)[-1])
    msg["List-Unsubscribe"] = f"<mailto:digest@example.org?subject=unsubscribe>, <{url}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["From"] = config.email.sender
    msg["Subject"] = subject_line(digest, config.archive.title)
    msg["Date"] = format_datetime(NOW)
    msg["List-Id"] = info.list_id
    msg["MIME-Version"] = "1.0"
    msg["Content-Type"] = "multipart/alternative"
    parts = []
    for content, subtype in ((rendered.text, "plain"), (rendered.html, "html")):
        part = MIMEPart(policy=email_policy.SMTP)
        part.set_content(content, subtype=subtype, charset="utf-8", cte="quoted-printable")
        parts.append(part)
    msg.set_payload(parts)
    boundary = received.message.get_boundary()
    assert boundary is not None
    msg.set_boundary(boundary)
    return msg.as_bytes()


def anatomy(data: bytes) -> tuple[bytes, list[bytes], list[str]]:
    """A message's header block, each part's header block (bytes as sent) and each part's decoded text."""
    head, _, body = data.partition(b"\r\n\r\n")
    boundary = message_from_bytes(data, policy=email_policy.default).get_boundary()
    assert boundary is not None
    chunks = body.split(b"--" + boundary.encode())
    assert chunks[0] == b"" and chunks[-1] == b"--\r\n"  # no preamble, no epilogue
    part_heads = [chunk.partition(b"\r\n\r\n")[0] for chunk in chunks[1:-1]]
    parsed = message_from_bytes(data, policy=email_policy.default)
    assert isinstance(parsed, EmailMessage)
    texts = [part.get_content() for part in parsed.iter_parts()]
    return head, part_heads, texts


def test_each_copy_is_the_message_the_email_package_builds_from_scratch(write_config: Callable[..., Path], tmp_path: Path) -> None:
    """Each copy (recipient headers written as text + the filter's body encoded once) has, byte for
    byte, the header lines, the MIME layout and part headers of the message the email package
    builds for that recipient alone, and the same text in each part; only the quoted-printable
    soft line breaks may fall elsewhere.  Odd addresses take the email package's path for their
    headers."""
    recipients = [
        ("all@example.org", []),
        ("first.last+tag@mail.example.org", []),
        ("o'neil@example.org", ["audio"]),
        ("x=y?z@example.org", ["audio"]),  # "=?" could start an encoded word: the package writes it
        ("a..b@example.org", ["compression", "inference"]),  # not a dot-atom: the package writes it
    ]
    sink = Sink()
    with smtp_server(sink) as port:
        config = load_config(email_config(write_config, tmp_path, port, recipients=recipients))
        report = run_cycle(config, now=NOW, day=DAY)
    assert report.deliveries["email"] == {"sent": 5, "failed": 0, "pending": 0}
    wanted = dict(recipients)
    assert sorted(r.recipients[0] for r in sink.messages) == sorted(wanted)
    bodies: dict[tuple[str, ...], set[tuple[str, ...]]] = {}
    for received in sink.messages:
        assert anatomy(received.data) == anatomy(fresh_message(config, received, wanted[received.recipients[0]]))
        assert received.data.isascii() and max(len(line) for line in received.data.split(b"\r\n")) <= 998
        bodies.setdefault(tuple(wanted[received.recipients[0]]), set()).add(shared_texts(received))
    assert all(len(shared) == 1 for shared in bodies.values())  # one rendering per topic filter, only the tokens differ


def shared_texts(received: Received) -> tuple[str, ...]:
    """Each part's text with the reader's own link tokens (asserted in every part) replaced by
    ``TOKEN``: what the copies of one rendering share."""
    tokens = [SIGNER.recipient_token(purpose, received.recipients[0]) for purpose in ("unsubscribe", "preferences")]
    texts = anatomy(received.data)[2]
    assert all(token in text for token in tokens for text in texts)  # each part has the reader's own links
    for token in tokens:
        texts = [text.replace(token, "TOKEN") for text in texts]
    return tuple(texts)


@pytest.mark.parametrize("content", [
    "plain line\nsecond line\n",
    "no final newline",
    "trailing space \ntrailing tab\t\n\n\nblank lines above\n",
    ".\n.lead dot\n..\nFrom the start\n",
    "= signs == everywhere =3D =\n",
    "caf\u00e9 \u2014 \u00ab\u00a0guillemets\u00a0\u00bb \U0001f600\n",
    "CR alone\rCRLF\r\nLF\n",
    "x" * 75 + "\n" + "y" * 76 + "\n" + "z" * 77 + "\n" + "w" * 300 + "\n",
    ("\u00e9" * 40 + " ") * 5 + "\n",  # escapes across the soft line breaks
    '<p style="margin:0; color:#111827">' * 20,
    "",
])
def test_quoted_printable_parts_decode_to_their_text(content: str) -> None:
    encoded = quoted_printable(content)
    assert encoded.isascii() and encoded.endswith(b"\r\n")
    lines = encoded.split(b"\r\n")[:-1]
    assert all(len(line) <= 76 and not line.endswith((b" ", b"\t")) for line in lines)
    part = MIMEPart(policy=email_policy.SMTP)
    part.set_content(content, subtype="plain", charset="utf-8", cte="quoted-printable")
    reference = part.get_content()  # the email package's own text for this content
    ours = message_from_bytes(
        b'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n' + encoded,
        policy=email_policy.default,
    )
    assert isinstance(ours, EmailMessage)
    assert ours.get_content().replace("\r\n", "\n") == reference  # CRLF on the wire


@pytest.mark.parametrize("body", [
    b".starts with a dot\r\n..two\r\n.\r\nmiddle\r\n.\r\n",
    b"no CRLF at the end\r\n.",
    b"plain\r\n",
])
def test_a_prestuffed_copy_arrives_exactly_as_sendmail_would_deliver_it(body: bytes) -> None:
    """The wire form (stuffed once per body) against smtplib's own sendmail, on the real server."""
    shared = MessageBody.of(1, b"From: digest@example.org\r\nSubject: dots\r\n", body)
    message = Outgoing(b"To: a@example.org\r\n" + shared.head + b"\r\n", shared)
    sink = Sink()
    with smtp_server(sink) as port:
        with Mailer(lambda: connect_smtp(EmailConfig(host="127.0.0.1", port=port, security="none"))) as mailer:
            mailer.send("digest@example.org", "a@example.org", message)
        with smtplib.SMTP("127.0.0.1", port) as client:
            client.sendmail("digest@example.org", ["a@example.org"], message.as_bytes())
    fast, reference = sink.messages
    assert fast.data == reference.data
    assert fast.data.rstrip(b"\r\n") == message.as_bytes().rstrip(b"\r\n")


def test_refusals_of_a_prestuffed_copy_are_reported_like_sendmails() -> None:
    shared = MessageBody.of(1, b"Subject: x\r\n", b"x\r\n")
    message = Outgoing(shared.head + b"\r\n", shared)
    sink = Sink(rcpt_replies={"gone@example.org": ["550 5.1.1 no such user"], "later@example.org": ["451 4.7.1 later"]})
    with smtp_server(sink) as port:
        settings = EmailConfig(host="127.0.0.1", port=port, security="none")
        with Mailer(lambda: connect_smtp(settings)) as mailer:
            with pytest.raises(Refused) as gone:
                mailer.send("digest@example.org", "gone@example.org", message)
            with pytest.raises(Refused) as later:
                mailer.send("digest@example.org", "later@example.org", message)
            mailer.send("digest@example.org", "ok@example.org", message)  # the same connection, after RSET
    assert (gone.value.code, gone.value.permanent, str(gone.value)) == (550, True, "550 5.1.1 no such user")
    assert (later.value.code, later.value.permanent) == (451, False)
    assert [m.recipients for m in sink.messages] == [["ok@example.org"]] and sink.sessions == 1


@pytest.mark.parametrize("site_url", ["https://papers.example.org", "http://plain.example.org", ""])
@pytest.mark.parametrize("unsubscribe", ["", "leave+list@lists.example.org"])
def test_recipient_headers_are_written_as_the_email_package_writes_them(site_url: str, unsubscribe: str) -> None:
    config = Config()
    config = replace(
        config,
        archive=replace(config.archive, site_url=site_url),
        email=replace(config.email, unsubscribe=unsubscribe),
    )
    info = ListInfo.from_config(config)
    msgid = "<digest.20250314.7.42.0123456789abcdef@example.org>"
    addresses = [
        "reader@example.org", "first.last+tag@mail.example.org", "o'neil@example.org", "UPPER_case-9@EXAMPLE.ORG",
        "x=y@example.org", "what?@example.org", "a..b@example.org", ".a@example.org", '"quoted"@example.org',
        "(comment)a@example.org", "a,b@example.org", "a" * 300 + "@example.org",
    ]
    assert plain_path_taken(info, "example.org")  # the plain path is really taken (it checks itself against the package)
    for address in addresses:
        for url in ("", f"{info.unsubscribe_url}?t={SIGNER.recipient_token('unsubscribe', address)}" if info.unsubscribe_url else ""):
            assert own_headers(address, info=info, msgid=msgid, url=url) == own_headers_by_email_package(
                address, info=info, msgid=msgid, url=url
            )


def test_send_empty_mails_a_recipient_whose_topics_have_nothing(write_config: Callable[..., Path], tmp_path: Path) -> None:
    sink = Sink()
    with smtp_server(sink) as port:
        config = load_config(email_config(write_config, tmp_path, port, recipients=RECIPIENTS[3:], email="send_empty = true"))
        report = run_cycle(config, now=NOW, day=DAY)
    assert report.deliveries["email"] == {"sent": 1, "failed": 0, "pending": 0}
    (msg,) = sink.by_recipient()["vision@example.org"]
    assert msg["Subject"] == "Daily papers digest \u2014 Fri 14 Mar 2025: 0 new papers"


def test_no_site_url_means_a_mailto_unsubscribe_only(write_config: Callable[..., Path], tmp_path: Path) -> None:
    sink = Sink()
    with smtp_server(sink) as port:
        path = email_config(write_config, tmp_path, port, recipients=RECIPIENTS[:1], archive="", email='unsubscribe = "leave@example.org"')
        run_cycle(load_config(path), now=NOW, day=DAY)
    (msg,) = sink.by_recipient()["all@example.org"]
    assert msg["List-Unsubscribe"] == "<mailto:leave@example.org?subject=unsubscribe>"
    assert msg["List-Unsubscribe-Post"] is None  # RFC 8058 one-click needs an https URI


def test_without_the_secret_config_recipients_get_a_mailto_unsubscribe_and_no_personal_links(
    write_config: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DIGEST_SECRET")
    sink = Sink()
    with smtp_server(sink) as port:
        run_cycle(load_config(email_config(write_config, tmp_path, port, recipients=RECIPIENTS[:1])), now=NOW, day=DAY)
    (msg,) = sink.by_recipient()["all@example.org"]
    assert msg["List-Unsubscribe"] == "<mailto:digest@example.org?subject=unsubscribe>"
    assert msg["List-Unsubscribe-Post"] is None
    text = msg.get_body(("plain",))
    assert text is not None
    assert "Unsubscribe: mailto:digest@example.org?subject=unsubscribe" in text.get_content()
    assert "Preferences:" not in text.get_content() and "SLOT" not in text.get_content()


def test_feed_and_config_text_never_reach_a_header(write_config: Callable[..., Path], tmp_path: Path) -> None:
    """A title with CR/LF (from a feed, or the archive title) stays in the body, on one line."""
    evil = "Evil\r\nBcc: victim@example.org\r\nSubject: pwned"
    sink = Sink()
    with smtp_server(sink) as port:
        path = email_config(
            write_config, tmp_path, port, recipients=RECIPIENTS[:1], archive='title = "Daily\\nBcc: boss@example.org"'
        )
        config = load_config(path)
        digest = Digest(DAY, (TopicGroup("inference", "Inference & serving", (Paper(evil, "An abstract."),)),), DigestCounts(1, 1))
        grouper = load_grouping(config)
        with SeenStore.open(config.store.path) as store:
            store.commit(digest, Diff(digest.papers, ()), channels=[("email", "all@example.org")], now=NOW)
            summary, failed, _, _ = deliver_pending(
                store, config, grouper.taxonomy, Renderer(), now=NOW, delivery_channels=[EmailChannel()]
            )
    assert summary["email"] == {"sent": 1, "failed": 0, "pending": 0} and not failed
    (received,) = sink.messages
    assert received.recipients == ["all@example.org"]
    msg = received.message
    assert "Bcc" not in msg and msg.get_all("Subject") == ["Daily Bcc: boss@example.org \u2014 Fri 14 Mar 2025: 1 new paper"]
    assert all("\r" not in v and "\n" not in v for v in msg.values())
    _, html = msg.iter_parts()
    assert "Evil Bcc: victim@example.org Subject: pwned</a>" in html.get_content()


def test_a_451_stays_pending_with_backoff_and_is_sent_once_on_a_later_run(write_config: Callable[..., Path], tmp_path: Path) -> None:
    sink = Sink(rcpt_replies={"audio@example.org": ["451 4.7.1 greylisted, try again later"]})
    with smtp_server(sink) as port:
        config = load_config(email_config(write_config, tmp_path, port))
        first = run_cycle(config, now=NOW, day=DAY)
        assert first.deliveries["email"] == {"sent": 2, "failed": 0, "pending": 1} and first.failed
        assert email_rows(config)["audio@example.org"] == ("pending", 1, "451 4.7.1 greylisted, try again later")
        with SeenStore.open(config.store.path) as store:
            (row,) = store.pending_deliveries("email")
        assert row.next_attempt_at == NOW + backoff(1) == NOW + dt.timedelta(minutes=15)
        early = run_cycle(config, now=NOW + dt.timedelta(minutes=5), day=DAY)  # not due yet
        assert early.deliveries["email"] == {"sent": 0, "failed": 0, "pending": 1}
        later = run_cycle(config, now=NOW + dt.timedelta(minutes=16), day=DAY)
    assert later.deliveries["email"] == {"sent": 1, "failed": 0, "pending": 0} and not later.failed
    assert later.digest is None  # nothing new: the retry came from the outbox
    assert {a: len(m) for a, m in sink.by_recipient().items()} == {"all@example.org": 1, "audio@example.org": 1, "fast@example.org": 1}
    assert email_rows(config)["audio@example.org"] == ("sent", 2, None)


def test_a_550_fails_that_row_and_the_batch_goes_on(write_config: Callable[..., Path], tmp_path: Path) -> None:
    sink = Sink(rcpt_replies={"audio@example.org": ["550 5.1.1 no such user"]})
    with smtp_server(sink) as port:
        config = load_config(email_config(write_config, tmp_path, port, recipients=RECIPIENTS[:3]))
        report = run_cycle(config, now=NOW, day=DAY)
        again = run_cycle(config, now=NOW + dt.timedelta(days=1), day=DAY)
    assert report.deliveries["email"] == {"sent": 2, "failed": 1, "pending": 0} and report.failed
    assert sorted(sink.by_recipient()) == ["all@example.org", "fast@example.org"]
    assert email_rows(config)["audio@example.org"] == ("failed", 1, "550 5.1.1 no such user")
    assert again.deliveries["email"] == {"sent": 0, "failed": 0, "pending": 0}  # a failed row is not resent
    assert len(sink.messages) == 2


def test_a_dropped_connection_reconnects_and_sends_nothing_twice(write_config: Callable[..., Path], tmp_path: Path) -> None:
    sink = Sink(drop_on={2})  # the server hangs up when the second message's data arrives
    with smtp_server(sink) as port:
        config = load_config(email_config(write_config, tmp_path, port, recipients=RECIPIENTS[:3]))
        report = run_cycle(config, now=NOW, day=DAY)
    assert report.deliveries["email"] == {"sent": 3, "failed": 0, "pending": 0}
    assert {a: len(m) for a, m in sink.by_recipient().items()} == {"all@example.org": 1, "audio@example.org": 1, "fast@example.org": 1}
    assert sink.sessions == 2  # one connection for the batch, one reconnect


def test_an_unreachable_server_leaves_every_row_pending(write_config: Callable[..., Path], tmp_path: Path) -> None:
    from tests.smtp_sink import free_port

    config = load_config(email_config(write_config, tmp_path, free_port(), recipients=RECIPIENTS[:3]))
    report = run_cycle(config, now=NOW, day=DAY)
    assert report.deliveries["email"] == {"sent": 0, "failed": 0, "pending": 3} and report.failed
    rows = email_rows(config)
    assert [state for state, _, _ in rows.values()] == ["pending"] * 3
    assert rows["all@example.org"][2] is not None and rows["all@example.org"][2].startswith("cannot connect")


def readers_config(write_config: Callable[..., Path], tmp_path: Path, port: int, via: str, email: str = "") -> Path:
    """A config whose first three RECIPIENTS are [[email.recipients]] (``via`` "config") or
    active subscribers in the store (``via`` "store")."""
    if via == "config":
        return email_config(write_config, tmp_path, port, recipients=RECIPIENTS[:3], email=email)
    path = email_config(write_config, tmp_path, port, recipients=[], email=email)
    config = load_config(path)
    with SeenStore.open(config.store.path) as store:
        for address, topics in RECIPIENTS[:3]:
            Subscribers(store).add(address, now=NOW, source="test", preferences=Preferences(tuple(topics)))
    return path


@pytest.mark.parametrize("via", ["config", "store"])
@pytest.mark.parametrize("held", [1, 2])
def test_killed_after_the_commit_every_recipient_gets_exactly_one_copy(
    held: int, via: str, write_config: Callable[..., Path], digest_cli: Cli, tmp_path: Path
) -> None:
    """SIGKILL the real CLI while the server holds message ``held`` (not accepted), then run again.

    At the kill the digest and its outbox rows are committed and the messages before ``held`` are
    accepted and marked sent: this is the "after the commit, before (all of) the sending" crash.
    The readers are config recipients or subscribers in the store.
    """
    sink = Sink(block_on=held)
    with smtp_server(sink) as port:
        path = readers_config(write_config, tmp_path, port, via)
        with killed_run(path, tmp_path):  # SIGKILLed when the block ends
            assert sink.blocked.wait(60), "the run never reached the SMTP server"
            config = load_config(path)
            with SeenStore.open(config.store.path, readonly=True) as store:
                assert len(store.digests()) == 1  # committed
            states = [state for state, _, _ in email_rows(config).values()]
            assert sorted(states) == ["pending"] * (4 - held) + ["sent"] * (held - 1)
            assert len(sink.messages) == held - 1
        rerun = run_again_unblocked(sink, digest_cli, path)
    assert rerun == {"sent": 4 - held, "failed": 0, "pending": 0}
    assert {a: len(m) for a, m in sink.by_recipient().items()} == {"all@example.org": 1, "audio@example.org": 1, "fast@example.org": 1}
    assert [state for state, _, _ in email_rows(config).values()] == ["sent"] * 3


@contextmanager
def killed_run(path: Path, cwd: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``digest run`` of the config ``path`` on 2025-03-14 as a child process, SIGKILLed when the block ends."""
    env = {k: v for k, v in os.environ.items() if k != "DIGEST_CONFIG"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "digest", "run", "--config", str(path), "--date", "2025-03-14"],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        yield proc
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        proc.kill()
        proc.wait()


def run_again_unblocked(sink: Sink, digest_cli: Cli, path: Path) -> dict[str, int]:
    """Let the server accept everything again, run the next day, return the run's email summary."""
    sink.block_on = None
    sink.release.set()
    rerun = digest_cli("run", "--config", str(path), "--date", "2025-03-15", "--json", check_code=0)
    summary: dict[str, int] = json.loads(rerun.stdout)["deliveries"]["email"]
    return summary


@pytest.mark.parametrize("via", ["config", "store"])
def test_killed_while_sending_over_two_connections_every_recipient_gets_exactly_one_copy(
    via: str, write_config: Callable[..., Path], digest_cli: Cli, tmp_path: Path
) -> None:
    """The server holds the first message; the other connection sends and marks the rest; SIGKILL; run again."""
    sink = Sink(block_on=1)
    with smtp_server(sink) as port:
        path = readers_config(write_config, tmp_path, port, via, email="connections = 2")
        with killed_run(path, tmp_path):  # SIGKILLed when the block ends
            assert sink.blocked.wait(60), "the run never reached the SMTP server"
            config = load_config(path)
            deadline = time.monotonic() + 60
            while sorted(state for state, _, _ in email_rows(config).values()) != ["pending", "sent", "sent"]:
                assert time.monotonic() < deadline, email_rows(config)  # the first held, the other two sent
                time.sleep(0.05)
            assert len(sink.messages) == 2
        rerun = run_again_unblocked(sink, digest_cli, path)
    assert rerun == {"sent": 1, "failed": 0, "pending": 0}
    assert {a: len(m) for a, m in sink.by_recipient().items()} == {"all@example.org": 1, "audio@example.org": 1, "fast@example.org": 1}
    assert [state for state, _, _ in email_rows(config).values()] == ["sent"] * 3


# -- TLS and login -----------------------------------------------------------------------------


class Accounts:
    """An aiosmtpd authenticator with one account."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        self.sink.logins.append((login, password))
        return AuthResult(success=(login, password) == ("digest", "s3cret \u00e9"))


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_tls_with_a_self_signed_certificate_and_login_from_the_environment(
    security: str, certificate: tuple[Path, Path], write_config: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = certificate
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    client_tls = ssl.create_default_context(cafile=str(cert))
    sink = Sink()
    tls: dict[str, Any] = (
        {"tls_context": server_tls, "require_starttls": True} if security == "starttls"
        # aiosmtpd only counts STARTTLS as TLS for AUTH; on an implicit-TLS port it must be told.
        else {"ssl_context": server_tls, "auth_require_tls": False}
    )
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "s3cret \u00e9")
    with smtp_server(sink, authenticator=Accounts(sink), auth_required=True, **tls) as port:
        path = email_config(
            write_config, tmp_path, port, recipients=RECIPIENTS[:1],
            email='username = "digest"\npassword_env = "TEST_SMTP_PASSWORD"', security=security,
        )
        config = load_config(path)
        channel = EmailChannel(connect=lambda settings: connect_smtp(settings, tls_context=client_tls))
        report = run_cycle(config, now=NOW, day=DAY, delivery_channels=[ArchiveChannel(), channel])
    assert report.deliveries["email"] == {"sent": 1, "failed": 0, "pending": 0}
    assert sink.logins == [("digest", "s3cret \u00e9")]
    assert len(sink.messages) == 1


def test_the_default_tls_context_refuses_a_self_signed_certificate(
    certificate: tuple[Path, Path], write_config: Callable[..., Path], tmp_path: Path
) -> None:
    cert, key = certificate
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    sink = Sink()
    with smtp_server(sink, tls_context=server_tls, require_starttls=True) as port:
        path = email_config(write_config, tmp_path, port, recipients=RECIPIENTS[:1], security="starttls")
        report = run_cycle(load_config(path), now=NOW, day=DAY)
    assert report.deliveries["email"] == {"sent": 0, "failed": 0, "pending": 1}
    assert not sink.messages


def test_an_unset_password_variable_is_a_clear_error_before_anything_is_stored(
    write_config: Callable[..., Path], digest_cli: Cli, tmp_path: Path
) -> None:
    path = email_config(write_config, tmp_path, 25, recipients=RECIPIENTS[:1], email='username = "digest"\npassword_env = "NO_SUCH_SMTP_PASSWORD"')
    result = digest_cli("run", "--config", str(path), env={"NO_SUCH_SMTP_PASSWORD": ""})
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: email.password_env: the environment variable NO_SUCH_SMTP_PASSWORD is not set; it must hold the SMTP password of 'digest'",
        "hint: export NO_SUCH_SMTP_PASSWORD=... before running digest (under systemd: Environment= or EnvironmentFile= in the unit)",
    ]
    with SeenStore.open(tmp_path / "var" / "digest.sqlite3", readonly=True) as store:
        assert store.digests() == []  # the papers are still new for the next run


def text_titles(message: EmailMessage) -> list[str]:
    """The paper titles of a message's text part, in order."""
    text, _ = message.iter_parts()
    return [line[2:] for line in str(text.get_content()).splitlines() if line.startswith("* ")]


def arxiv_config(write_config: Callable[..., Path], tmp_path: Path, feed: str, port: int, recipients: str) -> Config:
    """Two sources, the arXiv RSS fixture served at ``feed`` (five papers, all cs.LG) and the inbox
    with the email listing (no categories), mailed through the SMTP server on ``port`` to
    ``recipients`` (``[[email.recipients]]`` tables)."""
    path = write_config(
        f'[[sources]]\nname = "cs.LG"\nkind = "feed"\nurl = "{feed}"\n'
        'announce_types = ["new", "cross", "replace", "replace-cross"]\n\n'
        '[archive]\nsite_url = "https://papers.example.org"\n\n'
        f'[email]\nenabled = true\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n\n{recipients}'
    )
    shutil.copy(FIXTURES / "email" / "listing.txt", tmp_path / "inbox")
    return load_config(path)


def test_recipients_filter_by_arxiv_category_as_well_as_topic(
    write_config: Callable[..., Path], tmp_path: Path, http_server: TestServer
) -> None:
    """The inbox listing (no categories) and an arXiv listing whose five papers all have cs.LG:
    a recipient gets a paper when it passes the topics filter AND any of its categories is one of
    theirs or in one of their archives (case ignored)."""
    feed = http_server.add_file("/rss/cs.LG", FIXTURES / "feeds" / "arxiv_rss.xml", "application/rss+xml")
    recipients: list[tuple[str, list[str], list[str]]] = [
        ("all@example.org", [], []),
        ("nlp@example.org", [], ["cs.CL"]),
        ("nlp-too@example.org", [], ["cs.CL"]),  # the same selection: the same body
        ("bio-or-quantum@example.org", [], ["q-bio", "QUANT-PH"]),  # whole archives, any case
        ("stats@example.org", [], ["stat.ML"]),  # the fourth category of a paper: not shown, still matched
        ("audio-cs@example.org", ["audio"], ["cs"]),  # audio papers have no categories, cs papers are elsewhere
    ]
    listed = "".join(
        f'[[email.recipients]]\naddress = "{a}"\ntopics = {json.dumps(t)}\ncategories = {json.dumps(c)}\n\n'
        for a, t, c in recipients
    )
    sink = Sink()
    with smtp_server(sink) as port:
        config = arxiv_config(write_config, tmp_path, feed, port, listed)
        report = run_cycle(config, now=NOW, day=DAY)
    assert report.deliveries["email"] == {"sent": 5, "failed": 0, "pending": 0}
    got = {address: copies[0] for address, copies in sink.by_recipient().items()}
    assert sorted(got) == sorted(a for a, _, _ in recipients if a != "audio-cs@example.org")
    assert len(text_titles(got["all@example.org"])) == 10
    assert text_titles(got["nlp@example.org"]) == text_titles(got["nlp-too@example.org"]) == [
        "Sparse Mixtures of Low-Rank Adapters for Continual Learning"
    ]
    assert sorted(text_titles(got["bio-or-quantum@example.org"])) == [
        "Graph Neural Networks for Protein Folding Kinetics", "Quantum Kernels Revised"
    ]
    assert text_titles(got["stats@example.org"]) == ["Attention Is Not All You Need for Tabular Data"]
    stats_text, stats_html = got["stats@example.org"].iter_parts()
    assert "\n  [cs.LG] [cs.AI] [cs.DB] +1\n" in str(stats_text.get_content()).replace("\r\n", "\n")
    assert got["stats@example.org"]["Subject"] == "Daily papers digest \u2014 Fri 14 Mar 2025: 1 new paper"
    assert str(stats_html.get_content()).count('class="toc-row"') == 1  # only the topic that paper is in
    assert email_rows(config)["audio-cs@example.org"] == ("sent", 1, "skipped: nothing new in the recipient's topics and categories")
    chosen = {a: (t, c) for a, t, c in recipients}
    for received in sink.messages:
        topics, categories = chosen[received.recipients[0]]
        assert anatomy(received.data) == anatomy(fresh_message(config, received, topics, categories))
    bodies = {r.recipients[0]: shared_texts(r) for r in sink.messages}
    assert bodies["nlp@example.org"] == bodies["nlp-too@example.org"]  # one rendering per selection, only the tokens differ


def test_filter_digest_keeps_topics_and_categories_and_drops_emptied_groups() -> None:
    def paper(title: str, *categories: str) -> Paper:
        return Paper(title=title, categories=categories)

    digest = Digest(
        DAY,
        (
            TopicGroup("audio", "Speech & audio", (paper("Codec", "eess.AS", "cs.SD"), paper("No categories"))),
            TopicGroup("vision", "Vision", (paper("Segmenter", "cs.CV"), paper("Galaxy images", "astro-ph.GA", "cs.CV"))),
            TopicGroup("other", "Other", (paper("Neutrinos", "hep-ph"), paper("Old astro", "astro-ph"))),
        ),
        DigestCounts(6, 6, 0, 0),
    )

    def kept(topics: list[str], categories: list[str]) -> list[tuple[str, list[str]]]:
        return [(g.code, [p.title for p in g.papers]) for g in filter_digest(digest, topics, categories).groups]

    assert filter_digest(digest, [], []) is digest
    assert kept(["audio"], []) == [("audio", ["Codec", "No categories"])]
    assert kept([], ["eess.AS"]) == [("audio", ["Codec"])]
    assert kept([], ["astro-ph"]) == [("vision", ["Galaxy images"]), ("other", ["Old astro"])]  # archive: astro-ph.*
    assert kept([], ["cs.cv", "hep-ph"]) == [("vision", ["Segmenter", "Galaxy images"]), ("other", ["Neutrinos"])]
    assert kept(["audio", "other"], ["cs"]) == [("audio", ["Codec"])]  # topics AND categories
    assert kept(["vision"], ["eess"]) == []
    assert kept([], ["hep"]) == []  # "hep" is no archive of hep-ph: names match whole
    assert kept([], ["astro"]) == []


# -- config and pacing -------------------------------------------------------------------------


def test_recipient_topics_must_exist_in_the_taxonomy(write_config: Callable[..., Path], tmp_path: Path) -> None:
    path = email_config(write_config, tmp_path, 25, recipients=[("a@example.org", ["audio"]), ("b@example.org", ["robotics", "other"])])
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (line,) = caught.value.message.splitlines()
    assert line.startswith(f"{path}: email.recipients[1].topics[0]: unknown topic 'robotics' (topics: architecture, inference, ")
    assert line.endswith(", applications, other)")


def test_recipient_categories_must_be_arxiv_codes_in_a_list(write_config: Callable[..., Path], tmp_path: Path) -> None:
    path = write_config(
        '[[email.recipients]]\naddress = "a@example.org"\ncategories = ["cs.CL", "math", "hep-ph", "Machine Learning", "cs.", "xx.YY"]\n\n'
        '[[email.recipients]]\naddress = "b@example.org"\ncategories = "cs.CL"\n\n'
        '[[email.recipients]]\naddress = "c@example.org"\ncategories = [5]\n\n'
        '[[email.recipients]]\naddress = "d@example.org"\ncategory = ["cs.CL"]\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.message.splitlines() == [
        f"{path}: email.recipients[1].categories: expected a list, got a string 'cs.CL'",
        f"{path}: email.recipients[2].categories[0]: expected a string, got an integer 5",
        f"{path}: email.recipients[3].category: unknown key (known keys here: address, cadence, categories, topics, weekday)",
        f"{path}: email.recipients[0].categories[3]: 'Machine Learning' is not an arXiv category or archive (e.g. 'cs.CL', 'eess.AS', 'math', 'hep-ph')",
        f"{path}: email.recipients[0].categories[4]: 'cs.' is not an arXiv category or archive (e.g. 'cs.CL', 'eess.AS', 'math', 'hep-ph')",
        f"{path}: email.recipients[0].categories[5]: 'xx.YY' is not an arXiv category or archive (e.g. 'cs.CL', 'eess.AS', 'math', 'hep-ph')",
    ]


def test_schedule_and_email_values_are_checked(write_config: Callable[..., Path]) -> None:
    path = write_config(
        '[schedule]\ncron = "0 7 * *"\ntimezone = "Mars/Olympus"\n\n[email]\nfrom = "nobody"\nrate_limit = -1.0\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    lines = caught.value.message.splitlines()
    assert f"{path}: schedule.timezone: unknown time zone 'Mars/Olympus' (e.g. 'UTC', 'Europe/Paris')" in lines
    assert any(line.startswith(f"{path}: schedule.cron: '0 7 * *' is not a crontab expression") for line in lines)
    assert f"{path}: email.from: 'nobody' is not an address like 'Paper digest <digest@example.org>'" in lines
    assert any(line.startswith(f"{path}: email.rate_limit: must be 0") for line in lines)
    assert len(lines) == 4


class FakeClient:
    """An SmtpClient that accepts everything."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def sendmail(self, from_addr: str, to_addrs: Any, msg: bytes) -> dict[str, Any]:
        self.sent.extend(to_addrs)
        return {}

    def quit(self) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.mark.parametrize("connections", [1, 3])
def test_rate_limit_paces_the_whole_batch_over_any_number_of_connections(
    connections: int, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    clock = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    clients: list[FakeClient] = []

    def connect(settings: EmailConfig) -> FakeClient:
        clients.append(FakeClient())
        return clients[-1]

    recipients = [(f"r{n}@example.org", []) for n in range(5)]
    path = email_config(write_config, tmp_path, 25, recipients=recipients, email=f"rate_limit = 4.0\nconnections = {connections}")
    channel = EmailChannel(connect=connect, sleep=sleep, clock=lambda: clock[0])
    report = run_cycle(load_config(path), now=NOW, day=DAY, delivery_channels=[ArchiveChannel(), channel])
    assert report.deliveries["email"] == {"sent": 5, "failed": 0, "pending": 0}
    assert slept == [0.25] * 4  # one pace for the batch, not one per connection
    assert sorted(r for c in clients for r in c.sent) == [r for r, _ in recipients]
    assert channel.connections == len(clients) <= connections


def delivery_row(n: int) -> Delivery:
    return Delivery(n, 1, DAY, "email", f"r{n}@example.org", "pending", 0, None, None)


def test_an_error_while_composing_settles_the_messages_already_in_flight_first() -> None:
    """The threads' accepted messages are marked before the error propagates (nothing resent)."""
    shared = MessageBody.of(1, b"Subject: x\r\n", b"x\r\n")
    settled: list[tuple[int, Any]] = []

    def jobs() -> Iterator[tuple[Delivery, Outgoing]]:
        yield delivery_row(1), Outgoing(shared.head + b"\r\n", shared)
        yield delivery_row(2), Outgoing(shared.head + b"\r\n", shared)
        raise RuntimeError("a template broke")

    def settle(delivery: Delivery, error: Any) -> bool:
        settled.append((delivery.id, error))
        return True

    senders = Senders(lambda: FakeClient(), 2, "digest@example.org", Pacer(0))
    with pytest.raises(RuntimeError, match="a template broke"):
        senders.run(jobs(), settle)
    assert sorted(settled) == [(1, None), (2, None)]


def test_several_connections_send_each_copy_once_and_intact(write_config: Callable[..., Path], tmp_path: Path) -> None:
    recipients = [(f"r{n}@example.org", [["audio"], [], ["compression", "inference"], ["vision"]][n % 4]) for n in range(12)]
    sink = Sink(rcpt_replies={"r1@example.org": ["451 4.7.1 later"], "r2@example.org": ["550 5.1.1 no such user"]}, drop_on={5})
    with smtp_server(sink) as port:
        config = load_config(email_config(write_config, tmp_path, port, recipients=recipients, email="connections = 3"))
        channel = EmailChannel()
        report = run_cycle(config, now=NOW, day=DAY, delivery_channels=[ArchiveChannel(), channel])
    # r3, r7, r11 (vision) have nothing new; r1 is greylisted, r2 refused, the rest sent once each.
    assert report.deliveries["email"] == {"sent": 7, "failed": 1, "pending": 1}
    assert sorted(r.recipients[0] for r in sink.messages) == sorted(f"r{n}@example.org" for n in (0, 4, 5, 6, 8, 9, 10))
    wanted = dict(recipients)
    for received in sink.messages:
        assert anatomy(received.data) == anatomy(fresh_message(config, received, wanted[received.recipients[0]]))
    assert channel.connections == 4 and sink.sessions == 4  # three, and one reconnect after the drop
    rows = email_rows(config)
    assert rows["r1@example.org"][:2] == ("pending", 1) and rows["r2@example.org"] == ("failed", 1, "550 5.1.1 no such user")


@pytest.mark.parametrize("count", [6, 2])
def test_connections_the_server_refuses_leave_the_batch_to_the_others(
    count: int, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    """A server allowing fewer connections than configured: the refused ones give their message back."""
    opened = [0]

    def connect(settings: EmailConfig) -> smtplib.SMTP:
        opened[0] += 1
        if opened[0] > 1:
            raise smtplib.SMTPConnectError(421, b"4.7.0 too many connections from your host")
        return connect_smtp(settings)

    recipients = [(f"r{n}@example.org", []) for n in range(count)]
    sink = Sink()
    with smtp_server(sink) as port:
        config = load_config(email_config(write_config, tmp_path, port, recipients=recipients, email="connections = 4"))
        report = run_cycle(config, now=NOW, day=DAY, delivery_channels=[ArchiveChannel(), EmailChannel(connect=connect)])
    assert report.deliveries["email"] == {"sent": count, "failed": 0, "pending": 0} and not report.failed
    assert sorted(r.recipients[0] for r in sink.messages) == [r for r, _ in recipients] and sink.sessions == 1
    assert all(row[:2] == ("sent", 1) for row in email_rows(config).values())


def test_an_unreachable_server_with_several_connections_tries_one_row(write_config: Callable[..., Path], tmp_path: Path) -> None:
    from tests.smtp_sink import free_port

    config = load_config(email_config(write_config, tmp_path, free_port(), recipients=RECIPIENTS[:3], email="connections = 3"))
    report = run_cycle(config, now=NOW, day=DAY)
    assert report.deliveries["email"] == {"sent": 0, "failed": 0, "pending": 3} and report.failed
    assert sorted(attempts for _, attempts, _ in email_rows(config).values()) == [0, 0, 1]


def test_connections_must_be_between_1_and_16(write_config: Callable[..., Path]) -> None:
    for value in (0, 17):
        with pytest.raises(ConfigError) as caught:
            load_config(write_config(f"[email]\nconnections = {value}\n"))
        assert caught.value.message.endswith("email.connections: must be between 1 and 16")


def test_a_run_with_nothing_to_send_never_imports_smtplib(write_config: Callable[..., Path], tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from digest.cli import main\n"
        "try:\n"
        "    main(['run', '--date', sys.argv[1], '--json'])\n"
        "except SystemExit as exit:\n"
        "    print('exit', exit.code, 'smtplib' in sys.modules, 'email.policy' in sys.modules, file=sys.stderr)\n"
    )
    sink = Sink()
    with smtp_server(sink) as port:
        email_config(write_config, tmp_path, port)
        runs = [
            subprocess.run([sys.executable, "-c", script, day], cwd=tmp_path, capture_output=True, text=True, check=True)
            for day in (DAY.isoformat(), (DAY + dt.timedelta(days=1)).isoformat())
        ]
    assert runs[0].stderr.split()[-4:] == ["exit", "0", "True", "True"]  # three mails sent
    assert json.loads(runs[0].stdout)["deliveries"]["email"] == {"sent": 3, "failed": 0, "pending": 0}
    assert runs[1].stderr.split()[-4:] == ["exit", "0", "False", "False"]  # nothing new: no mail, no mail modules
    assert json.loads(runs[1].stdout)["new"] == 0 and len(sink.messages) == 3

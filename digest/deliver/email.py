"""The email channel: one message per (digest, recipient) outbox row, sent over SMTP.

    EmailChannel.deliver(pending rows, oldest digest first)
      ├── Composer: each stored digest is loaded once, and rendered once per distinct selection
      │   (the recipient's topics and arXiv categories) into a MessageBody (shared headers, the
      │   encoded body, and that body dot-stuffed for DATA)
      ├── outgoing: the recipient's own headers (To, Message-ID, List-Unsubscribe) before the body
      └── Senders: ``[email] connections`` threads, each with one Mailer (one SMTP connection,
          reconnecting once when the server drops it); the caller's thread composes, paces
          (``rate_limit``, for the whole batch) and marks the rows: it alone touches the store

Each row is marked right after the server answers: ``sent`` when it accepted the message,
``pending`` with a backoff (``next_attempt_at``) for a 4xx reply or a dropped connection,
``failed`` for a 5xx reply.  A row is never sent again once marked sent.  (SMTP has no two-phase
commit: a crash between the server's "250" and the mark resends that message next run; the
stable Message-ID lets receiving systems drop the copy.  A connection is given its next message
only once its last one is marked, so that window holds at most one message per connection.
Marks are not batched into larger transactions: one autocommit UPDATE costs ~0.06 ms against
~0.01 ms in a batch, too little to widen the window for.)

Errors a send can raise, caught by category:

    SendError                 one message was not accepted (the row stays pending or fails)
    ├── Refused               the server answered 4xx/5xx (``permanent`` for 5xx)
    ├── Dropped               the connection dropped twice in a row while sending it
    └── Unavailable           no connection could be opened (the batch stops; rows stay pending)

The SMTP connection comes from a factory (``connect``): ``connect_smtp`` follows ``[email]``;
tests pass their own, e.g. with a TLS context that trusts a self-signed certificate.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import functools
import hashlib
import os
import queue
import random
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from email.utils import format_datetime, parseaddr
from typing import TYPE_CHECKING, Any, Protocol

from digest import faults
from digest.categories import matches
from digest.config import WEEKDAY_NAMES, Config, EmailConfig
from digest.deliver import ChannelResult, Claim, DeliveryContext
from digest.deliver.archive import render_options
from digest.errors import ConfigError
from digest.models import Digest, Paper
from digest.recall import load_digest
from digest.render import RenderOptions, oneline, subject_line
from digest.store import Delivery, SeenStore
from digest.subscribers import Subscriber, Subscribers
from digest.tokens import TOKEN_LENGTH, Signer, load_signer

if TYPE_CHECKING:
    import smtplib
    import ssl
    from email.message import EmailMessage
    from email.policy import EmailPolicy

# smtplib and the email package's header classes (~10 ms) are imported where mail is composed or
# sent: a run with nothing to send (a 304, nothing new) never needs them.


@functools.cache
def header_policy() -> EmailPolicy[EmailMessage]:
    """Headers folded only past 998 characters, so that the URLs of List-Unsubscribe are never
    rewritten as RFC 2047 encoded words (which the standard folder does to long "words")."""
    from email import policy

    return policy.SMTP.clone(max_line_length=998)

BACKOFF_FIRST = dt.timedelta(minutes=15)
BACKOFF_MAX = dt.timedelta(hours=12)


class SmtpClient(Protocol):
    """The part of ``smtplib.SMTP`` the channel uses: a connected, logged-in client."""

    def sendmail(self, from_addr: str, to_addrs: Sequence[str], msg: bytes) -> Any:
        """Send one message; raise an ``smtplib`` error when it is not accepted."""
        ...

    def quit(self) -> Any:
        """Say goodbye and close."""
        ...

    def close(self) -> None:
        """Close without a word."""
        ...


Connect = Callable[[EmailConfig], SmtpClient]


# -- connecting ------------------------------------------------------------------------------


def smtp_password(settings: EmailConfig) -> str | None:
    """The SMTP password from the environment variable ``password_env`` names (None without a username)."""
    if not settings.username:
        return None
    value = os.environ.get(settings.password_env)
    if not value:
        raise ConfigError(
            f"email.password_env: the environment variable {settings.password_env} is not set; "
            f"it must hold the SMTP password of {settings.username!r}",
            hint=f"export {settings.password_env}=... before running digest "
            "(under systemd: Environment= or EnvironmentFile= in the unit)",
        )
    return value


def connect_smtp(settings: EmailConfig, *, tls_context: ssl.SSLContext | None = None) -> smtplib.SMTP:
    """Open an SMTP connection as ``[email]`` says: plain, STARTTLS or SSL, then log in if a username is set."""
    import smtplib

    password = smtp_password(settings)
    client: smtplib.SMTP
    if settings.security == "ssl":
        client = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout, context=_tls(tls_context))
    else:
        client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    try:
        if settings.security == "starttls":
            client.starttls(context=_tls(tls_context))
        if password is not None:
            _login(client, settings.username, password)
    except BaseException:
        client.close()
        raise
    return client


def _tls(context: ssl.SSLContext | None) -> ssl.SSLContext:
    """``context``, else the system's default (loading the CA store: made only when TLS is used)."""
    import ssl

    return context or ssl.create_default_context()


def _login(client: smtplib.SMTP, username: str, password: str) -> None:
    """``client.login``, except that a non-ASCII name or password goes as UTF-8 AUTH PLAIN (RFC 4616).

    (smtplib encodes credentials as ASCII and would raise UnicodeEncodeError.)
    """
    import smtplib

    if username.isascii() and password.isascii():
        client.login(username, password)
        return
    client.ehlo_or_helo_if_needed()
    token = base64.b64encode(f"\0{username}\0{password}".encode()).decode("ascii")
    code, reply = client.docmd("AUTH", f"PLAIN {token}")
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, reply)


# -- sending ---------------------------------------------------------------------------------


class SendError(Exception):
    """A message was not accepted; ``str()`` is the reason for the outbox's ``last_error``."""


class Refused(SendError):
    """The server refused the message with an SMTP reply code."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"{code} {text}".strip())
        self.code = code

    @property
    def permanent(self) -> bool:
        """A 5xx reply: sending again will not help."""
        return 500 <= self.code < 600


class Dropped(SendError):
    """The connection dropped while sending, again after a reconnect."""


class Unavailable(SendError):
    """No connection to the server could be opened (or logging in failed)."""


def _reply(code: int, text: bytes | str) -> Refused:
    return Refused(code, oneline(text.decode("utf-8", "replace") if isinstance(text, bytes) else text))


class Mailer:
    """One SMTP connection reused for a batch, opened on the first message."""

    def __init__(self, connect: Callable[[], SmtpClient]) -> None:
        self._connect = connect
        self._client: SmtpClient | None = None
        self.connections = 0

    def __enter__(self) -> Mailer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, sender: str, recipient: str, message: Outgoing) -> None:
        """Send one message; return when the server accepted it, else raise a SendError."""
        import smtplib

        for attempt in (1, 2):
            client = self._open()
            try:
                if isinstance(client, smtplib.SMTP):
                    _send_wire(client, sender, recipient, message)
                else:
                    client.sendmail(sender, [recipient], message.as_bytes())
                return
            except smtplib.SMTPRecipientsRefused as exc:
                code, text = next(iter(exc.recipients.values()))
                raise _reply(code, text) from None
            except smtplib.SMTPResponseException as exc:
                raise _reply(exc.smtp_code, exc.smtp_error) from None
            except (smtplib.SMTPServerDisconnected, OSError) as exc:  # SMTPException is an OSError too
                self._drop()
                if attempt == 2:
                    raise Dropped(f"connection lost while sending: {exc or type(exc).__name__}") from None
            except UnicodeEncodeError:
                raise Refused(553, "the address needs SMTPUTF8, which digest does not use") from None

    def close(self) -> None:
        """Say QUIT (ignoring a server that is already gone) and forget the connection."""
        import smtplib

        if self._client is not None:
            try:
                self._client.quit()
            except (smtplib.SMTPException, OSError):
                self._client.close()
            self._client = None

    def _open(self) -> SmtpClient:
        import smtplib

        if self._client is None:
            try:
                self._client = self._connect()
            except smtplib.SMTPResponseException as exc:
                raise Unavailable(f"cannot connect or log in: {_reply(exc.smtp_code, exc.smtp_error)}") from None
            except (smtplib.SMTPException, OSError) as exc:
                raise Unavailable(f"cannot connect: {exc or type(exc).__name__}") from None
            self.connections += 1
        return self._client

    def _drop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None



class Pacer:
    """Spaces calls of ``wait`` out to ``rate`` per second (0: no limit)."""

    def __init__(
        self, rate: float, *, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._clock = clock
        self._sleep = sleep
        self._next_slot = 0.0

    def wait(self) -> None:
        """Return when the next message may go."""
        if not self._interval:
            return
        now = self._clock()
        if self._next_slot > now:
            self._sleep(self._next_slot - now)
            now = self._next_slot
        self._next_slot = now + self._interval


Job = tuple[Delivery, "Outgoing"]
Settle = Callable[[Delivery, "SendError | None"], bool]


@dataclass(eq=False, slots=True)
class _Worker:
    """A sending thread: its connection (a Mailer) and its inbox of at most one message."""

    mailer: Mailer
    inbox: queue.SimpleQueue[Job | None]
    thread: threading.Thread | None = None


class Senders:
    """``count`` sending threads, each with its own SMTP connection (opened on its first message).

    The caller's thread hands out the messages (``jobs``, composed lazily, paced by ``pacer``)
    and settles each outcome (``settle``): it alone touches the store.  A thread is given its next
    message only after its last outcome was settled, so at most ``count`` messages are ever
    accepted by the server and not yet marked sent (the window a crash can resend).

    A thread that cannot open its connection while other threads are still live gives its message
    back and stops (a server may allow fewer connections than configured); only the last one's
    ``Unavailable`` reaches ``settle``.
    """

    def __init__(self, connect: Callable[[], SmtpClient], count: int, sender: str, pacer: Pacer) -> None:
        self._connect = connect
        self._count = count
        self._sender = sender
        self._pacer = pacer
        self._done: queue.SimpleQueue[tuple[_Worker, Delivery, Outgoing, BaseException | None]] = queue.SimpleQueue()
        self._workers: list[_Worker] = []

    @property
    def connections(self) -> int:
        """Connections opened so far (reconnects included)."""
        return sum(w.mailer.connections for w in self._workers)

    def run(self, jobs: Iterator[Job], settle: Settle, *, hold: Callable[[Delivery], bool] | None = None) -> None:
        """Send every job, settling each outcome as it arrives; stop handing out once ``settle`` returns False.

        ``hold``, when given, is asked just before a job is handed to a thread (after the pacer's
        wait): False drops the job unsent (its row is no longer this sender's).
        """
        self._workers = [_Worker(Mailer(self._connect), queue.SimpleQueue()) for _ in range(self._count)]
        idle = list(reversed(self._workers))  # pop() hands the first message to the first thread
        busy: set[_Worker] = set()
        ready: deque[Job] = deque()  # composed, not handed out: the next one, and any given back
        retired: set[_Worker] = set()
        more, stopped = True, False

        def compose() -> bool:
            """Take the next job into ``ready``; False when there is none left."""
            nonlocal more
            job = next(jobs, None)
            more = job is not None
            if job is not None:
                ready.append(job)
            return more

        try:
            while True:
                while idle and not stopped and (ready or more):
                    if not ready and not compose():
                        break
                    self._pacer.wait()
                    if hold is not None and not hold(ready[0][0]):
                        ready.popleft()  # another sender holds the row now: it sends it, not this one
                        continue
                    worker = idle.pop()
                    if worker.thread is None:
                        worker.thread = threading.Thread(target=self._work, args=(worker,), name="digest-smtp", daemon=True)
                        worker.thread.start()
                    worker.inbox.put(ready.popleft())
                    busy.add(worker)
                if busy and more and not stopped and not ready:
                    # Every thread is sending: compose the next message meanwhile (a filter's render
                    # overlaps the messages in flight instead of following them).
                    compose()
                if not busy:
                    return
                worker, delivery, message, error = self._done.get()
                busy.remove(worker)
                if isinstance(error, Unavailable) and not worker.mailer.connections and any(
                    other in busy or other.mailer.connections for other in self._workers if other not in retired | {worker}
                ):
                    # this extra connection was refused while another one works or is opening: it stops, the others carry on
                    retired.add(worker)
                    worker.inbox.put(None)
                    ready.appendleft((delivery, message))
                    continue
                idle.append(worker)
                if error is not None and not isinstance(error, SendError):
                    raise error
                if not settle(delivery, error):
                    stopped = True
        except BaseException:
            while busy:  # settle what the other threads are still sending, then re-raise
                worker, delivery, message, error = self._done.get()
                busy.remove(worker)
                if error is None or isinstance(error, SendError):
                    with contextlib.suppress(Exception):
                        settle(delivery, error)
            raise
        finally:
            for worker in self._workers:
                worker.inbox.put(None)
            for worker in self._workers:
                if worker.thread is not None:
                    worker.thread.join()

    def _work(self, worker: _Worker) -> None:
        with worker.mailer:
            while (job := worker.inbox.get()) is not None:
                delivery, message = job
                error: BaseException | None = None
                try:
                    worker.mailer.send(self._sender, delivery.recipient, message)
                except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread, which decides
                    error = exc
                self._done.put((worker, delivery, message, error))


def _send_wire(client: smtplib.SMTP, sender: str, recipient: str, message: Outgoing) -> None:
    """``client.sendmail(sender, [recipient], message.as_bytes())`` with the body stuffed once per filter.

    The same commands, SIZE parameter, replies and exceptions as smtplib's sendmail for one
    recipient; only its per-message pass over the data (``_quote_periods``, ~0.3 ms for 48 KB)
    and two copies of it are gone.
    """
    import smtplib

    client.ehlo_or_helo_if_needed()
    size = len(message.headers) + len(message.body.body)
    options = [f"size={size}"] if client.does_esmtp and client.has_extn("size") else []
    code, reply = client.mail(sender, options)
    if code != 250:
        _reset(client, code)
        raise smtplib.SMTPSenderRefused(code, reply, sender)
    code, reply = client.rcpt(recipient)
    if code not in (250, 251):
        _reset(client, code)
        raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
    client.putcmd("data")
    code, reply = client.getreply()
    if code != 354:
        # (smtplib leaves the transaction open here: the next message's MAIL would get "503 nested
        # MAIL command", failing a recipient who did nothing wrong)
        _reset(client, code)
        raise smtplib.SMTPDataError(code, reply)
    client.send(message.wire() + b".\r\n")
    code, reply = client.getreply()
    if code != 250:
        _reset(client, code)
        raise smtplib.SMTPDataError(code, reply)


def _reset(client: smtplib.SMTP, code: int) -> None:
    """After a refusal, as smtplib does: close on 421, else RSET (ignoring a server already gone)."""
    import smtplib

    if code == 421:
        client.close()
        return
    try:
        client.rset()
    except smtplib.SMTPServerDisconnected:
        pass


# -- composing -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessageBody:
    """A digest rendered for one topic filter, serialised once and shared by its recipients.

    ``head`` holds the header lines every copy has in common (From, Subject, Date, List-Id,
    MIME-Version, Content-Type with the boundary); ``body`` the encoded multipart/alternative body;
    ``wire`` the same body as the SMTP DATA command carries it (RFC 5321 4.5.2: a line that starts
    with "." gets a second one), ending in CRLF.
    """

    size: int
    head: bytes
    body: bytes
    wire: bytes
    # (boundary, text, html) when the parts hold the personal-link slots (see ``personal``)
    parts: tuple[str, str, str] | None = None

    @classmethod
    def of(cls, size: int, head: bytes, body: bytes, parts: tuple[str, str, str] | None = None) -> MessageBody:
        """A body with its ``wire`` form, dot-stuffed once here rather than by smtplib for every copy."""
        wire = (b"." if body.startswith(b".") else b"") + body.replace(b"\n.", b"\n..")
        if not wire.endswith(b"\r\n"):
            wire += b"\r\n"
        return cls(size, head, body, wire, parts)

    def personal(self, links: Links | None) -> MessageBody:
        """This body with one reader's tokens in the slots of its links (itself when it has none).

        The parts are rendered once per topic filter with fixed slots; a reader's copy replaces
        them in the text and encodes the parts again (~0.2 ms for 50 KB: binascii's encoder).
        """
        if self.parts is None or links is None:
            return self
        boundary, text, html = self.parts
        text = text.replace(UNSUBSCRIBE_SLOT, links.unsubscribe).replace(PREFERENCES_SLOT, links.preferences)
        html = html.replace(UNSUBSCRIBE_SLOT, links.unsubscribe).replace(PREFERENCES_SLOT, links.preferences)
        return MessageBody.of(self.size, self.head, _multipart(boundary, text, html))


# Where a reader's tokens go in a rendered body: as long as a token, never in feed text (a paper
# that shows them gets the reader's own token, in the reader's own copy).
UNSUBSCRIBE_SLOT = ("DIGESTUNSUBSCRIBESLOT" * 3)[:TOKEN_LENGTH]
PREFERENCES_SLOT = ("DIGESTPREFERENCESSLOT" * 3)[:TOKEN_LENGTH]


@dataclass(frozen=True, slots=True)
class Links:
    """One reader's tokens, for the unsubscribe and preferences links of their copy."""

    unsubscribe: str
    preferences: str


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One recipient's copy: its header block (own and shared header lines, the blank line) and
    the shared body."""

    headers: bytes
    body: MessageBody

    def as_bytes(self) -> bytes:
        """The message (RFC 5322)."""
        return self.headers + self.body.body

    def wire(self) -> bytes:
        """The message as DATA carries it (dot-stuffed, ending in CRLF; the final "." not included).

        The header lines need no stuffing: each starts with a field name.
        """
        return self.headers + self.body.wire


@dataclass(frozen=True, slots=True)
class ListInfo:
    """The mailing-list headers every message carries."""

    sender: str
    list_id: str
    unsubscribe_mailto: str
    unsubscribe_url: str  # "" without an https site_url (RFC 8058 one-click needs HTTPS)
    site: str = ""  # the site_url without its final "/": where the personal links point

    @classmethod
    def from_config(cls, config: Config) -> ListInfo:
        """List-Id, unsubscribe address and URL from ``[email]`` and ``[archive]``."""
        sender = parseaddr(config.email.sender)[1]
        domain = sender.rsplit("@", 1)[-1]
        label = re.sub(r"[^a-z0-9]+", "-", oneline(config.archive.title).lower()).strip("-") or "digest"
        site = config.archive.site_url.rstrip("/")
        return cls(
            sender=sender,
            list_id=f"{oneline(config.archive.title)} <{label}.{domain}>",
            unsubscribe_mailto=f"mailto:{config.email.unsubscribe or sender}?subject=unsubscribe",
            unsubscribe_url=f"{site}/unsubscribe" if site.startswith("https://") else "",
            site=site,
        )


#: What a recipient receives of a digest: (topics, arXiv categories), each sorted, empty = all.
Selection = tuple[tuple[str, ...], tuple[str, ...]]


def filter_digest(digest: Digest, topics: Sequence[str], categories: Sequence[str] = ()) -> Digest:
    """The digest with only the groups of ``topics`` and, in them, only the papers of ``categories``.

    Empty ``topics`` keeps every group, empty ``categories`` every paper.  A paper is kept when
    any of its arXiv categories is one of ``categories`` or in one of its archives (``cs``
    keeps ``cs.CL``); a group left without papers is dropped.  Filtering by category reads a
    recalled group's papers once, keeping the matching ones.
    """
    groups = digest.groups
    if topics:
        wanted = set(topics)
        groups = tuple(g for g in groups if g.code in wanted)
    if categories:
        chosen = tuple(categories)
        kept = (replace(g, papers=_in_categories(g.papers, chosen)) for g in groups)
        groups = tuple(g for g in kept if g.papers)
    return digest if groups is digest.groups else replace(digest, groups=groups)


def _in_categories(papers: Sequence[Paper], categories: Sequence[str]) -> tuple[Paper, ...]:
    return tuple(p for p in papers if matches(p.categories, categories))


def selection(topics: Iterable[str], categories: Iterable[str]) -> Selection:
    """A reader's filter (a config recipient's or a subscriber's topics and arXiv categories) as
    the key of its rendering: equal filters share one."""
    return tuple(sorted(set(topics))), tuple(sorted({c.lower() for c in categories}))


def quoted_printable(content: str) -> bytes:
    """``content`` as a quoted-printable UTF-8 part body: CRLF lines of at most 76 characters.

    The lines are those the email package's ``set_content`` makes (``bytes.splitlines``, a final
    line end); the encoding is binascii's (C), ~10x faster than the package's pure-Python encoder,
    whose soft line breaks fall a character or two elsewhere.  Both are RFC 2045 quoted-printable.
    """
    data = b"\n".join(content.encode("utf-8").splitlines()) + b"\n"
    return binascii.b2a_qp(data, istext=True).replace(b"\n", b"\r\n")


def _part(subtype: str, content: str) -> bytes:
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'.encode()
        + quoted_printable(content)
    )


def _boundary() -> str:
    """A MIME boundary as the email package makes them; "==" never occurs in quoted-printable text."""
    return f"==============={random.randrange(sys.maxsize):019d}=="


def render_body(digest: Digest, context: DeliveryContext, info: ListInfo, *, personal: bool = False) -> MessageBody:
    """Render a (filtered) digest as a text part and an inlined-HTML part, with the shared headers.

    The headers come from the email package; the multipart body is assembled here, laid out as
    the package lays it out (the package's generator would encode and then re-write ~150 KB of
    parts line by line: ~20 ms of a full day's render, against ~2 ms here).  With ``personal``
    the footer's unsubscribe and preferences links hold slots that each copy fills with its
    reader's tokens (``MessageBody.personal``); else the footer's unsubscribe link is the mailto.
    """
    rendered = context.renderer.render(digest, message_options(context, info, personal=personal), markdown=False)
    return assemble_body(subject_line(digest, context.config.archive.title), digest.size, rendered.text, rendered.html,
                         context, info, personal=personal)


def message_options(context: DeliveryContext, info: ListInfo, *, personal: bool) -> RenderOptions:
    """The render options of a message: the footer's unsubscribe link (the mailto, or with
    ``personal`` a slot for the reader's token) and preferences link."""
    options = replace(render_options(context.config, context.now), unsubscribe=info.unsubscribe_mailto)
    if personal:
        options = replace(
            options,
            unsubscribe=f"{info.site}/unsubscribe?t={UNSUBSCRIBE_SLOT}",
            preferences=f"{info.site}/preferences?t={PREFERENCES_SLOT}",
        )
    return options


def assemble_body(
    subject: str, size: int, text: str, html: str, context: DeliveryContext, info: ListInfo, *, personal: bool
) -> MessageBody:
    """The shared headers and the multipart body of rendered text and HTML parts (see :func:`render_body`)."""
    from email.message import EmailMessage

    boundary = _boundary()
    msg = EmailMessage(policy=header_policy())
    msg["From"] = context.config.email.sender
    msg["Subject"] = subject
    msg["Date"] = format_datetime(context.now)
    msg["List-Id"] = info.list_id
    msg["MIME-Version"] = "1.0"
    msg["Content-Type"] = f'multipart/alternative; boundary="{boundary}"'
    head = b"".join(header_policy().fold_binary(name, value) for name, value in msg.items())  # as the generator writes them
    parts = (boundary, text, html) if personal else None
    return MessageBody.of(size, head, _multipart(boundary, text, html), parts)


def _multipart(boundary: str, text: str, html: str) -> bytes:
    """The multipart/alternative body: the text part, then the HTML part."""
    delimiter = f"--{boundary}".encode()
    return b"".join([
        delimiter, b"\r\n", _part("plain", text),
        b"\r\n", delimiter, b"\r\n", _part("html", html),
        b"\r\n", delimiter, b"--\r\n",
    ])


def message_id(delivery: Delivery, created_at: dt.datetime, domain: str) -> str:
    """A Message-ID unique to the outbox row and stable across its retries."""
    token = hashlib.sha256(f"{created_at.isoformat()}|{delivery.digest_id}|{delivery.id}|{delivery.recipient}".encode()).hexdigest()[:16]
    return f"<digest.{delivery.digest_date:%Y%m%d}.{delivery.digest_id}.{delivery.id}.{token}@{domain}>"


def outgoing(body: MessageBody, recipient: str, *, info: ListInfo, msgid: str, links: Links | None = None) -> Outgoing:
    """One recipient's copy: To, Message-ID and List-Unsubscribe, then the shared headers and body
    (the body is new bytes only when it has personal links)."""
    url = f"{info.unsubscribe_url}?t={links.unsubscribe}" if links is not None and info.unsubscribe_url else ""
    return Outgoing(own_headers(recipient, info=info, msgid=msgid, url=url) + body.head + b"\r\n", body.personal(links))


def own_headers(recipient: str, *, info: ListInfo, msgid: str, url: str = "") -> bytes:
    """The recipient's own header lines (To, Message-ID, List-Unsubscribe[-Post]), each ending in CRLF.

    Written as plain text when every value is one that the email package would write unchanged
    (a dot-atom ASCII address, printable ASCII, short lines; checked once per list against the
    package itself), else built by the email package (``own_headers_by_email_package``).  The
    plain path costs ~0.01 ms instead of ~0.4 ms, per message.
    """
    if _PLAIN_ADDRESS.match(recipient) and _plain_list(info, msgid.rpartition("@")[2].rstrip(">")):
        text = _plain_headers(recipient, info, msgid, url)
        if _PLAIN_TEXT.match(text) and max(map(len, text.split("\r\n"))) <= _MAX_PLAIN_LINE:
            return text.encode("ascii")
    return own_headers_by_email_package(recipient, info=info, msgid=msgid, url=url)


def own_headers_by_email_package(recipient: str, *, info: ListInfo, msgid: str, url: str = "") -> bytes:
    """``own_headers`` built by the email package (folding and encoding whatever needs it).

    ``url`` is the reader's tokenised one-click URL (https), "" for none: a mailto only.
    """
    from email.message import EmailMessage

    own = EmailMessage(policy=header_policy())
    own["To"] = recipient
    own["Message-ID"] = msgid
    if url:
        own["List-Unsubscribe"] = f"<{info.unsubscribe_mailto}>, <{url}>"
        # RFC 8058: one-click needs an HTTPS URI to POST to; a mailto alone cannot honour it.
        own["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    else:
        own["List-Unsubscribe"] = f"<{info.unsubscribe_mailto}>"
    return own.as_bytes()[:-2]  # the header lines, without the blank line that ends them


def _plain_headers(recipient: str, info: ListInfo, msgid: str, url: str) -> str:
    if url:
        return (
            f"To: {recipient}\r\nMessage-ID: {msgid}\r\n"
            f"List-Unsubscribe: <{info.unsubscribe_mailto}>, <{url}>\r\n"
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
        )
    return f"To: {recipient}\r\nMessage-ID: {msgid}\r\nList-Unsubscribe: <{info.unsubscribe_mailto}>\r\n"


# A dot-atom local part and domain, in ASCII, without "=" and "?" (which could start an encoded word).
_ATEXT = r"[A-Za-z0-9!#$%&'*+/^_`{|}~-]"
_PLAIN_ADDRESS = re.compile(rf"{_ATEXT}+(?:\.{_ATEXT}+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\Z")
_PLAIN_TEXT = re.compile(r"(?:[\x20-\x7e]+\r\n)+\Z")  # printable ASCII lines, no stray CR or LF
_MAX_PLAIN_LINE = 500  # far from 998, where the package would fold


@functools.lru_cache(maxsize=8)
def _plain_list(info: ListInfo, domain: str) -> bool:
    """Whether the plain path writes this list's headers exactly as the email package does."""
    recipient, msgid = "probe.reader+x@example.org", f"<digest.20250314.1.2.0123456789abcdef@{domain}>"
    url = f"{info.unsubscribe_url}?t={UNSUBSCRIBE_SLOT}" if info.unsubscribe_url else ""
    try:
        return _plain_headers(recipient, info, msgid, url).encode("ascii") == own_headers_by_email_package(
            recipient, info=info, msgid=msgid, url=url
        )
    except (UnicodeEncodeError, ValueError, TypeError):  # the package refuses it: so will the plain path
        return False


class Composer:
    """Loads each stored digest once, and filters and renders it once per distinct selection."""

    def __init__(self, context: DeliveryContext, info: ListInfo, *, personal: bool = False) -> None:
        self.context = context
        self.info = info
        self.personal = personal
        self._digest: tuple[int, Digest, dt.datetime] | None = None
        self._view: tuple[tuple[int, Selection], Digest] | None = None
        self._body: tuple[tuple[int, Selection], MessageBody] | None = None

    def created_at(self, delivery: Delivery) -> dt.datetime:
        """When the row's digest was stored (its Message-ID is made from it)."""
        return self.digest(delivery)[1]

    def size(self, delivery: Delivery, reader: Reader) -> int:
        """How many papers the reader's copy of the row holds."""
        return self.view(delivery, reader.chosen).size

    def message(self, delivery: Delivery, reader: Reader) -> MessageBody:
        """The body of the reader's copy (shared by every reader with the same selection)."""
        return self.body(delivery, reader.chosen)

    def digest(self, delivery: Delivery) -> tuple[Digest, dt.datetime]:
        """The stored digest of an outbox row, and when it was created."""
        if self._digest is None or self._digest[0] != delivery.digest_id:
            store = self.context.store
            record = next(r for r in store.digests(on=delivery.digest_date) if r.id == delivery.digest_id)
            self._digest = (record.id, load_digest(store, [record], self.context.taxonomy), record.created_at)
        return self._digest[1], self._digest[2]

    def view(self, delivery: Delivery, chosen: Selection) -> Digest:
        """The row's digest filtered to a recipient's selection (the last one is kept)."""
        key = (delivery.digest_id, chosen)
        if self._view is None or self._view[0] != key:
            digest, _ = self.digest(delivery)
            self._view = (key, filter_digest(digest, *chosen))
        return self._view[1]

    def body(self, delivery: Delivery, chosen: Selection) -> MessageBody:
        """The message body for the row's digest filtered to a selection (the last one is kept)."""
        key = (delivery.digest_id, chosen)
        if self._body is None or self._body[0] != key:
            self._body = (key, render_body(self.view(delivery, chosen), self.context, self.info, personal=self.personal))
        return self._body[1]


# -- the channel -----------------------------------------------------------------------------


def backoff(attempts: int) -> dt.timedelta:
    """How long to wait before retry number ``attempts`` + 1: 15 min, doubling, at most 12 h."""
    delay: dt.timedelta = BACKOFF_FIRST * 2 ** max(attempts - 1, 0)
    return min(delay, BACKOFF_MAX)


def _holder(store: SeenStore, claim: Claim | None) -> Callable[[Delivery], bool] | None:
    """A sender's check that a row is still its own, its claim extended (None: a run, nothing to check)."""
    if claim is None:
        return None

    def hold(delivery: Delivery) -> bool:
        return store.renew_claim(delivery.id, worker=claim.worker, until=claim.clock() + claim.lease)

    return hold


class EmailChannel:
    """Sends each pending (digest, recipient) row as one email, filtered to the recipient's topics
    and arXiv categories."""

    name = "email"
    sends_empty = True  # ``[email] send_empty`` applies to this channel's messages

    def __init__(
        self,
        connect: Connect | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.connect: Connect = connect or connect_smtp
        self.sleep = sleep
        self.clock = clock
        self.connections = 0  # opened by the last ``deliver``

    def rows(self, config: Config, store: SeenStore) -> list[str]:
        """One row per reader (config recipients and mailed subscribers) when ``[email] enabled``.

        The SMTP password (and, when subscribers are mailed, the link-signing secret) is looked up
        here, before the commit, so that a missing secret stops the run with a config error
        instead of storing a digest nobody can be sent.
        """
        if not config.email.enabled:
            return []
        smtp_password(config.email)
        found = self.readers(config, store)
        load_signer(config, required=any(r.subscriber is not None for r in found.values()))
        return [r.address for r in found.values()]

    def deliver(self, pending: Sequence[Delivery], context: DeliveryContext) -> ChannelResult:
        """Send the pending rows, oldest digest first, marking each one as soon as the server answers.

        With email disabled, rows queued while it was enabled are left pending and untouched.  A
        row whose reader left (unsubscribed, disabled, removed from the config) is skipped.
        """
        settings, store, now = context.config, context.store, context.now
        email = settings.email
        if not email.enabled:
            left = store.pending_count(self.name)
            return ChannelResult({"sent": 0, "failed": 0, "pending": left})
        found = self.readers(settings, store)
        signer = load_signer(settings, required=any(r.subscriber is not None for r in found.values()))
        info = ListInfo.from_config(settings)
        domain = info.sender.rsplit("@", 1)[-1]
        personal = signer is not None and bool(info.site)
        composer = self.composer(context, info, personal=personal)
        chosen = {key: reader.chosen for key, reader in found.items()}
        sent = failed = 0
        recovered: list[str] = []

        def jobs() -> Iterator[Job]:
            for delivery in _render_order(pending, chosen):
                reader = found.get(delivery.recipient.lower())
                if reader is None:
                    store.mark_delivery(delivery.id, "sent", now=now, error="skipped: no longer a reader (removed from the config, unsubscribed or disabled)")
                    continue
                created_at = composer.created_at(delivery)
                if not (email.send_empty and self.sends_empty) and composer.size(delivery, reader) == 0:
                    what = "topics and categories" if reader.chosen[1] else "topics"
                    store.mark_delivery(delivery.id, "sent", now=now, error=f"skipped: nothing new in the recipient's {what}")
                    continue
                body = composer.message(delivery, reader)
                links = reader.links(signer) if personal and signer is not None else None
                yield delivery, outgoing(body, delivery.recipient, info=info, msgid=message_id(delivery, created_at, domain), links=links)

        def settle(delivery: Delivery, error: SendError | None) -> bool:
            nonlocal sent, failed
            reader = found.get(delivery.recipient.lower())
            if error is None:
                faults.crash_point("email-accepted")
                store.mark_delivery(delivery.id, "sent", now=now)
                faults.crash_point("email-marked")
                sent += 1
                if reader is not None and reader.subscriber is not None and reader.subscriber.status == "bouncing":
                    recovered.append(reader.address)
                return True
            permanent = isinstance(error, Refused) and error.permanent
            failed += self._record_failure(delivery, context, str(error), permanent=permanent)
            if isinstance(error, Refused) and reader is not None and reader.subscriber is not None:
                Subscribers(store).record_bounce(
                    reader.address, hard=permanent, reason=str(error), now=now, source="smtp",
                    limit=settings.subscribers.bounce_limit, window=dt.timedelta(days=settings.subscribers.bounce_window_days),
                )
            return not isinstance(error, Unavailable)  # the server is unreachable: the rest stay pending, untried

        pacer = Pacer(email.rate_limit, clock=self.clock, sleep=self.sleep)
        senders = Senders(lambda: self.connect(email), email.connections, info.sender, pacer)
        senders.run(jobs(), settle, hold=_holder(store, context.claim))
        self.connections = senders.connections
        Subscribers(store).delivered(recovered, now=now)
        left = store.pending_count(self.name)
        return ChannelResult({"sent": sent, "failed": failed, "pending": left}, failed=bool(failed or left))

    def readers(self, config: Config, store: SeenStore) -> dict[str, Reader]:
        """Who this channel's messages go to: the daily readers (:func:`readers`)."""
        return readers(config, store)

    def composer(self, context: DeliveryContext, info: ListInfo, *, personal: bool) -> Composer:
        """What renders this channel's messages: each stored digest once per selection."""
        return Composer(context, info, personal=personal)

    def _record_failure(self, delivery: Delivery, context: DeliveryContext, error: str, *, permanent: bool) -> int:
        """Mark a row failed (5xx, or out of attempts) or pending with a backoff; 1 when failed."""
        attempts = delivery.attempts + 1
        store, now = context.store, context.now
        if permanent or attempts >= context.config.email.max_attempts:
            reason = error if permanent else f"gave up after {attempts} attempts: {error}"
            store.mark_delivery(delivery.id, "failed", now=now, error=reason)
            return 1
        store.mark_delivery(delivery.id, "pending", now=now, error=error, next_attempt_at=now + backoff(attempts))
        return 0


@dataclass(frozen=True, slots=True)
class Reader:
    """Someone a digest goes to: a config recipient (``subscriber`` None) or a subscriber."""

    address: str
    chosen: Selection  # the topics and arXiv categories this reader gets
    subscriber: Subscriber | None = None
    weekday: int | None = None  # a weekly reader's weekday (0 = Monday); None for a daily one

    def links(self, signer: Signer) -> Links:
        """This reader's unsubscribe and preferences tokens."""
        if self.subscriber is not None:
            sub = self.subscriber
            return Links(
                signer.subscriber_token("unsubscribe", sub.id, sub.epoch), signer.subscriber_token("preferences", sub.id, sub.epoch)
            )
        return Links(signer.recipient_token("unsubscribe", self.address), signer.recipient_token("preferences", self.address))


def readers(config: Config, store: SeenStore, cadence: str = "daily") -> dict[str, Reader]:
    """Who a daily digest (``cadence`` weekly: a weekly roll-up) goes to, by lower-cased address:
    the config's recipients of that cadence, unless the store says the address left (unsubscribed,
    disabled) or has a subscription of its own, and the subscribers of that cadence who are mailed
    (active or bouncing).
    """
    subscribers = Subscribers(store)
    mailed = subscribers.mailed()
    known = subscribers.statuses(r.address for r in config.email.recipients)
    found: dict[str, Reader] = {}
    for recipient in config.email.recipients:
        key = recipient.address.lower()
        if key not in known and key not in found and recipient.cadence == cadence:
            weekday = WEEKDAY_NAMES.index(recipient.weekday) if cadence == "weekly" else None
            found[key] = Reader(recipient.address, selection(recipient.topics, recipient.categories), weekday=weekday)
    for key, subscriber in mailed.items():
        if subscriber.cadence == cadence:
            weekday = (subscriber.weekday or 0) if cadence == "weekly" else None
            found[key] = Reader(subscriber.address, selection(subscriber.topics, subscriber.categories), subscriber, weekday)
    return found


def _render_order(pending: Sequence[Delivery], chosen: dict[str, Selection]) -> Iterator[Delivery]:
    """The rows oldest digest first, and within a digest grouped by selection (one render each)."""
    digest_rank: dict[int, int] = {}
    for delivery in pending:
        digest_rank.setdefault(delivery.digest_id, len(digest_rank))
    yield from sorted(pending, key=lambda d: (digest_rank[d.digest_id], chosen.get(d.recipient.lower(), ((), ()))))

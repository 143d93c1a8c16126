"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, a free port, a handler with failure hooks."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email import policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    """One accepted message."""

    sender: str
    recipients: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        """The message parsed back with the email package."""
        parsed = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class Sink:
    """An aiosmtpd handler that records what it accepts.

    ``rcpt_replies[address]`` is a queue of replies to RCPT TO for that address (e.g. ``"451 ..."``),
    consumed one per attempt; ``data_replies[address]`` the same for the end of DATA of a message
    to that address; ``drop_on`` holds DATA numbers (1-based, over the server's life) on
    which the connection is cut without a reply; ``block_on`` is a DATA number on which the handler
    waits for ``release`` (setting ``blocked`` first) and then refuses it with 451, or accepts it
    when ``accept_held``.
    """

    messages: list[Received] = field(default_factory=list)
    rcpt_replies: dict[str, list[str]] = field(default_factory=dict)
    data_replies: dict[str, list[str]] = field(default_factory=dict)
    drop_on: set[int] = field(default_factory=set)
    block_on: int | None = None
    accept_held: bool = False
    blocked: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    data_count: int = 0
    sessions: int = 0
    logins: list[tuple[str, str]] = field(default_factory=list)

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]) -> list[str]:
        session.host_name = hostname
        self.sessions += 1
        return responses

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        queue = self.rcpt_replies.get(address)
        if queue:
            return queue.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.data_count += 1
        for rcpt in envelope.rcpt_tos:
            queue = self.data_replies.get(rcpt)
            if queue:
                return queue.pop(0)
        if self.data_count in self.drop_on:
            server.transport.close()
            return "421 4.4.2 connection dropped by the test"
        if self.data_count == self.block_on:
            self.blocked.set()
            await asyncio.get_running_loop().run_in_executor(None, self.release.wait)
            if not self.accept_held:
                return "451 4.3.0 not accepted (the test held this message)"
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content)))
        return "250 2.0.0 OK"

    def by_recipient(self) -> dict[str, list[EmailMessage]]:
        """The accepted messages keyed by recipient."""
        found: dict[str, list[EmailMessage]] = {}
        for received in self.messages:
            for rcpt in received.recipients:
                found.setdefault(rcpt, []).append(received.message)
        return found


STAGES = ("connect", "starttls", "auth", "mail", "rcpt", "data", "quit")


@dataclass
class Fault:
    """What the server does the first time a session reaches ``stage`` (one of :data:`STAGES`):
    answer ``reply`` (e.g. ``"451 4.3.0 try again later"``) instead of going on, or, when
    ``reply`` is None, drop the connection without a word.  Later sessions go through.

    An AUTH fault answers every AUTH of that session (smtplib tries each mechanism in turn).
    """

    stage: str
    reply: str | None
    struck: int = 0
    armed: bool = False  # set once the server is up (the controller's own check connection is spared)
    session: object = None  # the session it struck


class FaultySMTP(SMTP):
    """aiosmtpd's SMTP session with a :class:`Fault` at one stage."""

    def __init__(self, handler: Any, *, fault: Fault, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.fault = fault

    async def _strike(self, stage: str) -> bool:
        """True (after answering or dropping) when the fault is at ``stage`` and has not struck yet."""
        again = stage == "auth" and self.fault.session is self
        if self.fault.stage != stage or (self.fault.struck and not again) or not self.fault.armed:
            return False
        self.fault.struck += 1
        self.fault.session = self
        if self.fault.reply is not None:
            await self.push(self.fault.reply)
        if self.fault.reply is None or stage in ("connect", "quit"):
            assert self.transport is not None
            self.transport.close()
        return True

    async def _handle_client(self) -> None:
        if not await self._strike("connect"):
            await super()._handle_client()

    async def smtp_STARTTLS(self, arg: str) -> None:
        if not await self._strike("starttls"):
            await super().smtp_STARTTLS(arg)

    async def smtp_AUTH(self, arg: str) -> None:
        if not await self._strike("auth"):
            await super().smtp_AUTH(arg)

    async def smtp_MAIL(self, arg: str | None) -> None:
        if not await self._strike("mail"):
            await super().smtp_MAIL(arg)

    async def smtp_RCPT(self, arg: str | None) -> None:
        if not await self._strike("rcpt"):
            await super().smtp_RCPT(arg)

    async def smtp_DATA(self, arg: str) -> None:
        if not await self._strike("data"):
            await super().smtp_DATA(arg)

    async def smtp_QUIT(self, arg: str) -> None:
        if not await self._strike("quit"):
            await super().smtp_QUIT(arg)


class _FaultyController(Controller):
    def __init__(self, handler: Any, *, fault: Fault, **kwargs: Any) -> None:
        self.fault = fault
        super().__init__(handler, **kwargs)

    def factory(self) -> SMTP:
        return FaultySMTP(self.handler, fault=self.fault, **self.SMTP_kwargs)


@contextmanager
def smtp_server(sink: Sink, *, fault: Fault | None = None, **smtp_kwargs: Any) -> Iterator[int]:
    """Run ``sink`` behind a real aiosmtpd server on 127.0.0.1 (with ``fault``, if given); yield its port."""
    port = free_port()
    controller: Controller
    if fault is not None:
        controller = _FaultyController(sink, fault=fault, hostname="127.0.0.1", port=port, **smtp_kwargs)
    else:
        controller = Controller(sink, hostname="127.0.0.1", port=port, **smtp_kwargs)
    controller.start()
    if fault is not None:
        fault.armed = True
    try:
        yield port
    finally:
        sink.release.set()
        controller.stop()

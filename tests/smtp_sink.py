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


@contextmanager
def smtp_server(sink: Sink, **smtp_kwargs: Any) -> Iterator[int]:
    """Run ``sink`` behind a real aiosmtpd server on 127.0.0.1; yield its port."""
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port, **smtp_kwargs)
    controller.start()
    try:
        yield port
    finally:
        sink.release.set()
        controller.stop()

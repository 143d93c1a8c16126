"""Sending batches under the run's deadline (digest/llm/ask.py)."""

from __future__ import annotations

import socket
import threading
from typing import Any

import pytest

from digest.config import LlmConfig
from digest.llm.ask import MAX_FAILURES, ask
from digest.llm.prompt import Item
from tests.chatserver import chat_server
from tests.httpserver import Reply, TestServer


def test_a_name_lookup_that_hangs_does_not_hold_the_run_past_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """A resolver that never answers (a dead DNS server) is abandoned at the deadline like a hung
    server: ``ask`` returns while the lookup is still pending, not once it gives up.  (The
    system's resolver cannot be pointed at a silent server from a test, so ``getaddrinfo`` for
    one reserved name waits on an event the test sets only after ``ask`` has returned.)"""
    release = threading.Event()
    lookups: list[str] = []
    finished: list[str] = []
    real = socket.getaddrinfo

    def silent_resolver(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host in (b"llm.invalid", "llm.invalid"):
            lookups.append("started")
            release.wait(20)
            finished.append("gave up")
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", silent_resolver)
    settings = LlmConfig(enabled=True, base_url="http://llm.invalid/v1", model="m", timeout=0.5)
    try:
        asked = ask(settings, None, [[Item("1.1", "Four-Bit Weights", "We quantize.")]], None, seconds=0.5)
        still_looking_up = not finished
    finally:
        release.set()
    assert lookups == ["started"]
    assert still_looking_up, "ask waited for the name lookup past its deadline"
    assert asked.answers == {} and asked.failed == {0: "timed out"}


def test_an_unexpected_error_in_a_request_is_that_batch_s_failure_and_said() -> None:
    """An error no category foresees (here the connection layer's OverflowError for a port out
    of range) costs its batch, named in the warning, not a traceback on stderr and a warning
    that blames the answers."""
    settings = LlmConfig(enabled=True, base_url="http://127.0.0.1:99999/v1", model="m", timeout=5)
    asked = ask(settings, None, [[Item("1.1", "Four-Bit Weights", "We quantize.")]], None, seconds=5)
    assert asked.answers == {} and asked.failed == {0: "unexpected error (OverflowError)"}


def test_429s_given_up_count_as_failed_requests_so_a_rate_limit_is_not_hammered(http_server: TestServer) -> None:
    """A server that answers 429 without Retry-After to every request gets at most
    MAX_FAILURES of them, as for 5xx: not one per batch of the run."""
    base_url = chat_server(http_server, Reply(status=429))
    settings = LlmConfig(enabled=True, base_url=base_url, model="m", timeout=10, max_concurrency=1)
    batches = [[Item(f"{b}.1", f"Paper {b}", "We study.")] for b in range(1, 9)]
    asked = ask(settings, None, batches, None, seconds=10)
    assert len(http_server.requests) == MAX_FAILURES
    assert len(asked.failed) == 8 and asked.answers == {}

"""Sending batches of papers to the model under a deadline, a concurrency limit and the
server's rate limits, and collecting what was usable.

Never in the way: the whole exchange ends by ``deadline`` (requests still open are cancelled),
a request that finds no server or times out stops the others from being sent, a 429 is waited
out once when its ``Retry-After`` fits before the deadline, and after :data:`MAX_FAILURES`
failed requests nothing more is sent.  Each batch that gave nothing says why, in a few words.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import threading
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from digest.config import LlmConfig
from digest.llm.client import ChatClient, LlmError, RateLimited, Unreachable
from digest.llm.prompt import Answer, AnswerError, Item, messages, parse_answer
from digest.topics.taxonomy import OTHER_CODE, Taxonomy

#: After this many failed requests (HTTP errors, bad answers) a run sends no more.
MAX_FAILURES = 3


@dataclass(frozen=True, slots=True)
class Asked:
    """What the model answered for a set of batches."""

    answers: dict[str, Answer]  # by item id (unique across the batches)
    requests: int  # HTTP requests made (a 429 waited out counts twice)
    failed: dict[int, str] = field(default_factory=dict)  # batch index -> why it gave nothing


@dataclass
class _Exchange:
    """The shared state of one exchange's requests."""

    deadline: float  # time.monotonic() by which everything ends
    answers: dict[str, Answer] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)
    requests: int = 0
    failures: int = 0
    stop: str | None = None  # once set, nothing more is sent
    not_before: float = 0.0  # a 429's Retry-After: nothing is sent before this


def ask(
    settings: LlmConfig,
    key: str | None,
    batches: Sequence[Sequence[Item]],
    taxonomy: Taxonomy | None,
    *,
    seconds: float,
    summaries: bool = True,
) -> Asked:
    """Ask about every batch (``max_concurrency`` at once); everything ends within ``seconds``."""
    if not batches:
        return Asked({}, 0)
    deadline = time.monotonic() + seconds
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # the usual case: no event loop in this thread
        return _run(_ask_all(settings, key, batches, taxonomy, deadline, summaries))
    # Called from code that runs an event loop (a notebook): the exchange gets a thread of its own.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: _run(_ask_all(settings, key, batches, taxonomy, deadline, summaries))).result()


_T = TypeVar("_T")


def _run(exchange: Coroutine[Any, Any, _T]) -> _T:
    """``asyncio.run`` on a loop whose name lookups cannot outlive the deadline (:class:`_Loop`)."""
    with asyncio.Runner(loop_factory=_Loop) as runner:
        return runner.run(exchange)


class _Loop(asyncio.SelectorEventLoop):
    """An event loop that looks names up in daemon threads of their own.

    The standard loop runs ``getaddrinfo`` in its default executor, and closing the loop waits
    for that executor's threads (the interpreter's exit too): a DNS server that never answers
    would hold the run for the resolver's own timeout, however short ``[llm] timeout``.  Here
    a lookup still pending at the deadline is abandoned with its request; its thread ends when
    the resolver gives up, and nothing waits for it.
    """

    async def getaddrinfo(
        self, host: Any, port: Any, *, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
    ) -> Any:
        future: asyncio.Future[Any] = self.create_future()

        def settle(result: Any, error: BaseException | None) -> None:
            if future.done():  # the request was abandoned (the deadline)
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)

        def resolve() -> None:
            try:
                outcome: tuple[Any, BaseException | None] = (socket.getaddrinfo(host, port, family, type, proto, flags), None)
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting request
                outcome = (None, exc)
            try:
                self.call_soon_threadsafe(settle, *outcome)
            except RuntimeError:  # the loop is closed: the exchange is over
                pass

        threading.Thread(target=resolve, name="digest-llm-resolve", daemon=True).start()
        return await future


async def _ask_all(
    settings: LlmConfig,
    key: str | None,
    batches: Sequence[Sequence[Item]],
    taxonomy: Taxonomy | None,
    deadline: float,
    summaries: bool,
) -> Asked:
    state = _Exchange(deadline)
    gate = asyncio.Semaphore(settings.max_concurrency)
    codes = (*taxonomy.codes(), OTHER_CODE) if taxonomy is not None else (OTHER_CODE,)
    async with ChatClient(settings, key) as client:

        async def one(index: int, batch: Sequence[Item]) -> None:
            async with gate:
                try:
                    why = await _ask_one(client, state, batch, taxonomy, codes, summaries)
                except Exception as exc:  # noqa: BLE001 - no category foresaw it: this batch's failure, named
                    why = f"unexpected error ({_innermost(exc).__name__})"
            if why is not None:
                state.failed[index] = why

        tasks = [asyncio.create_task(one(i, b)) for i, b in enumerate(batches)]
        _, pending = await asyncio.wait(tasks, timeout=max(0.0, deadline - time.monotonic()))
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for index, task in enumerate(tasks):
            if task in pending and index not in state.failed:
                state.failed[index] = "timed out"
    return Asked(state.answers, state.requests, state.failed)


def _innermost(exc: BaseException) -> type[BaseException]:
    """The type of the error inside the task groups of the connection layer (anyio) that wrap it."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return type(exc)


async def _ask_one(
    client: ChatClient,
    state: _Exchange,
    batch: Sequence[Item],
    taxonomy: Taxonomy | None,
    codes: Sequence[str],
    summaries: bool,
) -> str | None:
    """Ask about one batch; None when it was answered, else why not."""
    for attempt in range(2):
        if state.stop is not None:
            return state.stop
        wait = state.not_before - time.monotonic()
        if wait > 0:
            if time.monotonic() + wait >= state.deadline:
                return "rate limited (Retry-After beyond the timeout)"
            await asyncio.sleep(wait)
        remaining = state.deadline - time.monotonic()
        if remaining <= 0:
            return "timed out"
        state.requests += 1
        try:
            content = await client.complete(messages(batch, taxonomy, summaries=summaries), timeout=remaining)
            state.answers.update(parse_answer(content, batch, codes))
            return None
        except RateLimited as exc:
            if exc.retry_after is None or attempt:
                _failed(state)  # given up: a failed request like a 5xx (a rate limit is not hammered)
                return exc.reason + ("" if exc.retry_after is None else ", again after waiting")
            state.not_before = max(state.not_before, time.monotonic() + exc.retry_after)
        except Unreachable as exc:
            state.stop = exc.reason  # the batches not sent yet give the same reason
            return exc.reason
        except (LlmError, AnswerError) as exc:
            _failed(state)
            return exc.reason if isinstance(exc, LlmError) else str(exc)
    return "rate limited"  # (not reached: the second 429 returns above)


def _failed(state: _Exchange) -> None:
    """Count a failed request; after :data:`MAX_FAILURES` of them nothing more is sent."""
    state.failures += 1
    if state.failures >= MAX_FAILURES:
        state.stop = f"not sent after {MAX_FAILURES} failed requests"

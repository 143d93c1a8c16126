"""``digest send [--workers N]``: work through the email outbox without running a cycle, with N
worker processes sharing it (on this host, and with those of other hosts on the same store).

Each worker claims a batch of due pending rows (:meth:`digest.store.SeenStore.claim_deliveries`:
``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so workers never wait for each other and never take the
same row), sends it through the email channel as a run would (marking each row as soon as the
server answers, which releases its claim), and claims the next batch.  A worker that is killed
leaves its unmarked rows claimed until ``[email] claim_seconds`` have passed; the workers still
running wait for that and send them.  No message is sent twice: a row is claimed by one worker at
a time, checked to be still the worker's (and its claim extended) just before its message goes out,
and marked as soon as the server answers; the one window left is SMTP's own (the server accepted a
message and the worker died before marking it: sent again once, with the same Message-ID, see
docs/guarantees.md).
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from digest.config import Config
from digest.deliver import Claim, DeliveryContext
from digest.deliver.email import EmailChannel
from digest.deliver.weekly import WeeklyChannel
from digest.errors import ConfigError, DigestError
from digest.render import Renderer
from digest.store import open_store
from digest.topics import configured_taxonomy

CHANNEL = "email"
WEEKLY = "weekly"  # the weekly roll-ups: email too, sent by the workers as well under [email] sent_by = "workers"
BATCH = 200  # rows a worker claims at once
POLL = 0.25  # seconds between looks at rows other workers hold


@dataclass(frozen=True, slots=True)
class SendReport:
    """What ``digest send`` did: messages sent and failed by all its workers, rows still pending."""

    workers: int
    sent: int
    failed: int
    pending: int
    errors: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when every row was sent: nothing failed, no worker failed, nothing left pending (an
        unreachable server, a 4xx waiting for its retry), as docs/postgresql.md promises for the exit code."""
        return not self.failed and not self.errors and not self.pending


def worker_name() -> str:
    """How this process names itself in its claims."""
    return f"{socket.gethostname()}:{os.getpid()}"


def send_worker(
    config: Config,
    *,
    now: Callable[[], dt.datetime],
    channel: EmailChannel | None = None,
    batch: int = BATCH,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[int, int]:
    """One worker: claim, send and mark batches until no due row is left, free or held by a
    live worker, of the daily email and then of the weekly roll-ups; return (sent, failed)."""
    taxonomy = configured_taxonomy(config.topics.file)
    renderer = Renderer(config.render.templates)
    lease = dt.timedelta(seconds=config.email.claim_seconds)
    me = worker_name()
    sent = failed = 0
    with open_store(config.store) as store, store.translated():
        for email in (channel or EmailChannel(), WeeklyChannel(channel.connect if channel else None)):
            while True:
                moment = now()
                rows = store.claim_deliveries(email.name, worker=me, now=moment, lease=lease, limit=batch)
                if not rows:
                    if store.claimed_elsewhere(email.name, worker=me, now=moment):
                        sleep(POLL)  # another worker's batch: done soon, or free once its claim expires
                        continue
                    break
                result = email.deliver(rows, DeliveryContext(store, config, taxonomy, renderer, moment, Claim(me, lease, now)))
                sent += result.summary["sent"]
                failed += result.summary["failed"]
                untried = store.release_claims(me)
                if untried and not (result.summary["sent"] or result.summary["failed"]):
                    return sent, failed  # the server is unreachable: the rows stay pending for later
    return sent, failed


def _work(config: Config, batch: int, number: int, results: Any) -> None:
    """A worker process's body: puts (number, (sent, failed, error line or None)) on ``results``."""
    try:
        sent, failed = send_worker(config, now=_utcnow, batch=batch)
    except DigestError as exc:
        results.put((number, (0, 0, exc.message)))
        return
    results.put((number, (sent, failed, None)))


def _run_workers(config: Config, workers: int, batch: int) -> list[tuple[int, int, str | None]]:
    """Run ``workers`` worker processes to their end; a process that ended without its result (killed,
    crashed) is an error line.  (Not a multiprocessing.Pool: it waits forever for the task of a
    worker that was killed.)"""
    context = multiprocessing.get_context("spawn")
    results = context.SimpleQueue()
    processes = [context.Process(target=_work, args=(config, batch, n, results), name=f"digest-send-{n}") for n in range(workers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    found: dict[int, tuple[int, int, str | None]] = {}
    while not results.empty():
        number, result = results.get()
        found[number] = result
    return [
        found.get(n) or (0, 0, f"a worker process ended unexpectedly (exit code {process.exitcode})")
        for n, process in enumerate(processes)
    ]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def send_outbox(config: Config, *, workers: int = 1, batch: int = BATCH) -> SendReport:
    """Send the due email outbox rows with ``workers`` processes (1: in this process)."""
    if workers < 1:
        raise ConfigError("--workers: must be at least 1")
    if not config.email.enabled:
        raise ConfigError("nothing to send: [email] enabled is false", hint="set [email] enabled = true")
    if workers == 1:  # (here an error is raised as it is, with its hint)
        sent, failed = send_worker(config, now=_utcnow, batch=batch)
        results: list[tuple[int, int, str | None]] = [(sent, failed, None)]
    else:
        results = _run_workers(config, workers, batch)
    errors = tuple(dict.fromkeys(e for _, _, e in results if e))
    if errors and all(e for _, _, e in results):  # every worker failed the same way: that is the error
        raise DigestError(errors[0])
    with open_store(config.store, readonly=True) as store:
        pending = store.pending_count(CHANNEL) + store.pending_count(WEEKLY)
    return SendReport(workers, sum(r[0] for r in results), sum(r[1] for r in results), pending, errors)

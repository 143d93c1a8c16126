"""``digest schedule``: run ``pipeline.run_cycle`` on ``[schedule] cron`` with APScheduler 3.

No business logic lives here, only *when*:

- one job on ``CronTrigger.from_crontab(cron, timezone)`` (its weekdays read as crontab's: 0 is Sunday) with ``coalesce=True``,
  ``max_instances=1`` and no misfire grace (a run missed while the machine slept happens once
  when it wakes), in a one-thread executor: two triggers never run two cycles at once;
- catch-up on start: when the last stored digest is older than the latest scheduled time (or
  there is none), the job's first run is now, once, not once per missed day;
- exactly one cycle per scheduled time, whatever the clock does: each time the job fires it
  looks for the latest scheduled time not yet served (:func:`due_slot`: since the last cycle of
  this process and the last digest in the store) and runs only if there is one; a wall-clock
  time the DST fall-back repeats is one scheduled time, not two; a late run (after a sleep or a
  clock jump past its day) makes the digest of its scheduled day;
- each run logs its summary in one line; a cycle that raises is logged and the schedule goes on;
- SIGTERM or SIGINT (Ctrl-C) stops the scheduler after the current cycle.
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger

from digest.config import Config, ScheduleConfig, apscheduler_crontab
from digest.errors import DigestError
from digest.pipeline import RunReport, run_cycle
from digest.store import open_store

log = logging.getLogger("digest.schedule")
JOB_ID = "digest-cycle"


def cron_trigger(schedule: ScheduleConfig) -> CronTrigger:
    """The trigger for ``[schedule] cron`` in ``[schedule] timezone``."""
    return CronTrigger.from_crontab(apscheduler_crontab(schedule.cron), timezone=ZoneInfo(schedule.timezone))


def catch_up_due(trigger: BaseTrigger, last_digest_at: dt.datetime | None, now: dt.datetime) -> bool:
    """True when a scheduled time has passed since the last digest was made (or none was ever made)."""
    if last_digest_at is None:
        return True
    # Stored times are cut to the second: a digest made at 07:00:00.4 by the 07:00 run reads 07:00:00.
    missed = trigger.get_next_fire_time(None, last_digest_at + dt.timedelta(seconds=1))
    return missed is not None and missed <= now


# How far back :func:`due_slot` looks for the latest scheduled time, widening until it finds one.
_WINDOWS = tuple(dt.timedelta(minutes=m) for m in (1, 60, 24 * 60, 8 * 24 * 60, 32 * 24 * 60, 367 * 24 * 60, 3700 * 24 * 60))


def slot_start(moment: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
    """The first instant whose wall-clock time in ``zone`` is ``moment``'s: in the hour a DST
    fall-back repeats, the first of the two; otherwise ``moment`` itself."""
    return moment.astimezone(zone).replace(fold=0)


def due_slot(trigger: BaseTrigger, after: dt.datetime | None, now: dt.datetime, zone: dt.tzinfo) -> dt.datetime | None:
    """The latest scheduled time in (``after``, ``now``] whose wall-clock time was not already
    served at ``after`` (None: every scheduled time up to now is served).

    ``after`` is when the last cycle ran; with None (never) the latest scheduled time up to
    ``now`` is due, or ``now`` itself when there was none.  Cost: the fire times of the smallest
    window back from ``now`` that holds one, whatever ``after`` is.
    """
    for window in _WINDOWS:
        start = now - window
        if after is not None and start <= after:
            start = after
        slot: dt.datetime | None = None
        fire: dt.datetime | None = trigger.get_next_fire_time(None, start)
        while fire is not None and fire <= now:
            if after is None or slot_start(fire, zone) > after:
                slot = fire
            # (in UTC: adding to a time in the zone is wall-clock arithmetic, which loses the fold)
            fire = trigger.get_next_fire_time(fire, fire.astimezone(dt.timezone.utc) + dt.timedelta(microseconds=1))
        if slot is not None:
            return slot
        if after is not None and start == after:
            return None
    return now if after is None else None


def last_digest_at(config: Config) -> dt.datetime | None:
    """When the store's most recent digest was made (None for a new store)."""
    with open_store(config.store, readonly=True) as store:
        last = store.last_digest()
    return last.created_at if last else None


def summary_line(report: RunReport) -> str:
    """A run's outcome in one log line."""
    counts = report.counts
    if report.digest is None:
        head = f"run {report.date.isoformat()}: nothing new ({counts.entries} entries read, {counts.already_seen} already seen)"
    else:
        head = (
            f"run {report.date.isoformat()}: {counts.new} new papers in {len(report.digest.groups)} topics "
            f"({counts.entries} entries read, {counts.already_seen} already seen)"
        )
    deliveries = ", ".join(
        f"{name} " + (" ".join(f"{k} {v}" for k, v in summary.items()) if isinstance(summary, dict) else str(summary))
        for name, summary in report.deliveries.items()
        if not (name == "weekly" and isinstance(summary, dict) and not any(summary.values()))  # (most days: nothing to say)
    )
    failed = [s.name for s in report.sources if not s.ok]
    sources = f"{len(report.sources) - len(failed)} ok" + (f", failed: {', '.join(failed)}" if failed else "")
    return f"{head}; deliveries: {deliveries or 'none'}; sources: {sources}"


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class DigestSchedule:
    """A BlockingScheduler with one job that runs a cycle.

    ``cycle`` (given the time and, for a late run, the scheduled day), ``trigger``, ``last_run``,
    ``clock`` and ``scheduler`` default to the real ones from the config; tests pass a slow cycle,
    a short interval, a fixed last digest time, or a fake clock and a scheduler they step.
    """

    def __init__(
        self,
        config: Config,
        *,
        cycle: Callable[[dt.datetime, dt.date | None], RunReport] | None = None,
        trigger: BaseTrigger | None = None,
        last_run: Callable[[], dt.datetime | None] | None = None,
        clock: Callable[[], dt.datetime] = _utc_now,
        scheduler: BaseScheduler | None = None,
    ) -> None:
        self.config = config
        self.cycle = cycle or (lambda now, day: run_cycle(config, now=now, day=day))
        self.trigger = trigger or cron_trigger(config.schedule)
        self.last_run = last_run or (lambda: last_digest_at(config))
        self.clock = clock
        self.zone = ZoneInfo(config.schedule.timezone)
        self.scheduler = scheduler or BlockingScheduler(timezone=self.zone, executors={"default": ThreadPoolExecutor(1)})
        self._served: dt.datetime | None = None  # when this process last ran a cycle
        self._stopping = threading.Event()
        self._done = threading.Event()
        self._shut_down = threading.Event()  # the scheduler has stopped and its running cycle ended

    def run(self, *, handle_signals: bool = True) -> None:
        """Schedule the cycle (catching up once if a run was missed) and block until stopped."""
        now = self.clock()
        options: dict[str, Any] = {}
        if catch_up_due(self.trigger, self.last_run(), now):
            options["next_run_time"] = now
            log.info("catching up: the last digest is older than the latest scheduled time; running once now")
        first = options.get("next_run_time") or self.trigger.get_next_fire_time(None, now)
        self.scheduler.add_job(
            self._run_once, self.trigger, id=JOB_ID, name="digest cycle",
            coalesce=True, max_instances=1, misfire_grace_time=None, **options,
        )
        if handle_signals:
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, self._on_signal)
        try:
            if self._stopping.is_set():
                return
            log.info("scheduled %r (%s); next run at %s", self.config.schedule.cron, self.config.schedule.timezone,
                     first.isoformat() if first else "never")
            self.scheduler.start()
            if self._stopping.is_set():
                # start() returns as soon as shutdown begins; a cycle may still be finishing.
                self._shut_down.wait()
            log.info("stopped")
        finally:
            self._done.set()

    def stop(self) -> None:
        """Stop after the current cycle; safe to call from a signal handler (it waits in a thread)."""
        if not self._stopping.is_set():
            self._stopping.set()
            threading.Thread(target=self._shutdown, name="digest-schedule-stop").start()

    def _on_signal(self, signum: int, frame: object) -> None:
        log.info("%s: stopping after the current cycle", signal.Signals(signum).name)
        self.stop()

    def _shutdown(self) -> None:
        try:
            while True:
                try:
                    self.scheduler.shutdown(wait=True)
                    return
                except SchedulerNotRunningError:
                    # Asked to stop while run() was still starting: try again until it has started,
                    # or until run() has returned without starting.
                    if self._done.wait(0.05):
                        return
        finally:
            self._shut_down.set()

    def _run_once(self) -> None:
        """One cycle for the latest scheduled time not yet served (none: nothing to do); whatever
        it raises is logged, never ends the schedule."""
        now = self.clock()
        try:
            stored = self.last_run()
        except DigestError as exc:
            log.error("cycle failed: %s", exc.message.replace("\n", "; "))
            return
        marks = [moment for moment in (self._served, stored + dt.timedelta(seconds=1) if stored else None) if moment]
        slot = due_slot(self.trigger, max(marks) if marks else None, now, self.zone)
        if slot is None:
            log.info("skipped: the digest of the latest scheduled time is already made (the clock went back?)")
            return
        self._served = now
        scheduled_day = slot.astimezone(self.zone).date()
        day = scheduled_day if scheduled_day != now.astimezone(self.zone).date() else None
        try:
            report = self.cycle(now, day)
        except DigestError as exc:
            log.error("cycle failed: %s", exc.message.replace("\n", "; "))
        except Exception:
            log.exception("cycle crashed")
        else:
            for warning in report.warnings:
                log.warning(warning)
            log.info(summary_line(report))


def run_schedule(config: Config) -> None:
    """Run cycles on the configured schedule until SIGTERM or Ctrl-C.

    The store is opened for writing first: a store no cycle could use (damaged, locked, read-only,
    from a newer digest) stops the command at once with its one-line error.
    """
    open_store(config.store).close()
    DigestSchedule(config).run()

"""The scheduler: catch-up, no overlapping cycles, errors logged, SIGTERM after the current cycle."""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import apscheduler.schedulers.base as apscheduler_base
import pytest
from apscheduler.executors.debug import DebugExecutor
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.interval import IntervalTrigger

from digest.config import ScheduleConfig, load_config
from digest.models import DigestCounts
from digest.pipeline import RunReport
from digest.schedule import DigestSchedule, catch_up_due, cron_trigger
from tests.smtp_sink import Sink, smtp_server
from tests.test_email import RECIPIENTS, email_config

UTC = dt.timezone.utc
Cli = Callable[..., subprocess.CompletedProcess[str]]


def report() -> RunReport:
    return RunReport(date=dt.date(2025, 3, 14), digest=None, counts=DigestCounts(), sources=())


def counting(runs: list[float]) -> Callable[[dt.datetime, dt.date | None], RunReport]:
    """A cycle that notes when it ran."""

    def cycle(now: dt.datetime, day: dt.date | None) -> RunReport:
        runs.append(time.monotonic())
        return report()

    return cycle


def wait_for(condition: Callable[[], bool], timeout: float = 60) -> None:  # generous: CI machines get busy
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_catch_up_is_due_only_when_a_scheduled_time_passed_since_the_last_digest() -> None:
    trigger = cron_trigger(ScheduleConfig(cron="0 7 * * *", timezone="Europe/Berlin"))
    now = dt.datetime(2025, 3, 14, 10, 0, tzinfo=UTC)  # 11:00 in Berlin
    assert catch_up_due(trigger, None, now)  # a new store
    assert catch_up_due(trigger, dt.datetime(2025, 3, 11, 6, 0, tzinfo=UTC), now)  # three days missed: one run
    assert catch_up_due(trigger, dt.datetime(2025, 3, 13, 6, 0, 5, tzinfo=UTC), now)  # yesterday's 07:00 run
    assert not catch_up_due(trigger, dt.datetime(2025, 3, 14, 6, 0, tzinfo=UTC), now)  # today's run, stored to the second
    assert not catch_up_due(trigger, dt.datetime(2025, 3, 14, 5, 0, tzinfo=UTC), dt.datetime(2025, 3, 14, 5, 59, tzinfo=UTC))


class ScheduleThread(threading.Thread):
    """``schedule.run()`` in a thread; ``stop()`` stops it and re-raises what the thread raised."""

    def __init__(self, schedule: DigestSchedule) -> None:
        super().__init__()
        self.schedule = schedule
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.schedule.run(handle_signals=False)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            self.error = exc

    def stop(self) -> None:
        self.schedule.stop()
        self.join(10)
        assert not self.is_alive(), "the schedule did not stop"
        if self.error is not None:
            raise self.error


def run_in_thread(schedule: DigestSchedule) -> ScheduleThread:
    thread = ScheduleThread(schedule)
    thread.start()
    return thread


def test_started_after_missed_days_it_runs_once_not_once_per_day(write_config: Callable[..., Path]) -> None:
    config = load_config(write_config())
    runs: list[float] = []
    schedule = DigestSchedule(
        config,
        cycle=counting(runs),
        last_run=lambda: dt.datetime.now(UTC) - dt.timedelta(days=3),
    )
    thread = run_in_thread(schedule)
    wait_for(lambda: len(runs) == 1)
    time.sleep(0.5)
    thread.stop()
    assert len(runs) == 1


def test_no_catch_up_when_the_last_digest_is_recent(write_config: Callable[..., Path]) -> None:
    config = load_config(write_config())
    runs: list[float] = []
    schedule = DigestSchedule(config, cycle=counting(runs), last_run=lambda: dt.datetime.now(UTC))
    thread = run_in_thread(schedule)
    time.sleep(0.5)
    thread.stop()
    assert runs == []


def test_overlapping_triggers_never_run_two_cycles(write_config: Callable[..., Path]) -> None:
    config = load_config(write_config())
    active, peak, runs = [0], [0], [0]
    lock = threading.Lock()

    def slow_cycle(now: dt.datetime, day: dt.date | None) -> RunReport:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.3)  # three trigger intervals
        with lock:
            active[0] -= 1
            runs[0] += 1
        return report()

    started = dt.datetime.now(UTC) - dt.timedelta(seconds=5)  # a digest made before the trigger's first time
    schedule = DigestSchedule(config, cycle=slow_cycle, trigger=IntervalTrigger(seconds=0.1), last_run=lambda: started)
    thread = run_in_thread(schedule)
    time.sleep(1.5)
    thread.stop()
    assert peak[0] == 1 and runs[0] >= 3


def test_a_cycle_that_raises_is_logged_and_the_schedule_goes_on(write_config: Callable[..., Path], caplog: pytest.LogCaptureFixture) -> None:
    config = load_config(write_config())
    calls = [0]

    def flaky(now: dt.datetime, day: dt.date | None) -> RunReport:
        calls[0] += 1
        if calls[0] == 1:
            raise RuntimeError("boom")
        return report()

    schedule = DigestSchedule(config, cycle=flaky, trigger=IntervalTrigger(seconds=0.1), last_run=lambda: None)
    with caplog.at_level(logging.INFO, logger="digest.schedule"):
        thread = run_in_thread(schedule)
        wait_for(lambda: calls[0] >= 3)
        thread.stop()
    messages = [r.getMessage() for r in caplog.records if r.name == "digest.schedule"]
    assert "cycle crashed" in messages
    assert "run 2025-03-14: nothing new (0 entries read, 0 already seen); deliveries: none; sources: 0 ok" in messages
    assert messages[-1] == "stopped"


def start_schedule(path: Path, tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path]:
    log = tmp_path / "schedule.log"
    env = {k: v for k, v in os.environ.items() if k != "DIGEST_CONFIG"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "digest", "schedule", "--config", str(path)],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb"),
    )
    return proc, log


def test_sigterm_mid_cycle_finishes_the_cycle_then_exits_0(write_config: Callable[..., Path], tmp_path: Path) -> None:
    sink = Sink(block_on=1, accept_held=True)
    with smtp_server(sink) as port:
        path = email_config(write_config, tmp_path, port, recipients=RECIPIENTS[:1])
        proc, log = start_schedule(path, tmp_path)  # a new store: the catch-up cycle starts at once
        try:
            assert sink.blocked.wait(60), log.read_text()
            proc.send_signal(signal.SIGTERM)
            wait_for(lambda: "SIGTERM: stopping after the current cycle" in log.read_text())
            time.sleep(0.5)
            assert proc.poll() is None  # still finishing the cycle
            sink.release.set()
            assert proc.wait(30) == 0
        finally:
            proc.kill()
            proc.wait()
    text = log.read_text()
    assert "Traceback" not in text
    lines = [line.split(": ", 1)[1] for line in text.splitlines() if " digest.schedule: " in line]
    assert lines[0].startswith("catching up")
    assert lines[-3] == "SIGTERM: stopping after the current cycle"
    assert lines[-2].endswith("new papers in 3 topics (5 entries read, 0 already seen); deliveries: archive done, email sent 1 failed 0 pending 0; sources: 1 ok")
    assert lines[-1] == "stopped"
    assert len(sink.messages) == 1


def test_sigterm_while_idle_exits_0_at_once(write_config: Callable[..., Path], tmp_path: Path, digest_cli: Cli) -> None:
    path = write_config()
    digest_cli("schedule", "--help", check_code=0)
    proc, log = start_schedule(path, tmp_path)
    try:
        wait_for(lambda: "run " in log.read_text() and "next run at" in log.read_text())
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        assert time.monotonic() - started < 15  # idle: no cycle to finish, so no wait for a cron time
    finally:
        proc.kill()
        proc.wait()
    assert log.read_text().rstrip().endswith("digest.schedule: stopped")


# -- a hostile clock: DST gaps and overlaps, jumps, sleep -------------------------------------
# APScheduler's own job processing (BaseScheduler._process_jobs, coalescing, the trigger's fire
# times) runs on a fake clock: the test says what time it is and when the scheduler wakes.


class FakeClock:
    """The wall clock the scheduler and the cycle see; the test sets it."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now.astimezone(UTC)  # (arithmetic on UTC times: no wall-clock surprises in the test itself)

    def __call__(self) -> dt.datetime:
        return self.now


class SteppedScheduler(BaseScheduler):
    """APScheduler's scheduler without its main loop: :meth:`step` does what the loop does each
    time it wakes (run the due jobs, coalesced, then plan the next fire time), in this thread."""

    def wakeup(self) -> None:
        pass

    def shutdown(self, wait: bool = True) -> None:
        super().shutdown(wait)

    def _create_default_executor(self) -> DebugExecutor:
        return DebugExecutor()

    def step(self) -> None:
        self._process_jobs()


class Deployment:
    """``DigestSchedule`` on a stepped scheduler and a fake clock, with a fake store of digests."""

    def __init__(
        self, cron: str, zone: str, start: dt.datetime, last: dt.datetime, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        self.zone = ZoneInfo(zone)
        self.config = replace(
            load_config(_config_file(tmp_path)), schedule=ScheduleConfig(cron=cron, timezone=zone)
        )
        self.clock = FakeClock(start)
        # (created_at as stored, its date): the store's digests, the last one made at ``last``
        self.digests: list[tuple[dt.datetime, dt.date]] = [(last.astimezone(UTC), last.astimezone(self.zone).date())]
        clock = self.clock

        class Now(dt.datetime):
            @classmethod
            def now(cls, tz: dt.tzinfo | None = None) -> Any:
                return clock.now.astimezone(tz)

        monkeypatch.setattr(apscheduler_base, "datetime", Now)  # what APScheduler asks for the time
        self.restart()

    def restart(self) -> None:
        """A new process: a new scheduler, which looks at the store to catch up."""
        self.scheduler = SteppedScheduler(timezone=self.zone)
        schedule = DigestSchedule(
            self.config, cycle=self.cycle, clock=self.clock, scheduler=self.scheduler,
            last_run=lambda: self.digests[-1][0],
        )
        schedule.run(handle_signals=False)
        self.step()

    def cycle(self, now: dt.datetime, day: dt.date | None) -> RunReport:
        self.digests.append((now.replace(microsecond=0), day or now.astimezone(self.zone).date()))
        return report()

    def step(self) -> None:
        self.scheduler.step()

    def live(self, until: dt.datetime, every: dt.timedelta = dt.timedelta(minutes=10)) -> None:
        """The clock runs (the scheduler waking every ``every``) until ``until``."""
        until = until.astimezone(UTC)
        while self.clock.now < until:
            self.clock.now = min(self.clock.now + every, until)
            self.step()

    def days(self) -> list[str]:
        return [day.isoformat() for _, day in self.digests]


def _config_file(tmp_path: Path) -> Path:
    (tmp_path / "inbox").mkdir(exist_ok=True)
    path = tmp_path / "digest.toml"
    path.write_text('[[sources]]\nname = "inbox"\nkind = "snapshots"\npath = "inbox/"\n', encoding="utf-8")
    return path


BERLIN = ZoneInfo("Europe/Berlin")


def berlin(*args: int, fold: int = 0) -> dt.datetime:
    return dt.datetime(*args, tzinfo=BERLIN, fold=fold)


def test_a_run_time_in_the_dst_gap_runs_once_that_day(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clock = Deployment("30 2 * * *", "Europe/Berlin", berlin(2025, 3, 28, 12, 0), berlin(2025, 3, 28, 2, 30), monkeypatch, tmp_path)
    clock.live(berlin(2025, 4, 1, 12, 0))  # 02:30 does not exist on 30 March: the clock goes 01:59 -> 03:00
    assert clock.days() == ["2025-03-28", "2025-03-29", "2025-03-30", "2025-03-31", "2025-04-01"]


def test_a_run_time_the_dst_overlap_repeats_runs_once_that_day(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clock = Deployment("30 2 * * *", "Europe/Berlin", berlin(2025, 10, 24, 12, 0), berlin(2025, 10, 24, 2, 30), monkeypatch, tmp_path)
    clock.live(berlin(2025, 10, 28, 12, 0))  # 02:30 happens twice on 26 October (CEST, then CET)
    assert clock.days() == ["2025-10-24", "2025-10-25", "2025-10-26", "2025-10-27", "2025-10-28"]


def test_restarted_in_the_repeated_hour_after_its_run_it_does_not_run_again(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clock = Deployment("30 2 * * *", "Europe/Berlin", berlin(2025, 10, 26, 2, 0), berlin(2025, 10, 25, 2, 30), monkeypatch, tmp_path)
    clock.live(berlin(2025, 10, 26, 2, 40))  # 02:30 CEST: the day's run
    clock.clock.now = berlin(2025, 10, 26, 2, 20, fold=1).astimezone(UTC)  # 02:20 CET, the hour again
    clock.restart()
    clock.live(berlin(2025, 10, 27, 12, 0))
    assert clock.days() == ["2025-10-25", "2025-10-26", "2025-10-27"]


@pytest.mark.parametrize("restart", [False, True])
def test_the_clock_jumping_back_an_hour_after_the_run_never_runs_it_again(
    restart: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clock = Deployment("0 7 * * *", "UTC", dt.datetime(2025, 3, 14, 6, 0, tzinfo=UTC), dt.datetime(2025, 3, 13, 7, 0, tzinfo=UTC), monkeypatch, tmp_path)
    clock.live(dt.datetime(2025, 3, 14, 7, 10, tzinfo=UTC))
    clock.clock.now = dt.datetime(2025, 3, 14, 6, 10, tzinfo=UTC)  # NTP corrects a clock an hour fast
    if restart:
        clock.restart()
    clock.live(dt.datetime(2025, 3, 15, 7, 30, tzinfo=UTC))
    assert clock.days() == ["2025-03-13", "2025-03-14", "2025-03-15"]


def test_the_clock_jumping_forward_a_day_makes_the_skipped_days_digest_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clock = Deployment("0 7 * * *", "UTC", dt.datetime(2025, 3, 14, 5, 0, tzinfo=UTC), dt.datetime(2025, 3, 13, 7, 0, tzinfo=UTC), monkeypatch, tmp_path)
    clock.live(dt.datetime(2025, 3, 14, 6, 0, tzinfo=UTC))
    clock.clock.now = dt.datetime(2025, 3, 15, 6, 0, tzinfo=UTC)  # a day forward, before the 14th's run
    clock.step()
    clock.live(dt.datetime(2025, 3, 16, 7, 30, tzinfo=UTC))
    assert clock.days() == ["2025-03-13", "2025-03-14", "2025-03-15", "2025-03-16"]
    assert clock.digests[1][0] == dt.datetime(2025, 3, 15, 6, 0, tzinfo=UTC)  # the 14th's, made late, once


def test_asleep_through_the_run_it_runs_once_on_waking(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clock = Deployment("0 7 * * *", "UTC", dt.datetime(2025, 3, 14, 5, 0, tzinfo=UTC), dt.datetime(2025, 3, 13, 7, 0, tzinfo=UTC), monkeypatch, tmp_path)
    clock.live(dt.datetime(2025, 3, 14, 6, 50, tzinfo=UTC))
    clock.clock.now = dt.datetime(2025, 3, 14, 10, 0, tzinfo=UTC)  # the lid opens three hours late
    clock.step()
    clock.live(dt.datetime(2025, 3, 15, 6, 0, tzinfo=UTC))
    clock.clock.now = dt.datetime(2025, 3, 17, 9, 0, tzinfo=UTC)  # asleep over three run times: one run, on waking
    clock.step()
    clock.live(dt.datetime(2025, 3, 18, 7, 30, tzinfo=UTC))
    assert clock.days() == ["2025-03-13", "2025-03-14", "2025-03-17", "2025-03-18"]
    assert [made for made, _ in clock.digests[1:3]] == [dt.datetime(2025, 3, 14, 10, 0, tzinfo=UTC), dt.datetime(2025, 3, 17, 9, 0, tzinfo=UTC)]


@pytest.mark.parametrize(
    ("weekday", "days"),
    [
        ("1-5", ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]),  # the example docs/operations.md gives
        ("0", ["Sunday"]),
        ("7", ["Sunday"]),  # crontab's other Sunday
        ("1,3,5", ["Monday", "Wednesday", "Friday"]),
        ("*/2", ["Sunday", "Tuesday", "Thursday", "Saturday"]),
        ("5-7", ["Friday", "Saturday", "Sunday"]),
        ("0-2", ["Sunday", "Monday", "Tuesday"]),
        ("mon-wed", ["Monday", "Tuesday", "Wednesday"]),
        ("sun", ["Sunday"]),
    ],
)
def test_cron_weekdays_are_crontab_weekdays(weekday: str, days: list[str]) -> None:
    """crontab counts 0 (and 7) as Sunday; APScheduler 3's own numbers start at Monday."""
    schedule = ScheduleConfig(cron=f"0 7 * * {weekday}", timezone="Europe/Berlin")
    trigger = cron_trigger(schedule)
    fire, now, fired = None, dt.datetime(2026, 3, 1, tzinfo=UTC), []
    for _ in range(len(days)):  # one week of fire times, from Sunday 1 March 2026
        fire = trigger.get_next_fire_time(fire, now)
        assert fire is not None
        fired.append(fire.strftime("%A"))
        now = fire + dt.timedelta(seconds=1)
    assert sorted(fired) == sorted(days) and fire.date() < dt.date(2026, 3, 8)


def test_a_crontab_with_sunday_as_7_is_a_valid_config(tmp_path: Path) -> None:
    config = tmp_path / "digest.toml"
    config.write_text('[schedule]\ncron = "30 6 * * 7"\ntimezone = "Europe/Berlin"\n', encoding="utf-8")
    assert load_config(config).schedule.cron == "30 6 * * 7"


def test_across_a_restart_only_a_cycle_that_made_a_digest_counts_as_served(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """What docs/guarantees.md says: the store remembers digests, not cycles that found nothing new."""
    clock = Deployment("0 7 * * *", "UTC", dt.datetime(2025, 3, 14, 6, 0, tzinfo=UTC), dt.datetime(2025, 3, 13, 7, 0, tzinfo=UTC), monkeypatch, tmp_path)
    cycles: list[dt.datetime] = []

    def nothing_new(now: dt.datetime, day: dt.date | None) -> RunReport:
        cycles.append(now)
        return report()  # (no digest stored)

    clock.cycle = nothing_new  # type: ignore[method-assign]
    clock.restart()
    clock.live(dt.datetime(2025, 3, 14, 7, 10, tzinfo=UTC))
    clock.live(dt.datetime(2025, 3, 14, 8, 0, tzinfo=UTC))  # the same process: the 07:00 cycle served its time
    assert cycles == [dt.datetime(2025, 3, 14, 7, 0, tzinfo=UTC)]
    clock.clock.now = dt.datetime(2025, 3, 14, 9, 0, tzinfo=UTC)
    clock.restart()  # a new process: the last digest is yesterday's, so it catches up once
    clock.live(dt.datetime(2025, 3, 14, 12, 0, tzinfo=UTC))
    assert cycles == [dt.datetime(2025, 3, 14, 7, 0, tzinfo=UTC), dt.datetime(2025, 3, 14, 9, 0, tzinfo=UTC)]

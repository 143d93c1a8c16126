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
from pathlib import Path

import pytest
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


def counting(runs: list[float]) -> Callable[[], RunReport]:
    """A cycle that notes when it ran."""

    def cycle() -> RunReport:
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

    def slow_cycle() -> RunReport:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.3)  # three trigger intervals
        with lock:
            active[0] -= 1
            runs[0] += 1
        return report()

    schedule = DigestSchedule(
        config, cycle=slow_cycle, trigger=IntervalTrigger(seconds=0.1), last_run=lambda: dt.datetime.now(UTC)
    )
    thread = run_in_thread(schedule)
    time.sleep(1.5)
    thread.stop()
    assert peak[0] == 1 and runs[0] >= 3


def test_a_cycle_that_raises_is_logged_and_the_schedule_goes_on(write_config: Callable[..., Path], caplog: pytest.LogCaptureFixture) -> None:
    config = load_config(write_config())
    calls = [0]

    def flaky() -> RunReport:
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

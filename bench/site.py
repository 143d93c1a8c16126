"""Benchmark ``digest site``: 365 days x 300 papers, a full build, then one more day incrementally.

    .venv/bin/python bench/site.py [--days 365] [--papers 300] [--keep]

The store is filled through its own API (``SeenStore.commit``, one digest per day, with its
archive outbox row).  Steps, each timed:

1. ``archive``: write every day page of the archive (``sync_archive``: what 365 runs wrote).
2. ``full``: the first ``digest site`` build (every page rendered, every link checked).
3. ``noop``: ``digest site`` again with nothing new.
4. ``run_delivery``: one more day committed and delivered by the archive channel, as ``digest run``
   does (day page, index, topic landing pages, the month pages the day touches, feed); the median
   over the repeats is reported as ``run_delivery``.
5. ``incremental``: ``digest site`` after that day, in process (steps 4-5 ``--repeat`` times, one
   more day each: the median and the minimum are reported).
6. ``incremental_cli``: the same as a new ``digest site`` process, what a daily cron job runs,
   on the last ``--cli-repeat`` days of a month (the largest month pages and search shard; the
   days before them are added and built untimed): the median, the minimum and each run, with the
   process's CPU time from ``wait4``.  ``incremental_cli_early`` is one run on the day after step
   5 (early in a month), ``incremental_cli_nopyc`` one run just before the last days with
   ``PYTHONDONTWRITEBYTECODE=1`` (every module compiled from source); the other runs, like the other
   benches' processes (``digest_env``), may write their ``.pyc`` files, as an installed package has them.

Prints the timings and writes ``bench/results/site.json``.  Target: incremental <= 1 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from _common import DIGEST, digest_env, install_product

from digest.archive_site import build_site
from digest.config import load_config
from digest.deliver import DeliveryContext
from digest.deliver.archive import ArchiveChannel, sync_archive
from digest.models import Digest, DigestCounts, Paper, TopicGroup
from digest.render import Renderer
from digest.store import SeenStore
from digest.topics import default_taxonomy_path, load_taxonomy

HERE = Path(__file__).resolve().parent
START = dt.date(2024, 1, 1)
WORDS = (
    "sparse attention linear transformer scaling laws quantized kv cache speculative decoding mixture experts "
    "diffusion vision language model alignment preference optimization reasoning chain thought retrieval "
    "augmented generation long context state space memory efficient fine tuning low rank adapters pruning "
    "distillation benchmark evaluation multimodal speech audio video robotics agents tool use graph neural "
    "federated privacy robust calibration uncertainty"
).split()


def make_digest(day: dt.date, papers: int, codes: list[str], rng: random.Random, serial: int) -> Digest:
    """A day's digest of ``papers`` synthetic papers spread over the topics."""
    by_topic: dict[str, list[Paper]] = {c: [] for c in codes}
    for i in range(papers):
        title = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 12))).capitalize()
        arxiv = f"{day:%y%m}.{serial + i:05d}"
        abstract = " ".join(rng.choice(WORDS) for _ in range(rng.randint(120, 220))).capitalize() + "."
        paper = Paper(
            title=f"{title}: study {serial + i}",
            abstract=abstract,
            url=f"https://arxiv.org/abs/{arxiv}",
            arxiv_id=arxiv,
            authors=tuple(f"Author {rng.randint(1, 5000)}" for _ in range(rng.randint(1, 6))),
            source="bench",
            position=i,
            upvotes=rng.randint(0, 200),
        )
        by_topic[codes[min(int(rng.expovariate(0.35)), len(codes) - 1)]].append(paper)
    groups = tuple(TopicGroup(c, c, tuple(ps)) for c, ps in by_topic.items() if ps)
    return Digest(day, groups, DigestCounts(papers, papers, 0, 0))


def commit_day(store: SeenStore, digest: Digest, now: dt.datetime) -> int:
    """Store a digest with its archive outbox row, as ``digest run`` does."""
    diff = store.diff(digest.papers)
    digest_id = store.commit(digest, diff, channels=[("archive", "")], now=now)
    assert digest_id is not None
    return digest_id


CPU: dict[str, float] = {}


def timed(label: str, results: dict[str, float], func: object) -> object:
    """Run ``func`` and record its wall time under ``label`` (and this process's CPU time in ``CPU``)."""
    start, cpu = time.perf_counter(), time.process_time()
    value = func()  # type: ignore[operator]
    results[label] = round(time.perf_counter() - start, 3)
    CPU[label] = round(time.process_time() - cpu, 3)
    print(f"{label:>24}: {results[label]:8.3f} s wall, {CPU[label]:8.3f} s cpu", flush=True)
    return value


def month_end(day: dt.date) -> dt.date:
    """The last day of ``day``'s month."""
    first_of_next = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return first_of_next - dt.timedelta(days=1)


def run_cli(command: Sequence[str], env: Mapping[str, str]) -> tuple[float, float]:
    """Run one process to its end; its wall time and its CPU time (user + system, from ``wait4``)."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    output = proc.stdout.read()
    proc.stdout.close()
    _, status, usage = os.wait4(proc.pid, 0)  # reaps the process: its own resource usage
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{output.decode(errors='replace')[-2000:]}")
    return round(wall, 3), round(usage.ru_utime + usage.ru_stime, 3)


def main() -> None:
    """Run the benchmark and save its results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--papers", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5, help="incremental builds, one more day each (median reported)")
    parser.add_argument("--cli-repeat", type=int, default=3, help="incremental builds as a new digest process (median reported)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder and print its path")
    args = parser.parse_args()
    install_product()

    work = Path(tempfile.mkdtemp(prefix="digest-bench-site-"))
    config_path = work / "digest.toml"
    config_path.write_text('[store]\npath = "digest.sqlite3"\n\n[archive]\ndir = "archive"\n', encoding="utf-8")
    config = load_config(config_path)
    taxonomy = load_taxonomy(default_taxonomy_path())
    codes = [*taxonomy.codes(), "other"]
    rng = random.Random(6)
    timings: dict[str, float] = {}
    try:
        with SeenStore.open(config.store.path) as store:

            def fill() -> None:
                for n in range(args.days):
                    day = START + dt.timedelta(days=n)
                    now = dt.datetime.combine(day, dt.time(7), dt.timezone.utc)
                    commit_day(store, make_digest(day, args.papers, codes, rng, n * args.papers), now)

            timed("store (commit x days)", timings, fill)
            renderer = Renderer()
            timed("archive", timings, lambda: sync_archive(store, config, taxonomy, renderer))
            for delivery in store.pending_deliveries("archive"):
                store.mark_delivery(delivery.id, "sent", now=dt.datetime.now(dt.timezone.utc))
        full = timed("full", timings, lambda: build_site(config))
        timed("noop", timings, lambda: build_site(config))

        # One more day at a time, as the daily cron job would: the run delivers it, then `digest site`.
        renders: list[float] = []
        cpus: list[float] = []
        deliveries: list[float] = []
        incremental = full
        for extra in range(args.repeat):
            day = START + dt.timedelta(days=args.days + extra)
            now = dt.datetime.combine(day, dt.time(7), dt.timezone.utc)
            with SeenStore.open(config.store.path) as store:
                commit_day(store, make_digest(day, args.papers, codes, rng, (args.days + extra) * args.papers), now)

                def deliver() -> None:
                    context = DeliveryContext(store, config, taxonomy, Renderer(), now)
                    result = ArchiveChannel().deliver(store.pending_deliveries("archive"), context)
                    assert not result.failed

                timed(f"run_delivery[{extra}]", timings, deliver)
                deliveries.append(timings[f"run_delivery[{extra}]"])
            incremental = timed(f"incremental[{extra}]", timings, lambda: build_site(config))
            renders.append(timings[f"incremental[{extra}]"])
            cpus.append(CPU[f"incremental[{extra}]"])
        timings["incremental"] = statistics.median(renders)
        CPU["incremental"] = statistics.median(cpus)
        timings["incremental_min"] = min(renders)
        timings["run_delivery"] = statistics.median(deliveries)
        print(f"{'run_delivery (median)':>24}: {timings['run_delivery']:8.3f} s wall: one archive delivery of one new day", flush=True)

        # The same from a new process, as a cron job would run it (one more day first, each time).
        def next_day() -> None:
            nonlocal day
            day += dt.timedelta(days=1)
            now = dt.datetime.combine(day, dt.time(7), dt.timezone.utc)
            serial = (day - START).days * args.papers
            with SeenStore.open(config.store.path) as store:
                commit_day(store, make_digest(day, args.papers, codes, rng, serial), now)
                ArchiveChannel().deliver(store.pending_deliveries("archive"), DeliveryContext(store, config, taxonomy, Renderer(), now))

        command = [str(DIGEST), "site", "--config", str(config_path)]
        next_day()
        early = run_cli(command, digest_env())
        print(f"{f'incremental_cli_early ({day:%d %b})':>24}: {early[0]:8.3f} s wall, {early[1]:8.3f} s cpu", flush=True)
        # The last days of a month cost the most (a month page lists the whole month, the search
        # shard too): days are added and built (untimed, in process) up to them.
        end = month_end(day + dt.timedelta(days=1))
        if (end - day).days <= args.cli_repeat + 1:
            end = month_end(end + dt.timedelta(days=1))
        while (end - day).days > args.cli_repeat + 1:
            next_day()
            build_site(config)
        next_day()
        nopyc = run_cli(command, {**digest_env(), "PYTHONDONTWRITEBYTECODE": "1"})
        print(f"{f'incremental_cli_nopyc ({day:%d %b})':>24}: {nopyc[0]:8.3f} s wall, {nopyc[1]:8.3f} s cpu", flush=True)
        cli_runs: list[tuple[float, float]] = []
        cli_days: list[str] = []
        for extra in range(args.cli_repeat):
            next_day()
            cli_runs.append(run_cli(command, digest_env()))
            cli_days.append(day.isoformat())
            print(f"{f'incremental_cli ({day:%d %b})':>24}: {cli_runs[-1][0]:8.3f} s wall, {cli_runs[-1][1]:8.3f} s cpu", flush=True)
        timings["incremental_cli"] = statistics.median(w for w, _ in cli_runs)
        timings["incremental_cli_min"] = min(w for w, _ in cli_runs)
        CPU["incremental_cli"] = statistics.median(c for _, c in cli_runs)
        timings["incremental_cli_early"], CPU["incremental_cli_early"] = early
        timings["incremental_cli_nopyc"], CPU["incremental_cli_nopyc"] = nopyc

        size = sum(p.stat().st_size for p in config.archive.site.rglob("*") if p.is_file())
        result = {
            "benchmark": "digest site",
            "days": args.days,
            "papers_per_day": args.papers,
            "seconds": timings,
            "cpu_seconds": CPU,  # the CLI's are its process's own (wait4)
            "incremental_cli_runs": [{"day": d, "seconds": w, "cpu_seconds": c} for d, (w, c) in zip(cli_days, cli_runs)],
            "load_average": list(os.getloadavg()),
            "target_incremental_s": 1.0,
            "incremental_ok": timings["incremental"] <= 1.0,
            "incremental_cpu_ok": CPU["incremental"] <= 1.0,
            "incremental_cli_ok": timings["incremental_cli"] <= 1.0,
            "incremental_cli_cpu_ok": CPU["incremental_cli"] <= 1.0,
            "full_rendered": len(full.rendered),  # type: ignore[attr-defined]
            "incremental_rendered": list(incremental.rendered),  # type: ignore[attr-defined]
            "site_files": incremental.pages,  # type: ignore[attr-defined]
            "site_bytes": size,
            "python": platform.python_version(),
            "machine": platform.machine(),
        }
        out = HERE / "results" / "site.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(json.dumps(result, indent=2))
        print(f"saved {out}")
    finally:
        if args.keep:
            print(f"work folder: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

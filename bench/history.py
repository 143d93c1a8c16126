"""History: does a run cost the same on 1,000,000 stored papers as on 10,000?

Two stores are filled through the store's own API (``SeenStore.commit`` of one digest a day,
300 papers with ~1,200-character abstracts each, as in real use: 1,000,000 papers is 3,334 days,
about nine years, and the archive's index and topic pages grow with the days), and their archive
pages are built once (untimed, kept with the store); then each gets the same
cycles: a whole ``digest run`` process on a snapshot file of 100 new papers (email to an aiosmtpd
sink on 127.0.0.1 once the email channel has landed).  Each timed run drops a new file and uses
the next date, so it starts from the state the previous one left (100 papers more: nothing).
The two stores take turns run by run, so that the machine's other load falls on both alike.
Runs alternate with a diagnostic one that skips the archive's whole-store pages (index, topic
pages, feed: ``_without_archive_pages.py``), to show which part grows with the store.

Prints a table and writes ``bench/results/history.json``.
Target: the 1M/10k time ratio <= 1.1.  Also reported: the store's bytes per paper.

The filled stores are kept in ``bench/.work/history/`` and reused while the generator is
unchanged (``--fresh`` rebuilds them); a newer schema is reached by the store's own migrations,
in the untimed first run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from _common import (
    BENCH,
    DIGEST,
    PRODUCT_PYTHON,
    TOPICS,
    WORK,
    Row,
    Sample,
    SmtpSink,
    abstract,
    arxiv_id,
    copy_tree,
    digest_config,
    digest_env,
    email_channel_available,
    fresh_dir,
    install_product,
    print_table,
    run_timed,
    snapshot_text,
    title,
    write_results,
)

if TYPE_CHECKING:
    from digest.store import SeenStore

GENERATOR = 3  # bump when the generated papers change
DAY_SIZE = 300
CODES = ("architecture", "inference", "compression", "training", "adaptation", "understanding",
         "vision", "multimodal", "generation", "audio", "applications", "other")
FIRST_DAY = dt.date(2020, 1, 1)
RUN_DAY = dt.date(2030, 1, 1)


def batches(papers: int) -> list[int]:
    """Digest sizes, oldest first: one digest of ``DAY_SIZE`` papers a day (the last one smaller)."""
    return [DAY_SIZE] * (papers // DAY_SIZE) + ([papers % DAY_SIZE] if papers % DAY_SIZE else [])


def fill(folder: Path, papers: int, opened: Callable[[], SeenStore] | None = None) -> float:
    """A store in ``folder`` (or the one ``opened`` returns: bench/pg.py's) holding ``papers``
    papers, committed digest by digest, and its archive pages in ``folder``; the seconds it took."""
    from digest.models import Digest, DigestCounts, Paper, TopicGroup
    from digest.store import Diff, SeenStore

    started = time.perf_counter()
    now = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
    start = 0
    with opened() if opened is not None else SeenStore.open(folder / "digest.sqlite3") as store:
        for day, size in enumerate(batches(papers)):
            items = [
                Paper(
                    title=title(i), abstract=abstract(i), url=f"https://arxiv.org/abs/{arxiv_id(i)}",
                    arxiv_id=arxiv_id(i), authors=("Ada Lovelace", "Alan Turing"), source="cs.LG", position=i - start,
                )
                for i in range(start, start + size)
            ]
            by_code: dict[str, list[Paper]] = {}
            for i, paper in enumerate(items):
                by_code.setdefault(CODES[(start + i) % len(CODES)], []).append(paper)
            groups = tuple(TopicGroup(code, code, tuple(members)) for code, members in by_code.items())
            digest = Digest(FIRST_DAY + dt.timedelta(days=day), groups, DigestCounts(size, size, 0, 0))
            store.commit(digest, Diff(tuple(items), ()), now=now)
            before, start = start, start + size
            if before // 100_000 != start // 100_000 or start == papers:
                print(f"  filled {start:>9,} / {papers:,}", flush=True)
        build_archive(folder, store)
    return time.perf_counter() - started


def build_archive(folder: Path, store: SeenStore) -> None:
    """The archive's index, topic, month pages and feed of the filled store, as ``digest site --rebuild`` would."""
    from digest.config import load_config
    from digest.deliver.archive import write_archive_pages
    from digest.render import Renderer
    from digest.topics import configured_taxonomy

    print("  building its archive pages ...", flush=True)
    config = load_config(digest_config(folder))
    write_archive_pages(store, config, configured_taxonomy(config.topics.file), Renderer())


def marker(papers: int) -> dict[str, object]:
    """What a reusable filled store was made with."""
    return {"generator": GENERATOR, "papers": papers, "day_size": DAY_SIZE, "topics": list(TOPICS)}


def prepared(papers: int, fresh: bool) -> tuple[Path, float | None]:
    """The filled store for ``papers`` (built unless a matching one is kept)."""
    folder = WORK / "history" / f"filled-{papers}"
    stamp = folder / "marker.json"
    if not fresh and stamp.exists() and json.loads(stamp.read_text()) == marker(papers):
        return folder, None
    fresh_dir(folder)
    print(f"filling a store with {papers:,} papers ...", flush=True)
    seconds = fill(folder, papers)
    stamp.write_text(json.dumps(marker(papers)))
    return folder, seconds


def store_bytes(path: Path) -> int:
    """The store's size on disk, its WAL checkpointed first."""
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def alternating_turns(stores: Mapping[int, tuple[Path, Path, float | None]], runs: int) -> Iterator[tuple[int, int, Path, dt.date]]:
    """The stores' turns, ``2 * runs + 1`` runs of (run, size, config, day): in either order run by
    run (ABBA), so that whatever else the machine does, the writeback of the other store's last run
    included, falls on both.  Each turn's inbox holds one new snapshot of 100 papers never seen."""
    for run in range(2 * runs + 1):
        for size, (inbox, config, _) in sorted(stores.items(), reverse=run % 4 in (2, 3)):
            for old in inbox.iterdir():
                old.unlink()
            first = 10_000_000 + 1_000 * run
            (inbox / f"day-{run}.txt").write_text(snapshot_text(range(first, first + 100)), encoding="utf-8")
            yield run, size, config, RUN_DAY + dt.timedelta(days=run)


def run_hundred_new(command: Sequence[str | Path], size: int, config: Path, day: dt.date, env: Mapping[str, str]) -> Sample:
    """One timed ``digest run`` of a turn; it must succeed and find the 100 new papers."""
    sample = run_timed([*command, "run", "--config", config, "--date", day.isoformat(), "--json"], env=env)
    if sample.returncode != 0:
        raise RuntimeError(f"digest run failed on {size}: {sample.stdout[-2000:]}\n{sample.stderr[-2000:]}")
    summary = json.loads(sample.stdout)
    assert summary["new"] == 100, summary
    return sample


def main() -> None:
    """Fill both stores, time the 100-new cycles on each, save the ratio and bytes per paper."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=21, help="timed processes per store (the ratio moves with the machine: more runs steady it)")
    parser.add_argument("--sizes", type=int, nargs=2, default=(10_000, 1_000_000), metavar=("SMALL", "LARGE"))
    parser.add_argument("--fresh", action="store_true", help="rebuild the filled stores")
    args = parser.parse_args()
    install_product()
    env = digest_env()
    details: dict[str, object] = {"runs": args.runs, "email": email_channel_available()}
    medians: dict[int, float] = {}
    partial_medians: dict[int, float] = {}
    rows: list[Row] = []
    with SmtpSink() as sink:
        stores = {}
        for size in args.sizes:
            base, fill_seconds = prepared(size, args.fresh)
            live = WORK / "history" / f"live-{size}"
            copy_tree(base, live)
            inbox = fresh_dir(live / "inbox")
            stores[size] = (inbox, digest_config(live, inbox=inbox, smtp_port=sink.port), fill_seconds)
            details[str(size)] = {"bytes_per_paper": round(store_bytes(live / "digest.sqlite3") / size)}
        samples: dict[int, list[Sample]] = {size: [] for size in args.sizes}
        partial: dict[int, list[Sample]] = {size: [] for size in args.sizes}
        for run, size, config, day in alternating_turns(stores, args.runs):  # the first run warms the page cache, untimed
            # Every other run skips the archive's whole-store pages: a diagnostic of where time goes.
            skip = run % 2 == 0 and run > 0
            command = [PRODUCT_PYTHON, BENCH / "_without_archive_pages.py"] if skip else [DIGEST]
            sample = run_hundred_new(command, size, config, day, env)
            if run:
                (partial if skip else samples)[size].append(sample)
        for size, (_, _, fill_seconds) in stores.items():
            medians[size] = statistics.median(s.seconds for s in samples[size])
            partial_medians[size] = statistics.median(s.seconds for s in partial[size])
            bytes_per_paper = details[str(size)]["bytes_per_paper"]
            details[str(size)] = {
                "seconds": [round(s.seconds, 4) for s in samples[size]],
                "peak_mb": [round(s.peak_mb, 1) for s in samples[size]],
                "median_seconds": round(medians[size], 4),
                "without_archive_pages_seconds": [round(s.seconds, 4) for s in partial[size]],
                "bytes_per_paper": bytes_per_paper,
                "fill_seconds": round(fill_seconds, 1) if fill_seconds is not None else "kept from an earlier run",
            }
            rows.append(Row(f"100 new on {size:,} stored, wall", medians[size], "s"))
            rows.append(Row(f"100 new on {size:,} stored, peak RSS", statistics.median(s.peak_mb for s in samples[size]), "MB"))
            rows.append(Row(f"100 new on {size:,} stored, archive index/topic/feed pages skipped", partial_medians[size], "s",
                            note="diagnostic"))
            rows.append(Row(f"store bytes per paper ({size:,} papers)", float(str(bytes_per_paper)), "B"))
    small, large = args.sizes
    rows.append(Row(f"time ratio {large:,} / {small:,}", medians[large] / medians[small], "x", 1.1))
    # Each pair of runs ran back to back, so the ratio within a pair is free of the machine's drift
    # over the minutes of the bench; their median is the steadier estimate of the same ratio.
    paired = statistics.median(b.seconds / a.seconds for a, b in zip(samples[small], samples[large]))
    details["paired_ratio_median"] = round(paired, 4)
    rows.append(Row(f"time ratio {large:,} / {small:,}, median of the back-to-back pairs", paired, "x",
                    note="diagnostic: each pair shares the machine's state"))
    rows.append(Row(f"time ratio {large:,} / {small:,}, archive index/topic/feed pages skipped",
                    partial_medians[large] / partial_medians[small], "x", note="diagnostic: what grows is those pages"))
    print_table(f"history (median of {args.runs} processes)", rows)
    write_results("history", rows, details)


if __name__ == "__main__":
    main()

"""The store on PostgreSQL: does a run cost the same on 1,000,000 stored papers as on 10,000, and
how does ``digest send --workers N`` share a batch of personal messages?

1. **History.** As ``bench/history.py`` does on SQLite: two stores, now PostgreSQL databases,
   filled through the store's own API (one 300-paper digest a day) with their archive pages
   built, then the same cycles on each, turn by turn (ABBA): a whole ``digest run`` process on a
   snapshot of 100 new papers, email to an aiosmtpd sink.  Target: the 1M/10k time ratio <= 1.1.
2. **Send.** One digest queued for ``--messages`` subscribers (personal links), sent by
   ``digest send --workers W`` for W = 1, 2, 4 (``[email] sent_by = "workers"``, one SMTP
   connection per worker) to a pool of aiosmtpd servers behind one port (bench/send.py's sink,
   ``--sink-processes``).  The sink counts what it received: every message once, none lost.
   The outbox rows are made pending again between the runs.

The cluster is tests/pgcluster.py's, with PostgreSQL's durable defaults (fsync on), in
``/tmp/digest-bench-pg`` (short enough for its socket), kept with its filled databases while the
generator is unchanged (``--fresh`` rebuilds them).  Prints tables and writes
``bench/results/pg.json``.

    .venv/bin/python bench/pg.py [--runs 11] [--sizes 10000 1000000] [--messages 100000] [--sink-processes 2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import (
    DIGEST,
    PRODUCT_PYTHON,
    REPO,
    WORK,
    Row,
    Sample,
    SmtpSink,
    copy_tree,
    digest_config,
    digest_env,
    fresh_dir,
    install_product,
    print_table,
    write_results,
)
from history import GENERATOR, alternating_turns, fill, run_hundred_new

sys.path.insert(0, str(REPO))
from tests import pgcluster  # noqa: E402  (the repository's own test helper)

CLUSTER = Path("/tmp/digest-bench-pg")
SECRET = "bench-secret-0123456789abcdef"


def cluster() -> pgcluster.Cluster:
    """The bench's cluster, started (made the first time)."""
    binaries = pgcluster.bindir()
    if binaries is None:
        raise SystemExit("PostgreSQL is not installed (apt-get install postgresql)")
    server = pgcluster.Cluster(CLUSTER, binaries, settings=("shared_buffers=256MB",))
    server.start()
    return server


def admin(server: pgcluster.Cluster, *statements: str) -> None:
    """Run statements on the cluster's ``postgres`` database (CREATE/DROP DATABASE)."""
    import psycopg

    with psycopg.connect(server.url, autocommit=True) as db:
        for statement in statements:
            db.execute(statement)  # type: ignore[arg-type]


def filled(server: pgcluster.Cluster, papers: int, fresh: bool) -> tuple[str, Path, float | None]:
    """The database ``filled_N`` and its archive folder (built unless a matching one is kept)."""
    from digest.store import SeenStore

    name, folder = f"filled_{papers}", WORK / "pg" / f"filled-{papers}"
    stamp = folder / "marker.json"
    marker = {"generator": GENERATOR, "papers": papers}
    if not fresh and stamp.exists() and json.loads(stamp.read_text()) == marker:
        return name, folder, None
    fresh_dir(folder)
    admin(server, f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}")
    print(f"filling a PostgreSQL store with {papers:,} papers ...", flush=True)
    url = server.database_url(name)
    seconds = fill(folder, papers, opened=lambda: SeenStore.connect(url))
    stamp.write_text(json.dumps(marker))
    return name, folder, seconds


def pg_config(folder: Path, url: str, **kwargs: object) -> Path:
    """bench/_common.py's config for ``folder``, its store on PostgreSQL at ``url``."""
    path = digest_config(folder, **kwargs)  # type: ignore[arg-type]
    path.write_text(path.read_text(encoding="utf-8").replace("[store]\n", f'[store]\nurl = "{url}"\n', 1), encoding="utf-8")
    return path


def history(server: pgcluster.Cluster, sizes: tuple[int, int], runs: int, fresh: bool) -> tuple[list[Row], dict[str, object]]:
    """Part 1: the 100-new cycles on both stores; the rows and details."""
    env = digest_env()
    details: dict[str, object] = {"runs": runs}
    samples: dict[int, list[Sample]] = {size: [] for size in sizes}
    with SmtpSink() as sink:
        stores = {}
        for size in sizes:
            name, base, fill_seconds = filled(server, size, fresh)
            live = f"live_{size}"
            admin(server, f"DROP DATABASE IF EXISTS {live}", f"CREATE DATABASE {live} TEMPLATE {name}")
            folder = WORK / "pg" / f"live-{size}"
            copy_tree(base, folder)
            inbox = fresh_dir(folder / "inbox")
            stores[size] = (inbox, pg_config(folder, server.database_url(live), inbox=inbox, smtp_port=sink.port), fill_seconds)
        for run, size, config, day in alternating_turns(stores, runs):  # the first run warms the caches, untimed
            sample = run_hundred_new([DIGEST], size, config, day, env)
            if run and run % 2:  # (every other run, as history.py's timed ones)
                samples[size].append(sample)
    rows: list[Row] = []
    medians = {}
    for size, (_, _, fill_seconds) in stores.items():
        medians[size] = statistics.median(s.seconds for s in samples[size])
        details[str(size)] = {
            "seconds": [round(s.seconds, 4) for s in samples[size]],
            "peak_mb": [round(s.peak_mb, 1) for s in samples[size]],
            "fill_seconds": round(fill_seconds, 1) if fill_seconds is not None else "kept from an earlier run",
        }
        rows.append(Row(f"PostgreSQL: 100 new on {size:,} stored, wall", medians[size], "s"))
        rows.append(Row(f"PostgreSQL: 100 new on {size:,} stored, peak RSS", statistics.median(s.peak_mb for s in samples[size]), "MB"))
    small, large = sizes
    rows.append(Row(f"PostgreSQL: time ratio {large:,} / {small:,}", medians[large] / medians[small], "x", 1.1))
    paired = statistics.median(b.seconds / a.seconds for a, b in zip(samples[small], samples[large]))
    rows.append(Row(f"PostgreSQL: time ratio {large:,} / {small:,}, median of the back-to-back pairs", paired, "x",
                    note="diagnostic: each pair shares the machine's state"))
    return rows, details


def queue_messages(server: pgcluster.Cluster, folder: Path, messages: int, port: int) -> tuple[Path, str]:
    """A database with one digest queued for ``messages`` subscribers, and a config sending it by workers."""
    from digest.models import Digest, DigestCounts, Paper, TopicGroup
    from digest.store import SeenStore
    from history import CODES, abstract, arxiv_id, title

    name = f"send_{messages}"
    admin(server, f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}")
    url = server.database_url(name)
    papers = [Paper(title=title(i), abstract=abstract(i), arxiv_id=arxiv_id(i), url=f"https://arxiv.org/abs/{arxiv_id(i)}") for i in range(60)]
    groups = tuple(TopicGroup(code, code, tuple(papers[n::len(CODES)])) for n, code in enumerate(CODES) if papers[n::len(CODES)])
    readers = [f"reader{n}@example.org" for n in range(messages)]
    stamp = "2030-01-01T07:00:00+00:00"
    with SeenStore.connect(url) as store:
        with store.transaction() as db:
            db.executemany(
                "INSERT INTO subscribers (address, status, topics, created_at, confirmed_at, updated_at, source)"
                " VALUES (?, 'active', '[]', ?, ?, ?, 'bench')",
                ((address, stamp, stamp, stamp) for address in readers),
            )
        now = dt.datetime(2030, 1, 1, 7, tzinfo=dt.timezone.utc)
        store.commit(Digest(now.date(), groups, DigestCounts(60, 60, 0, 0)), store.diff(papers),
                     channels=[("email", a) for a in readers], now=now)
    fresh_dir(folder)
    config = folder / "digest.toml"
    config.write_text(
        f'[store]\nurl = "{url}"\n\n[archive]\ndir = "archive"\nsite_url = "https://papers.example.org"\n\n'
        f'[email]\nenabled = true\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\nconnections = 1\n'
        'sent_by = "workers"\nfrom = "Paper digest <digest@example.org>"\n',
        encoding="utf-8",
    )
    return config, url


def send(server: pgcluster.Cluster, messages: int, sink_processes: int, workers: tuple[int, ...]) -> tuple[list[Row], dict[str, object]]:
    """Part 2: the same queued batch sent by 1, 2, 4 workers; the rows and details."""
    import psycopg

    from send import SINK, free_port

    env = {**digest_env(), "DIGEST_SECRET": SECRET}
    port = free_port()
    config, url = queue_messages(server, WORK / "pg" / "send", messages, port)
    rows: list[Row] = []
    details: dict[str, object] = {"messages": messages, "sink_processes": sink_processes}
    rates: dict[int, float] = {}
    for count in workers:
        with psycopg.connect(url, autocommit=True) as db:
            db.execute("UPDATE deliveries SET state = 'pending', attempts = 0, last_error = NULL, next_attempt_at = NULL,"
                       " claimed_by = NULL, claimed_until = NULL")
        sink = subprocess.Popen([sys.executable, "-c", SINK, str(sink_processes), str(port)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert sink.stdin is not None and sink.stdout is not None and sink.stdout.readline().strip() == "ready"
        load = os.getloadavg()[0]
        started = time.perf_counter()
        result = subprocess.run([str(DIGEST), "send", "--config", str(config), "--workers", str(count), "--json"],
                                env=env, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - started
        sink.stdin.close()
        received = int(sink.stdout.readline().split()[0])
        sink.wait(30)
        if result.returncode != 0:
            raise RuntimeError(f"digest send --workers {count} failed: {result.stderr[-2000:]}")
        summary = json.loads(result.stdout)
        assert summary["sent"] == received == messages, (summary, received)  # each message once, none lost
        rates[count] = messages / seconds
        details[f"workers_{count}"] = {"seconds": round(seconds, 2), "received": received, "load_before": load, **summary}
        rows.append(Row(f"send {messages:,} personal messages, {count} worker(s)", rates[count], "msg/s", better="higher"))
    for count in workers[1:]:
        rows.append(Row(f"send speed-up, {count} workers / 1", rates[count] / rates[workers[0]], "x", better="higher",
                        note=f"{os.cpu_count()} cores shared by the workers, {sink_processes} sink processes and PostgreSQL"))
    return rows, details


def main() -> None:
    """Both parts; print and save the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=11, help="timed processes per store")
    parser.add_argument("--sizes", type=int, nargs=2, default=(10_000, 1_000_000), metavar=("SMALL", "LARGE"))
    parser.add_argument("--messages", type=int, default=100_000, help="personal messages sent in part 2")
    parser.add_argument("--sink-processes", type=int, default=2, help="aiosmtpd processes behind the sink's port")
    parser.add_argument("--skip", choices=["history", "send"], help="leave one part out")
    parser.add_argument("--fresh", action="store_true", help="rebuild the filled stores")
    args = parser.parse_args()
    install_product()
    has_driver = subprocess.run([str(PRODUCT_PYTHON), "-c", "import psycopg"], capture_output=True, check=False).returncode == 0
    if not has_driver:  # the timed digest needs the postgresql extra
        subprocess.run([str(PRODUCT_PYTHON), "-m", "pip", "--disable-pip-version-check", "--quiet", "install", "-e",
                        f"{REPO}[postgresql]"], check=True)
    server = cluster()
    rows: list[Row] = []
    details: dict[str, object] = {}
    try:
        if args.skip != "history":
            part, details["history"] = history(server, tuple(args.sizes), args.runs, args.fresh)  # type: ignore[arg-type]
            rows += part
            print_table(f"PostgreSQL history (median of {args.runs} processes)", part)
        if args.skip != "send":
            part, details["send"] = send(server, args.messages, args.sink_processes, (1, 2, 4))
            rows += part
            print_table("PostgreSQL send", part)
    finally:
        server.stop()
    write_results("pg", rows, details)


if __name__ == "__main__":
    main()

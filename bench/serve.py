"""Benchmark: how fast ``digest serve`` answers the RFC 8058 one-click POST.

Starts the real ``digest serve`` (uvicorn, one process) on 127.0.0.1 over a store of
``--subscribers`` active subscribers, then POSTs ``List-Unsubscribe=One-Click`` to the tokenised
unsubscribe URL of ``--requests`` of them, one after another over one keep-alive connection (as a
mailbox provider's client would), and reports the median and 95th percentile latency seen by the
client.  Each POST really unsubscribes someone (a store write).  Target: median <= 20 ms.

    .venv/bin/python bench/serve.py [--subscribers 10000] [--requests 500]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "serve.json"
SECRET = "bench-secret-0123456789abcdef"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    """Run the benchmark, print and save its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    import httpx

    from digest.store import SeenStore
    from digest.tokens import Signer

    signer = Signer([SECRET.encode()])
    with tempfile.TemporaryDirectory(prefix="digest-bench-serve-") as tmp:
        folder = Path(tmp)
        port = free_port()
        (folder / "digest.toml").write_text(f'[archive]\nsite_url = "http://127.0.0.1:{port}"\n', encoding="utf-8")
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        with SeenStore.open(folder / "var" / "digest.sqlite3") as store, store.transaction() as db:
            db.executemany(
                "INSERT INTO subscribers (id, address, status, created_at, confirmed_at, updated_at, source)"
                " VALUES (?, ?, 'active', ?, ?, ?, 'bench')",
                ((n, f"reader{n}@example.org", now, now, now) for n in range(1, args.subscribers + 1)),
            )
        env = {k: v for k, v in os.environ.items() if k != "DIGEST_CONFIG"} | {"DIGEST_SECRET": SECRET}
        server = subprocess.Popen(
            [sys.executable, "-m", "digest", "serve", "--config", str(folder / "digest.toml"), "--port", str(port)],
            cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(f"{base}/subscribe", timeout=1)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            load_before = os.getloadavg()[0]
            latencies: list[float] = []
            step = max(1, args.subscribers // args.requests)
            with httpx.Client() as client:
                for n in range(1, args.subscribers + 1, step)[: args.requests]:
                    url = f"{base}/unsubscribe?t={signer.subscriber_token('unsubscribe', n, 1)}"
                    started = time.perf_counter()
                    answer = client.post(url, content=b"List-Unsubscribe=One-Click",
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
                    latencies.append((time.perf_counter() - started) * 1000)
                    assert answer.status_code == 200, answer.text
            load_after = os.getloadavg()[0]
        finally:
            server.terminate()
            server.wait(30)
        with SeenStore.open(folder / "var" / "digest.sqlite3", readonly=True) as store:
            left = store.db.execute("SELECT COUNT(*) FROM subscribers WHERE status = 'unsubscribed'").fetchone()[0]
    latencies.sort()
    figures = {
        "subscribers": args.subscribers,
        "requests": len(latencies),
        "unsubscribed_in_store": left,
        "median_ms": round(statistics.median(latencies), 2),
        "p95_ms": round(latencies[int(len(latencies) * 0.95) - 1], 2),
        "max_ms": round(latencies[-1], 2),
        "load_average_1min_before_after": [round(load_before, 2), round(load_after, 2)],
        "python": sys.version.split()[0],
        "target": {"median_ms": 20},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(
        f"one-click POST over {figures['requests']} requests ({args.subscribers} subscribers): median {figures['median_ms']} ms, "
        f"p95 {figures['p95_ms']} ms, max {figures['max_ms']} ms; {left} unsubscribed in the store"
    )
    print(f"written to {RESULTS.relative_to(REPO)}")
    sys.exit(0 if figures["median_ms"] <= 20 and left == len(latencies) else 1)


if __name__ == "__main__":
    main()

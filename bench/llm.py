"""[llm]: what the model's help costs a run of 300 new papers, and that a hanging server adds at
most ``[llm] timeout`` to it.  Whole ``digest run`` processes against a chat-completions server
on 127.0.0.1 that answers at once (a perfect model: the figures are digest's own overhead) or
never (it holds every request open).

Prints a table and writes ``bench/results/llm.json``.
Targets: the first run makes ceil(300 / batch_size) requests, the second none; a hanging
server adds at most ``timeout`` + 0.5 s to the run (median wall time, against [llm] off).
"""

from __future__ import annotations

import argparse
import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from _common import (
    DIGEST,
    WORK,
    Row,
    digest_config,
    digest_env,
    fresh_dir,
    install_product,
    measure,
    print_table,
    snapshot_text,
    write_results,
)

PAPERS = 300
BATCH = 10
HANG_TIMEOUT = 3.0


class ChatServer:
    """``POST /v1/chat/completions`` on 127.0.0.1: answers every paper at once, or (``hang``) never."""

    def __init__(self) -> None:
        self.hang = False
        self.requests: list[dict[str, Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.requests.append(body)
                if owner.hang:
                    time.sleep(600)  # the client gives up first; the daemon thread dies with the server
                    return
                papers = json.loads(body["messages"][-1]["content"])["papers"]
                items = [{"id": p["id"], "summary": "Shows " + " ".join(p["title"].split()[:8]) + "."} for p in papers]
                for item, paper in zip(items, papers):
                    if paper.get("choose_topic"):
                        item["topic"] = "other"
                content = json.dumps({"papers": items})
                data = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"


def prepare(folder: Path, llm: str) -> Path:
    """A fresh folder: an inbox with one 300-paper snapshot, and a config with ``llm`` appended."""
    fresh_dir(folder)
    inbox = fresh_dir(folder / "inbox")
    (inbox / "day.txt").write_text(snapshot_text(range(PAPERS)), encoding="utf-8")
    config = digest_config(folder, inbox=inbox)
    config.write_text(config.read_text(encoding="utf-8") + "\n" + llm, encoding="utf-8")
    return config


def main() -> None:
    """Time runs with [llm] off, on (a perfect model) and on (a hanging server); count requests and tokens."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    install_product()
    env = digest_env()
    server = ChatServer()
    folder = WORK / "llm"
    on = f'[llm]\nenabled = true\nbase_url = "{server.base_url}"\nmodel = "bench"\nbatch_size = {BATCH}\nmax_concurrency = 4\n'
    config = folder / "digest.toml"
    run = [DIGEST, "run", "--config", config, "--date", "2025-03-14"]

    off = measure(run, runs=runs, before=lambda: prepare(folder, ""), env=env)

    server.requests.clear()
    with_model = measure(run, runs=runs, before=lambda: prepare(folder, on), env=env)
    first_requests = len(server.requests) / runs
    sent = server.requests[: math.ceil(PAPERS / BATCH)]
    prompt_chars = sum(len(m["content"]) for body in sent for m in body["messages"])
    server.requests.clear()
    again = folder / "inbox" / "again.txt"  # the same papers in another file: all seen
    listing = snapshot_text(range(PAPERS))
    again.write_text(listing.replace("your email inbox!", "your email inbox once a day!"), encoding="utf-8")
    second = measure([DIGEST, "run", "--config", config, "--date", "2025-03-15"], runs=1, env=env)
    second_requests = len(server.requests)

    server.hang = True
    hang_on = on.replace("max_concurrency = 4", f"max_concurrency = 4\ntimeout = {HANG_TIMEOUT}")
    hanging = measure(run, runs=runs, before=lambda: prepare(folder, hang_on), env=env)
    warned = [line for line in hanging.samples[0].stderr.splitlines() if line.startswith("warning: llm:")]
    server.httpd.shutdown()

    added = hanging.seconds - off.seconds
    rows = [
        Row(f"run of {PAPERS} new papers, [llm] off, wall", off.seconds, "s"),
        Row(f"the same, [llm] on (instant model, batch {BATCH}), wall", with_model.seconds, "s",
            note="digest's own overhead: prompts, parsing, storing"),
        Row("requests, first run", first_requests, "", float(math.ceil(PAPERS / BATCH))),
        Row("requests, second run (same papers)", second_requests, "", 0.0),
        Row("prompt tokens per run (chars / 4)", prompt_chars / 4, "tok", note="system prompt + titles + abstracts"),
        Row(f"run with a hanging server, timeout {HANG_TIMEOUT:g} s, wall", hanging.seconds, "s"),
        Row("time a hanging server adds", added, "s", HANG_TIMEOUT + 0.5, note="one warning line" if len(warned) == 1 else "WARNINGS: %d" % len(warned)),
    ]
    print_table("llm", rows)
    write_results("llm", rows, {"papers": PAPERS, "batch_size": BATCH, "prompt_chars": prompt_chars, "warning": warned})


if __name__ == "__main__":
    main()

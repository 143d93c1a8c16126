"""Helpers shared by the bench scripts: timed child processes, generated feeds and snapshots,
a 127.0.0.1 feed server, an SMTP sink and the results files.

Every timing is a whole process (interpreter startup included), measured from outside: wall
time around ``subprocess.Popen`` and the process's own peak RSS from ``/usr/bin/time``.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"
WORK = BENCH / ".work"
# digest as a user installs it: its own venv under bench/.product/, without the test extras
# (pytest brings pygments, which httpx then imports for its command line: ~7 ms of every run).
# Editable, so it runs this checkout's code; made by install_product().
PRODUCT = BENCH / ".product"
DIGEST = PRODUCT / "bin" / "digest"
PRODUCT_PYTHON = PRODUCT / "bin" / "python"


def install_product() -> None:
    """Make (or bring up to date with ``pyproject.toml``) the venv whose ``digest`` the benches time."""
    stamp = PRODUCT / "pyproject.sha256"
    wanted = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()
    if DIGEST.exists() and stamp.exists() and stamp.read_text() == wanted:
        return
    print("installing digest (without the test extras) into bench/.product/ ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(PRODUCT)], check=True)
    pip = [str(PRODUCT_PYTHON), "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run([*pip, "install", "-e", str(REPO)], check=True)
    stamp.write_text(wanted)

LOREM = (
    "This work revisits a classical question from a fresh angle. We describe a simple method, prove "
    "that it is sound under mild assumptions, and report careful experiments on public data. The "
    "results are consistent across settings and the code is released. We discuss limitations, open "
    "questions and directions for future work, and relate our findings to earlier studies in the field. "
)
# One phrase per topic of the shipped taxonomy (and one for "Other"), so digests have several groups.
TOPICS = (
    "linear attention", "speculative decoding", "4-bit quantization", "a scaling law", "LoRA fine-tuning",
    "in-context learning", "image segmentation", "vision-language models", "text-to-image diffusion",
    "speech recognition", "time series forecasting", "a puzzle of coins",
)


def abstract(i: int, chars: int = 1200) -> str:
    """A deterministic abstract of about ``chars`` characters for paper ``i``."""
    head = f"Paper {i} is about {TOPICS[i % len(TOPICS)]}, with <RET> tokens and 256*256 images. "
    body = (LOREM * (chars // len(LOREM) + 2))[: chars - len(head)]
    return head + body.rsplit(" ", 1)[0] + "."


def arxiv_id(i: int) -> str:
    """A unique new-style arXiv id for item ``i`` (up to 10**5 per month, months from 2001)."""
    month, number = divmod(i, 100_000)
    year, mon = divmod(month, 12)
    return f"{1 + year:02d}{mon + 1:02d}.{number:05d}"


def title(i: int) -> str:
    """A distinct title for paper ``i``."""
    return f"On {TOPICS[i % len(TOPICS)]}: study number {i}"


def rss_feed(ids: Sequence[int]) -> bytes:
    """An RSS 2.0 feed shaped like arXiv's listings (rss.arxiv.org): per item a title, a link with
    the arXiv id, a ~1,200-character description, guid, category, date, authors and announce type."""
    stamp = email.utils.format_datetime(dt.datetime(2025, 3, 14, 0, 0, tzinfo=dt.timezone.utc))
    parts = [
        "<?xml version='1.0' encoding='UTF-8'?>\n"
        '<rss xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns:dc="http://purl.org/dc/elements/1.1/" version="2.0">'
        "<channel><title>cs.LG updates on arXiv.org</title>"
        "<link>http://127.0.0.1/cs.LG</link><description>Generated listing</description>"
        f"<lastBuildDate>{stamp}</lastBuildDate>\n"
    ]
    for i in ids:
        aid = arxiv_id(i)
        text = abstract(i).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        parts.append(
            f"<item><title>{title(i)}</title><link>https://arxiv.org/abs/{aid}</link>"
            f"<description>arXiv:{aid}v1 Announce Type: new \nAbstract: {text}</description>"
            f'<guid isPermaLink="false">oai:arXiv.org:{aid}v1</guid><category>cs.LG</category>'
            f"<pubDate>{stamp}</pubDate><arxiv:announce_type>new</arxiv:announce_type>"
            f"<dc:creator>Ada Lovelace, Alan Turing</dc:creator></item>\n"
        )
    parts.append("</channel></rss>\n")
    return "".join(parts).encode("utf-8")


SNAPSHOT_CHROME = ("new", "Get trending papers in your email inbox!", "Subscribe", "byAK and the research community", "Mar 14")


def snapshot_text(ids: Sequence[int]) -> str:
    """A snapshot file in the seed format: 5 chrome lines, then title / abstract paragraphs."""
    lines = [*SNAPSHOT_CHROME, ""]
    for i in ids:
        lines += [title(i), "", abstract(i), ""]
    return "\n".join(lines)


# --- running and timing child processes ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sample:
    """One timed process."""

    seconds: float
    peak_mb: float
    returncode: int
    stdout: str = ""
    stderr: str = ""


TIME = Path("/usr/bin/time")


def run_timed(cmd: Sequence[str | Path], *, cwd: Path | None = None, env: Mapping[str, str] | None = None) -> Sample:
    """Run one process; its wall time and its own peak RSS.

    The peak comes from ``/usr/bin/time`` (GNU time), which forks the command from its own small
    process: the kernel counts the RSS of the process a child was forked from in the child's peak,
    so ``os.wait4`` on a child of this (large) bench process would over-report.  Without GNU time,
    ``os.wait4`` is the fallback.
    """
    WORK.mkdir(parents=True, exist_ok=True)
    out_path, err_path, rss_path = (WORK / f".{name}-{os.getpid()}" for name in ("out", "err", "rss"))
    argv = [str(c) for c in cmd]
    if TIME.exists():
        argv = [str(TIME), "-f", "%M", "-o", str(rss_path), *argv]
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=dict(env) if env else None, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    peak_kb = float(usage.ru_maxrss)
    if TIME.exists():
        peak_kb = float(rss_path.read_text().split()[-1])
    return Sample(
        seconds,
        peak_kb / 1024,
        proc.returncode,
        out_path.read_text(errors="replace"),
        err_path.read_text(errors="replace"),
    )


@dataclass
class Measured:
    """The median of several timed runs of one command."""

    samples: list[Sample] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        """Median wall time."""
        return statistics.median(s.seconds for s in self.samples)

    @property
    def peak_mb(self) -> float:
        """Median peak RSS."""
        return statistics.median(s.peak_mb for s in self.samples)


def measure(
    cmd: Sequence[str | Path],
    *,
    runs: int,
    before: Callable[[], None] | None = None,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    check: Callable[[Sample], None] | None = None,
) -> Measured:
    """Run ``before`` (untimed) then ``cmd`` (timed), ``runs`` times; fail loudly on a bad exit."""
    result = Measured()
    for _ in range(runs):
        if before is not None:
            before()
        sample = run_timed(cmd, cwd=cwd, env=env)
        if sample.returncode != 0:
            raise RuntimeError(
                f"{' '.join(map(str, cmd))} exited {sample.returncode}\n{sample.stdout[-2000:]}\n{sample.stderr[-2000:]}"
            )
        if check is not None:
            check(sample)
        result.samples.append(sample)
    return result


def fresh_dir(path: Path) -> Path:
    """An empty folder at ``path``."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def copy_tree(source: Path, target: Path) -> None:
    """Replace ``target`` with a copy of ``source``, written out to the disk.

    Without the ``sync`` the copy's dirty pages (a 120 MB store) would be flushed by the timed
    run's first fsync, charging the copy to whichever tool fsyncs its state.
    """
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)
    os.sync()


# --- a feed server on 127.0.0.1 --------------------------------------------------------------


class FeedServer:
    """Serves ``bodies[path]`` with an ETag and Last-Modified; answers 304 to a matching validator."""

    def __init__(self) -> None:
        self.bodies: dict[str, bytes] = {}
        self.requests: list[tuple[str, int]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - the http.server name
                body = server.bodies.get(self.path)
                if body is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    server.requests.append((self.path, 404))
                    return
                etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
                modified = "Fri, 14 Mar 2025 00:00:00 GMT"
                if self.headers.get("If-None-Match") == etag or (
                    self.headers.get("If-None-Match") is None and self.headers.get("If-Modified-Since") == modified
                ):
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    server.requests.append((self.path, 304))
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", etag)
                self.send_header("Last-Modified", modified)
                self.end_headers()
                self.wfile.write(body)
                server.requests.append((self.path, 200))

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the http.server name
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        """The full URL of ``path``."""
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> FeedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class SmtpSink:
    """An aiosmtpd server on 127.0.0.1 that keeps the size and longest line of each message."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        sink = self
        self.messages: list[dict[str, int]] = []

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
                data: bytes = envelope.original_content or envelope.content
                lines = data.split(b"\r\n") if b"\r\n" in data else data.split(b"\n")
                sink.messages.append(
                    {"bytes": len(data), "longest_line": max((len(x) for x in lines), default=0),
                     "over_998": sum(1 for x in lines if len(x) > 998), "recipients": len(envelope.rcpt_tos)}
                )
                return "250 OK"

        self.controller = Controller(
            Handler(), hostname="127.0.0.1", port=_free_port(), server_kwargs={"data_size_limit": 1 << 30}
        )
        self.port = self.controller.port

    def __enter__(self) -> SmtpSink:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- digest configs --------------------------------------------------------------------------


def email_channel_available() -> bool:
    """True once the email channel has landed (``digest.deliver.email``)."""
    return (REPO / "digest" / "deliver" / "email.py").is_file()


def digest_config(
    folder: Path,
    *,
    feeds: Mapping[str, str] = {},
    inbox: Path | None = None,
    smtp_port: int | None = None,
    max_per_topic: int = 10,
) -> Path:
    """Write ``folder/digest.toml``: a store and archive in ``folder``, the given sources, email to the sink."""
    # Relative paths (to the config's folder), so that a copy of the folder is a copy of the state.
    lines = ['[store]\npath = "digest.sqlite3"\n']
    if inbox is not None:
        lines.append(f'[[sources]]\nname = "inbox"\nkind = "snapshots"\npath = "{inbox}"\n')
    for name, url in feeds.items():
        lines.append(f'[[sources]]\nname = "{name}"\nkind = "feed"\nurl = "{url}"\n')
    lines.append('[fetch]\ntimeout = 300\nmax_bytes = 500_000_000\ncontact = "bench@example.org"\n')
    lines.append('[archive]\ndir = "archive"\n')
    email = [f"[email]\nmax_per_topic = {max_per_topic}"]
    if smtp_port is not None and email_channel_available():
        email += [
            "enabled = true", 'host = "127.0.0.1"', f"port = {smtp_port}", 'security = "none"',
            'from = "Paper digest <digest@example.org>"',
            '\n[[email.recipients]]\naddress = "reader@example.org"\ntopics = []',
        ]
    lines.append("\n".join(email) + "\n")
    path = folder / "digest.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def digest_env() -> dict[str, str]:
    """The environment for digest processes: no stray config."""
    env = {k: v for k, v in os.environ.items() if k != "DIGEST_CONFIG"}
    env["PYTHONDONTWRITEBYTECODE"] = "0"
    return env


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    """One line of a results table: a figure and, when there is one, its target."""

    metric: str
    value: float
    unit: str
    target: float | None = None
    better: str = "lower"  # or "higher"
    note: str = ""

    @property
    def met(self) -> bool | None:
        """Whether the figure meets its target (None without a target)."""
        if self.target is None:
            return None
        return self.value <= self.target if self.better == "lower" else self.value >= self.target


def print_table(title: str, rows: Sequence[Row]) -> None:
    """The rows as an aligned table on stdout."""
    print(f"\n== {title}")
    width = max(len(r.metric) for r in rows)
    for r in rows:
        target = "" if r.target is None else f"{'<=' if r.better == 'lower' else '>='} {_fmt(r.target)} {r.unit}"
        mark = {True: "ok", False: "NOT MET", None: ""}[r.met]
        print(f"  {r.metric:<{width}}  {_fmt(r.value):>10} {r.unit:<6} {target:<18} {mark:<8} {r.note}")


def _fmt(value: float) -> str:
    if value == int(value) and abs(value) >= 100:
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"


def write_results(name: str, rows: Sequence[Row], extra: Mapping[str, Any] | None = None) -> Path:
    """Save ``bench/results/<name>.json``: the summary rows, details and the machine."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = {
        "benchmark": name,
        "summary": [
            {"metric": r.metric, "value": round(r.value, 6), "unit": r.unit, "target": r.target,
             "better": r.better, "met": r.met, "note": r.note}
            for r in rows
        ],
        **(extra or {}),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path


def report(title: str, name: str, rows: Sequence[Row], extra: Mapping[str, Any] | None = None) -> None:
    """Print the rows as a table, save them as ``bench/results/<name>.json`` and say where."""
    print_table(title, rows)
    path = write_results(name, rows, extra)
    print(f"wrote {path.relative_to(REPO)}")

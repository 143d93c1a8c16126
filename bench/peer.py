"""digest against its peer, rss2email 3.14 in digest mode, on the same generated feeds.

rss2email is installed from the package registry into its own venv under ``bench/.peer/``.
Both tools read the same RSS 2.0 feed (arXiv-like items: title, link with an arXiv id, a
~1,200-character description) from a server on 127.0.0.1 and send to the same aiosmtpd sink on
127.0.0.1.  Every timing is the median of several whole processes, each process's own peak RSS
from ``/usr/bin/time``.  Scenarios:

- ``a1k`` / ``a10k``: first run, 1,000 / 10,000 new items;
- ``b``: 10,000 already seen, the feed carries them plus 100 new;
- ``c``: 50,000 already seen, the feed carries only 100 new;
- ``d``: nothing changed: the server answers 304.

The state a scenario starts from is prepared once by the tool itself (untimed: rss2email with
``--no-send``, digest on an earlier ``--date``) and copied back before each timed run.  The two
tools take turns run by run (ABBA), so that the machine's drift during a scenario falls on both.

Prints a table with digest/rss2email ratios and writes ``bench/results/peer.json``.
"""

from __future__ import annotations

import argparse
import configparser
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from _common import (
    BENCH,
    DIGEST,
    install_product,
    WORK,
    FeedServer,
    Measured,
    Row,
    Sample,
    SmtpSink,
    copy_tree,
    digest_config,
    digest_env,
    email_channel_available,
    fresh_dir,
    measure,
    print_table,
    rss_feed,
    run_timed,
    write_results,
)

PEER = BENCH / ".peer"
PEER_VENV = PEER / "venv"
R2E = PEER_VENV / "bin" / "r2e"
FEED_PATH = "/rss/cs.LG"
PREP_DATE = "2025-03-13"
RUN_DATE = "2025-03-14"


def install_peer() -> None:
    """rss2email 3.14 in ``bench/.peer/venv``, from the package registry."""
    if R2E.exists():
        return
    PEER.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    subprocess.run(
        [str(PEER_VENV / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", "rss2email==3.14"],
        check=True,
    )


@dataclass(frozen=True, slots=True)
class Scenario:
    """A feed to run on, and the feed a state was prepared with (None: a first run)."""

    name: str
    label: str
    feed: range | tuple[range, ...]
    prepared_with: tuple[range, ...] = ()  # feeds run, in order, to build the starting state
    expect_new: int = 0


def _ids(spec: range | tuple[range, ...]) -> list[int]:
    ranges = spec if isinstance(spec, tuple) else (spec,)
    return [i for r in ranges for i in r]


SCENARIOS = (
    Scenario("a1k", "(a) first run, 1,000 new items", range(1_000), expect_new=1_000),
    Scenario("a10k", "(a) first run, 10,000 new items", range(10_000), expect_new=10_000),
    Scenario("b", "(b) 100 new in a 10,100-item feed", range(10_100), (range(10_000),), expect_new=100),
    Scenario("c", "(c) 100 new on 50,000 seen", range(50_000, 50_100), (range(50_000),), expect_new=100),
    Scenario("d", "(d) nothing changed (304)", range(10_100), (range(10_000), range(10_100)), expect_new=0),
)


class Tool:
    """How to prepare a state folder and run one cycle of a tool."""

    name = ""

    def __init__(self, server: FeedServer, sink: SmtpSink, root: Path) -> None:
        self.server, self.sink, self.root = server, sink, root

    def setup(self, folder: Path) -> None:
        """Create an empty state in ``folder``."""
        raise NotImplementedError

    def prepare(self, folder: Path) -> None:
        """One untimed cycle that only builds state."""
        raise NotImplementedError

    def command(self, folder: Path) -> list[str | Path]:
        """The timed cycle."""
        raise NotImplementedError

    env: dict[str, str] | None = None


class Rss2email(Tool):
    """rss2email 3.14, ``digest = True``, SMTP to the sink."""

    name = "rss2email"

    def _base(self, folder: Path) -> list[str | Path]:
        return [R2E, "-c", folder / "r2e.cfg", "-d", folder / "r2e.json"]

    def setup(self, folder: Path) -> None:
        subprocess.run([*self._base(folder), "new", "reader@example.org"], check=True, capture_output=True)
        subprocess.run([*self._base(folder), "add", "cslg", self.server.url(FEED_PATH)], check=True, capture_output=True)
        config = configparser.RawConfigParser()
        config.read(folder / "r2e.cfg", encoding="utf-8")
        config["DEFAULT"].update(
            {
                "from": "digest@example.org",
                "digest": "True",
                "email-protocol": "smtp",
                "smtp-server": "127.0.0.1",
                "smtp-port": str(self.sink.port),
                "smtp-auth": "False",
                "smtp-ssl": "False",
                "verbose": "warning",
            }
        )
        with open(folder / "r2e.cfg", "w", encoding="utf-8") as out:
            config.write(out)

    def prepare(self, folder: Path) -> None:
        sample = run_timed([*self._base(folder), "run", "--no-send"])
        if sample.returncode:
            raise RuntimeError(f"rss2email prepare failed: {sample.stderr[-2000:]}")

    def command(self, folder: Path) -> list[str | Path]:
        return [*self._base(folder), "run"]


class Digest(Tool):
    """digest, ``[email] enabled = true`` to the sink (once the email channel has landed)."""

    name = "digest"
    env = digest_env()

    def setup(self, folder: Path) -> None:
        digest_config(folder, feeds={"cs.LG": self.server.url(FEED_PATH)}, smtp_port=self.sink.port)

    def prepare(self, folder: Path) -> None:
        sample = run_timed([DIGEST, "run", "--config", folder / "digest.toml", "--date", PREP_DATE], env=self.env)
        if sample.returncode:
            raise RuntimeError(f"digest prepare failed: {sample.stdout[-2000:]} {sample.stderr[-2000:]}")

    def command(self, folder: Path) -> list[str | Path]:
        return [DIGEST, "run", "--config", folder / "digest.toml", "--date", RUN_DATE]


def prepare_scenario(tool: Tool, scenario: Scenario) -> tuple[Path, Path]:
    """Prepare the scenario's state once (untimed); its folder and the folder each timed run gets a copy in."""
    base = fresh_dir(tool.root / tool.name / scenario.name / "prepared")
    tool.setup(base)
    for feed in scenario.prepared_with:
        tool.server.bodies[FEED_PATH] = rss_feed(feed)
        tool.prepare(base)
    return base, tool.root / tool.name / scenario.name / "live"


@dataclass
class Timed:
    """A tool's timed runs of one scenario, with the mails and HTTP statuses they caused."""

    result: Measured = field(default_factory=Measured)
    mails: list[dict[str, int]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)


def run_scenario(tools: Sequence[Tool], scenario: Scenario, runs: int) -> dict[str, Timed]:
    """Prepare each tool's state, then time ``runs`` cycles of each from a copy of it.

    The tools take turns run by run, in either order (ABBA), so that the machine's drift over
    the minutes a scenario takes falls on both alike and the ratio of the medians holds.
    """
    states = {tool.name: prepare_scenario(tool, scenario) for tool in tools}
    server, sink = tools[0].server, tools[0].sink
    server.bodies[FEED_PATH] = rss_feed(_ids(scenario.feed))
    timed = {tool.name: Timed() for tool in tools}
    for run in range(runs):
        for tool in tools if run % 4 in (0, 3) else tuple(reversed(tools)):
            base, live = states[tool.name]
            first_message, first_request = len(sink.messages), len(server.requests)
            one = measure(tool.command(live), runs=1, before=lambda: copy_tree(base, live), env=tool.env)
            timed[tool.name].result.samples.extend(one.samples)
            timed[tool.name].mails.extend(sink.messages[first_message:])
            timed[tool.name].statuses.extend(status for _, status in server.requests[first_request:])
    return timed


def main() -> None:
    """Run every scenario with both tools; print and save the figures and ratios."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="timed processes per scenario and tool (median)")
    parser.add_argument("--only", nargs="*", help="scenario names to run (a1k a10k b c d)")
    args = parser.parse_args()
    install_peer()
    install_product()
    root = fresh_dir(Path(WORK) / "peer")
    email_on = email_channel_available()
    scenarios = [s for s in SCENARIOS if not args.only or s.name in args.only]
    figures: dict[str, dict[str, object]] = {}
    rows: list[Row] = []
    targets: dict[str, tuple[float | None, float | None]] = {
        "a10k": (0.25, 0.33), "b": (0.5, None), "c": (0.5, None), "d": (1.0, None)
    }
    with FeedServer() as server, SmtpSink() as sink:
        tools: Sequence[Tool] = (Rss2email(server, sink, root), Digest(server, sink, root))
        for scenario in scenarios:
            measured: dict[str, Measured] = {}
            figures[scenario.name] = {"label": scenario.label}
            print(f"{scenario.label} ...", flush=True)
            timed = run_scenario(tools, scenario, args.runs)
            for tool in tools:
                result, mails, statuses = timed[tool.name].result, timed[tool.name].mails, timed[tool.name].statuses
                measured[tool.name] = result
                figures[scenario.name][tool.name] = {
                    "seconds": [round(s.seconds, 4) for s in result.samples],
                    "peak_mb": [round(s.peak_mb, 1) for s in result.samples],
                    "median_seconds": round(result.seconds, 4),
                    "median_peak_mb": round(result.peak_mb, 1),
                    "mails_per_run": len(mails) / len(result.samples),
                    "mail_bytes": max((m["bytes"] for m in mails), default=0),
                    "longest_mail_line": max((m["longest_line"] for m in mails), default=0),
                    "http_statuses": sorted(set(statuses)),
                }
            ours, theirs = measured["digest"], measured["rss2email"]
            time_ratio, rss_ratio = ours.seconds / theirs.seconds, ours.peak_mb / theirs.peak_mb
            figures[scenario.name]["time_ratio"] = round(time_ratio, 4)
            figures[scenario.name]["rss_ratio"] = round(rss_ratio, 4)
            time_target, rss_target = targets.get(scenario.name, (None, None))
            note = f"digest {ours.seconds:.3f} s / rss2email {theirs.seconds:.3f} s"
            rows.append(Row(f"{scenario.label}: time ratio", time_ratio, "x", time_target, note=note))
            note = f"digest {ours.peak_mb:.0f} MB / rss2email {theirs.peak_mb:.0f} MB"
            rows.append(Row(f"{scenario.label}: peak RSS ratio", rss_ratio, "x", rss_target, note=note))
    per_item = {}
    if "a10k" in figures and "a1k" in figures:
        for tool in ("digest", "rss2email"):
            a1, a10 = figures["a1k"][tool], figures["a10k"][tool]
            assert isinstance(a1, dict) and isinstance(a10, dict)
            per_item[tool] = round((a10["median_seconds"] - a1["median_seconds"]) / 9_000 * 1000, 4)
            rows.append(Row(f"{tool}: ms per new item (a10k - a1k)", per_item[tool], "ms"))
    email_note = "email channel on (sink)" if email_on else "digest ran with email disabled: the email channel has not landed"
    print_table(f"digest vs rss2email 3.14, median of {args.runs} processes; {email_note}", rows)
    write_results(
        "peer",
        rows,
        {"runs": args.runs, "digest_email": email_on, "note": email_note, "scenarios": figures, "ms_per_new_item": per_item},
    )


if __name__ == "__main__":
    main()

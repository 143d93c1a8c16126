"""Run every benchmark in ``bench/`` (``make bench``), then print one summary of ``bench/results/*.json``.

A benchmark is any ``bench/*.py`` except this file, helpers (names starting with ``_``) and
``BY_HAND`` (scripts needing what digest does not install); each runs in its own process with
this interpreter, from ``bench/``.  A failing benchmark is reported
and the others still run; the exit code is 1 if any failed.  Arguments after ``--`` are ignored;
``--only NAME ...`` runs some of them, ``--summary`` only prints the summary.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
FIRST = ("startup", "feeds", "mail", "history", "peer")  # cheap ones first; the rest alphabetically
BY_HAND = ("topics_encoder",)  # torch and a model wheel, no dependencies of digest: see its docstring


def benchmarks() -> list[Path]:
    """The benchmark scripts, in the order they run."""
    found = {
        p.stem: p
        for p in BENCH.glob("*.py")
        if p.name != Path(__file__).name and not p.name.startswith("_") and p.stem not in BY_HAND
    }
    return [found[n] for n in FIRST if n in found] + [found[n] for n in sorted(found) if n not in FIRST]


def summary_rows(data: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(metric, value, target, verdict) rows of one results file.

    Files with a ``summary`` list (ours) give their rows; other files give their top-level
    numbers, and ``targets`` / ``target_*`` entries where they name one.
    """
    if isinstance(data.get("summary"), list):
        rows = []
        for r in data["summary"]:
            target = "" if r.get("target") is None else f"{'<=' if r.get('better', 'lower') == 'lower' else '>='} {r['target']}"
            verdict = {True: "ok", False: "NOT MET", None: ""}[r.get("met")]
            rows.append((r["metric"], f"{_fmt(r['value'])} {r.get('unit', '')}".strip(), target, verdict))
        return rows
    rows = []
    targets = data.get("targets") if isinstance(data.get("targets"), dict) else {}
    for key, value in _leaves(data):
        if key.startswith("target") or key.startswith("machine") or isinstance(value, str):
            continue
        short = key.rsplit(".", 1)[-1]
        target = targets.get(short) if isinstance(targets, dict) else None
        rows.append((key, _fmt(value) if not isinstance(value, bool) else str(value), "" if target is None else str(target), ""))
    for key, value in data.items():
        if key.startswith("target_") and not isinstance(value, dict):
            rows.append((key, str(value), "", ""))
    return rows


def _leaves(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(data, dict):
        out = []
        for key, value in data.items():
            if key == "targets":
                continue
            out += _leaves(value, f"{prefix}{key}.")
        return out
    if isinstance(data, (int, float)):
        return [(prefix.rstrip("."), data)]
    return []


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or value == int(value) and abs(value) >= 100:
        return f"{int(value):,}"
    return f"{value:.3g}" if abs(value) < 100 else f"{value:,.1f}"


def print_summary() -> None:
    """One table of every ``bench/results/*.json``."""
    print("\n==== summary of bench/results/*.json")
    for path in sorted(RESULTS.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            print(f"\n-- {path.name}: unreadable ({exc})")
            continue
        rows = summary_rows(data) if isinstance(data, dict) else []
        when = data.get("when", "") if isinstance(data, dict) else ""
        print(f"\n-- {path.stem} {when}")
        if not rows:
            print("   (no figures)")
            continue
        width = min(60, max(len(r[0]) for r in rows))
        for metric, value, target, verdict in rows:
            print(f"   {metric:<{width}}  {value:>14}  {target:<10} {verdict}")


def main() -> None:
    """Run the benchmarks, then print the summary."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", help="benchmark names (file stems) to run")
    parser.add_argument("--summary", action="store_true", help="only print the summary of the saved results")
    args = parser.parse_args()
    failed: list[str] = []
    if not args.summary:
        for script in benchmarks():
            if args.only and script.stem not in args.only:
                continue
            print(f"\n######## {script.name}", flush=True)
            started = time.perf_counter()
            code = subprocess.run([sys.executable, script.name], cwd=BENCH).returncode
            print(f"######## {script.name}: exit {code} after {time.perf_counter() - started:.0f} s", flush=True)
            if code:
                failed.append(script.name)
    print_summary()
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
        sys.exit(1)


if __name__ == "__main__":
    main()

"""Startup: ``digest --help`` and ``digest preview`` of one 112-entry snapshot file, whole processes.

Prints a table and writes ``bench/results/startup.json``.
Targets: ``--help`` <= 0.15 s, preview of a 112-entry snapshot <= 0.6 s (median wall time).
"""

from __future__ import annotations

import argparse

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


def main() -> None:
    """Time ``digest --help`` and a preview; save the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    install_product()

    folder = fresh_dir(WORK / "startup")
    inbox = fresh_dir(folder / "inbox")
    listing = folder / "listing.txt"
    listing.write_text(snapshot_text(range(112)), encoding="utf-8")
    config = digest_config(folder, inbox=inbox)
    env = digest_env()
    out = folder / "out"

    measure([DIGEST, "--help"], runs=1, env=env)  # warm the page cache and bytecode
    helped = measure([DIGEST, "--help"], runs=runs, env=env)
    measure([DIGEST, "preview", "--config", config, "--out", out, listing], runs=1, env=env)
    previewed = measure(
        [DIGEST, "preview", "--config", config, "--out", out, "--date", "2025-03-14", listing], runs=runs, env=env
    )
    rows = [
        Row("digest --help, wall", helped.seconds, "s", 0.15),
        Row("digest --help, peak RSS", helped.peak_mb, "MB"),
        Row("preview of a 112-entry snapshot, wall", previewed.seconds, "s", 0.6),
        Row("preview of a 112-entry snapshot, peak RSS", previewed.peak_mb, "MB"),
    ]
    print_table(f"startup (median of {runs} processes)", rows)
    write_results("startup", rows, {"runs": runs, "entries": 112})


if __name__ == "__main__":
    main()

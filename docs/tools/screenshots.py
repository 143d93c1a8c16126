"""Take the README's pictures: the email and the archive site of the ``make demo`` output.

    make demo && .venv/bin/python docs/tools/screenshots.py

Headless Chromium (Debian's ``chromium`` package) opens the newest day's email page from the demo
archive and the newest day's page of the demo site, and saves one PNG of each in ``docs/img/``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
    "--virtual-time-budget=2000",
)
# (name, the page under the demo folder, window width, height)
SHOTS = (
    ("email.png", "archive", 720, 1100),
    ("site.png", "site", 1100, 760),
)


def newest_day_page(folder: Path) -> Path:
    """The newest ``YYYY/MM/YYYY-MM-DD.html`` under ``folder``."""
    pages = sorted(folder.glob("[0-9][0-9][0-9][0-9]/[0-9][0-9]/*.html"), key=lambda p: p.name)
    if not pages:
        raise SystemExit(f"error: {folder}: no day page; run `make demo` first")
    return pages[-1]


def screenshot(chromium: str, page: Path, out: Path, width: int, height: int) -> None:
    """Save a PNG of ``page`` as a ``width`` x ``height`` window shows it."""
    with tempfile.TemporaryDirectory(prefix="digest-shot-") as profile:
        subprocess.run(
            [chromium, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
             f"--screenshot={out}", page.as_uri()],
            check=True, capture_output=True, timeout=120,
        )
    if not out.is_file():
        raise SystemExit(f"error: chromium wrote no {out}")


def main() -> None:
    """Parse the arguments and take every picture."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", type=Path, default=ROOT / "var" / "demo", help="the make demo output")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img", help="where the PNG files go")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("error: no chromium on PATH (apt-get install chromium)")
    args.out.mkdir(parents=True, exist_ok=True)
    for name, folder, width, height in SHOTS:
        page = newest_day_page(args.demo / folder)
        screenshot(chromium, page, args.out / name, width, height)
        print(f"{args.out / name}: {page.relative_to(args.demo)} at {width}x{height}", file=sys.stderr)


if __name__ == "__main__":
    main()

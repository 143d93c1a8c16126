"""Debian's headless Chromium as the tests use it: lay a page out and read what it measured.

Headless Chromium will not make a window narrower than about 500 px, so a page is laid out in
an iframe of the wanted width; the wrapper page measures it and reports through its title,
which ``--dump-dom`` prints.
"""

from __future__ import annotations

import html as html_lib
import json
import re
import shutil
import subprocess
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--virtual-time-budget=2000",
]


def measure(wrapper: str, page: str, path: Path, *, dark: bool = False, **fields: object) -> dict[str, object]:
    """Load ``wrapper`` (a ``str.format`` template: ``{srcdoc}`` is filled with ``page``, escaped,
    the other fields from ``fields``) from ``path`` in Chromium, in dark mode if asked, and return
    the JSON object the wrapper put in its title."""
    assert CHROMIUM, "Debian's chromium is needed for this test (apt-get install chromium; .ci/run does it)"
    path.write_text(wrapper.format(srcdoc=html_lib.escape(page, quote=True), **fields), encoding="utf-8")
    args = [CHROMIUM, *FLAGS, f"--user-data-dir={path.parent / 'profile'}", "--window-size=1200,1000"]
    if dark:
        args.append("--force-dark-mode")
    out = subprocess.run([*args, "--dump-dom", path.as_uri()], capture_output=True, text=True, timeout=90).stdout
    found = re.search(r"<title>(\{.*?\})</title>", out)
    assert found, out[-2000:]
    return dict(json.loads(html_lib.unescape(found.group(1))))

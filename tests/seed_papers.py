"""Read the seed snapshot files into papers, for tests and benchmarks only.

The real snapshot parser lives in ``digest.sources.snapshots``; this is the bare minimum the
topic tests need: drop the page chrome (the first five non-blank lines), then pair the
remaining non-blank lines as (title, abstract).
"""

from __future__ import annotations

import csv
from pathlib import Path

from digest.models import Paper

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SEEDS = SHARED / "seeds"
LABELS = SHARED / "topics" / "labels-dev.tsv"
_CHROME_LINES = 5


def load_seed_file(path: Path) -> list[Paper]:
    """Return the papers of one seed snapshot file, in listing order."""
    lines = [line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines()]
    body = [line for line in lines if line][_CHROME_LINES:]
    return [
        Paper(title=body[i], abstract=body[i + 1] if i + 1 < len(body) else "",
              source=path.stem, position=i // 2)
        for i in range(0, len(body), 2)
    ]


def load_seed_papers(files: list[Path] | None = None) -> list[Paper]:
    """Return the papers of the given seed files (all of them by default)."""
    return [p for f in (files or sorted(SEEDS.glob("*.txt"))) for p in load_seed_file(f)]


def label_rows(path: Path = LABELS) -> list[dict[str, str]]:
    """Return the rows of a labels TSV as dicts (title, topic, seed_file)."""
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))

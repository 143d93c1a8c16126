"""The seed snapshot files as papers, for the topic tests and benchmarks (read with the real parser)."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

from digest.models import Paper
from digest.sources.snapshots import read_snapshot
from tests.conftest import SHARED

SEEDS = SHARED / "seeds"
LABELS = SHARED / "topics" / "labels-dev.tsv"
_TAKEN = dt.datetime(2025, 6, 1, tzinfo=dt.timezone.utc)


def load_seed_file(path: Path) -> list[Paper]:
    """Return the papers of one seed snapshot file, in listing order."""
    return list(read_snapshot(path, source=path.stem, taken_at=_TAKEN).papers)


def load_seed_papers(files: list[Path] | None = None) -> list[Paper]:
    """Return the papers of the given seed files (all of them by default)."""
    return [p for f in (files or sorted(SEEDS.glob("*.txt"))) for p in load_seed_file(f)]


def label_rows(path: Path = LABELS) -> list[dict[str, str]]:
    """Return the rows of a labels TSV as dicts (title, topic, seed_file)."""
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))

"""``digest topics eval``: measure the grouper on hand-labelled papers read from snapshot files."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from digest.config import Config
from digest.errors import ConfigError, SourceError
from digest.models import Paper
from digest.sources.snapshots import inbox_files, read_snapshot
from digest.topics import Grouper, configured_taxonomy, evaluate, format_report, label_snapshot_files


def snapshot_files_for(labels: Path, given: Sequence[Path]) -> list[Path]:
    """The snapshot files holding the labelled papers: those given (folders expanded), else the
    files the labels' ``seed_file`` column names, in ``../seeds`` beside the labels file."""
    if not given:
        files = list(label_snapshot_files(labels))
        if not files:
            raise ConfigError(f"{labels}: no seed_file column to find the papers; name them with --papers")
        return files
    found: list[Path] = []
    for path in given:
        found.extend(inbox_files(path) if path.is_dir() else [path])
    return found


def load_papers(files: Sequence[Path]) -> list[Paper]:
    """Every paper of the snapshot files (a paper listed twice counts once)."""
    taken = dt.datetime.now(dt.timezone.utc)
    papers: dict[str, Paper] = {}
    for path in files:
        try:
            snapshot = read_snapshot(path, source=path.name, taken_at=taken)
        except SourceError as exc:
            raise ConfigError(exc.message) from None
        for paper in snapshot.papers:
            papers.setdefault(paper.key, paper)
    return list(papers.values())


def run_eval(config: Config | None, labels: Path, paper_files: Sequence[Path]) -> str:
    """Evaluate the configured (or default) taxonomy against ``labels``; return the report text."""
    grouper = Grouper(configured_taxonomy(config.topics.file if config else None))
    papers = load_papers(snapshot_files_for(labels, paper_files))
    return format_report(evaluate(labels, papers, grouper))

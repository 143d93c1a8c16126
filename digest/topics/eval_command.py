"""``digest topics eval``: measure the grouper on hand-labelled papers read from source files.

The papers come from snapshot files (text listings) or saved feeds (arXiv RSS/Atom, with
their categories).  A labelled paper that is also one of the taxonomy's examples is not
evidence of anything: those examples are left out of the grouper that is measured.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from digest.config import Config
from digest.errors import ConfigError, SourceError
from digest.identity import normalise_title
from digest.models import Paper
from digest.sources.feed import parse_feed
from digest.sources.snapshots import inbox_files, read_snapshot
from digest.topics.evaluate import evaluate, format_report, label_snapshot_files, read_labels
from digest.topics.grouper import Grouper
from digest.topics.taxonomy import Taxonomy, configured_taxonomy

FEED_SUFFIXES = (".xml", ".rss", ".atom", ".rdf")
ALL_FEED_TYPES = frozenset({"new", "cross", "replace", "replace-cross"})


def snapshot_files_for(labels: Path, given: Sequence[Path]) -> list[Path]:
    """The files holding the labelled papers: those given (folders expanded), else the files
    the labels' ``seed_file`` column names, in ``../seeds`` beside the labels file."""
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
    """Every paper of the snapshot and feed files (a paper listed twice counts once)."""
    taken = dt.datetime.now(dt.timezone.utc)
    papers: dict[str, Paper] = {}
    for path in files:
        try:
            if path.suffix.lower() in FEED_SUFFIXES:
                read = parse_feed(path.read_bytes(), source=path.name, announce_types=ALL_FEED_TYPES)
            else:
                read = list(read_snapshot(path, source=path.name, taken_at=taken).papers)
        except SourceError as exc:
            raise ConfigError(exc.message) from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
        for paper in read:
            papers.setdefault(paper.key, paper)
    return list(papers.values())


def without_labelled(
    taxonomy: Taxonomy, labelled: set[str], self_teaching: bool | None = None
) -> tuple[Taxonomy, str]:
    """The taxonomy to measure: ``taxonomy`` less the examples whose normalised title is in
    ``labelled`` (teaching itself or not as ``self_teaching`` says, when given, else as its
    topics file does), and the report's closing notes: whether it taught itself, how many
    examples were left out ("" for neither)."""
    if self_teaching is not None:
        taxonomy = replace(taxonomy, self_teaching=self_teaching)
    measured = taxonomy.without_examples(labelled)
    notes = []
    if measured.teaches_itself():
        notes.append("(the grouper taught itself with the papers of the shipped examples file: "
                     "--no-self-teaching measures it without)")
    left_out = len(taxonomy.examples()) - len(measured.examples())
    if left_out:
        notes.append(f"({left_out} examples of the topics file are labelled papers: left out while measuring)")
    return measured, "".join(f"\n\n{note}" for note in notes)


def run_eval(
    config: Config | None,
    labels: Path,
    paper_files: Sequence[Path],
    *,
    misses: int = 0,
    self_teaching: bool | None = None,
) -> str:
    """Evaluate the configured (or default) taxonomy against ``labels`` (teaching itself as
    ``self_teaching`` says, when given); return the report text."""
    taxonomy = configured_taxonomy(config.topics.file if config else None)
    labelled = {normalise_title(title) for title, _, _ in read_labels(labels)}
    measured, note = without_labelled(taxonomy, labelled, self_teaching)
    papers = load_papers(snapshot_files_for(labels, paper_files))
    return format_report(evaluate(labels, papers, Grouper(measured)), misses=misses) + note

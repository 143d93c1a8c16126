"""``digest topics eval``: measure the grouper on hand-labelled papers read from source files.

The papers come from snapshot files (text listings) or saved feeds (arXiv RSS/Atom, with
their categories).  A labelled paper that is also one of the taxonomy's examples is not
evidence of anything: those examples are left out of the grouper that is measured.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from digest.config import Config
from digest.errors import ConfigError, SourceError
from digest.identity import normalise_title
from digest.models import Paper, Placement
from digest.sources.feed import parse_feed
from digest.sources.snapshots import inbox_files, read_snapshot
from digest.topics.evaluate import evaluate, format_report, label_snapshot_files, read_labels
from digest.topics.grouper import Grouper
from digest.topics.taxonomy import configured_taxonomy

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


def run_eval(config: Config | None, labels: Path, paper_files: Sequence[Path], *, misses: int = 0, llm: bool = False) -> str:
    """Evaluate the configured (or default) taxonomy against ``labels``; return the report text.

    ``llm``: also measure the model's second opinion on the weak placements (``[llm]`` of the config).
    """
    if llm and (config is None or not config.llm.model.strip()):
        raise ConfigError(
            "--llm needs a model: no [llm] model in the config", hint="set [llm] base_url and model (docs/llm.md)"
        )
    taxonomy = configured_taxonomy(config.topics.file if config else None)
    labelled = {normalise_title(title) for title, _, _ in read_labels(labels)}
    measured = taxonomy.without_examples(labelled)
    left_out = len(taxonomy.examples()) - len(measured.examples())
    papers = load_papers(snapshot_files_for(labels, paper_files))
    grouper = Grouper(measured)
    report = ""
    if llm:
        assert config is not None
        report = _with_second_opinion(config, labels, papers, grouper, misses) + "\n\nthe grouper alone:\n"
    report += format_report(evaluate(labels, papers, grouper), misses=0 if llm else misses)
    if left_out:
        report += f"\n\n({left_out} examples of the topics file are labelled papers: left out while measuring)"
    return report


def _with_second_opinion(config: Config, labels: Path, papers: Sequence[Paper], grouper: Grouper, misses: int) -> str:
    """The report with the model's second opinion on the weak placements, and what it changed."""
    from digest.llm.assist import weak_reason
    from digest.llm.evaluate import SecondOpinions, second_opinions

    found: list[SecondOpinions] = []
    offline: list[Placement] = []
    titles: list[str] = []

    def revise(matched: Sequence[Paper], placements: Sequence[Placement]) -> Sequence[Placement]:
        offline.extend(placements)
        titles.extend(normalise_title(p.title) for p in matched)
        found.append(second_opinions(matched, placements, grouper.taxonomy, config.llm))
        return found[0].placements

    with_model = evaluate(labels, papers, grouper, revise=revise)
    label_of = {normalise_title(title): label for title, label, _ in read_labels(labels)}
    opinions = found[0]
    weak = [i for i, p in enumerate(offline) if weak_reason(p) is not None]
    changed = sum(1 for i in weak if opinions.placements[i].topic != offline[i].topic)
    right_before = sum(1 for i in weak if offline[i].topic == label_of[titles[i]])
    right_after = sum(1 for i in weak if opinions.placements[i].topic == label_of[titles[i]])
    lines = [
        f"second opinion of {config.llm.model}: {opinions.weak} of {len(offline)} placements weak, "
        f"{opinions.answered} answered with a topic code in {opinions.requests} requests, {changed} changed",
        f"on the weak placements: the grouper right {right_before}/{len(weak)}, with the model {right_after}/{len(weak)}",
    ]
    if opinions.failures:
        lines.append(f"(no answer for some: {'; '.join(opinions.failures)})")
    return "\n".join(lines) + "\n" + format_report(with_model, misses=misses)

"""Measuring the grouper against hand labels: accuracy, per-topic scores (Other included) and
the confusion matrix."""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from digest.errors import ConfigError
from digest.identity import normalise_title
from digest.models import Paper, Placement
from digest.topics.grouper import Grouper
from digest.topics.taxonomy import OTHER_CODE



Revise = Callable[[Sequence[Paper], Sequence[Placement]], Sequence[Placement]]


@dataclass(frozen=True, slots=True)
class TopicScore:
    """How well one topic's placements agree with the labels."""

    code: str
    precision: float
    recall: float
    f1: float
    support: int  # labelled papers of this topic
    placed: int  # papers the grouper put in this topic


@dataclass(frozen=True, slots=True)
class Miss:
    """A labelled paper the grouper placed elsewhere."""

    title: str
    label: str
    placed: str
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class EvalReport:
    """The grouper measured against hand labels.

    ``confusion[i][j]`` counts papers labelled ``codes[i]`` and placed in ``codes[j]``;
    ``macro_f1`` averages F1 over the topics that occur in the labels; ``other_share`` is the
    share of labelled papers placed in "Other".
    """

    n: int
    accuracy: float
    macro_f1: float
    other_share: float
    topics: tuple[TopicScore, ...]
    codes: tuple[str, ...]
    confusion: tuple[tuple[int, ...], ...]
    unmatched: tuple[str, ...]
    misses: tuple[Miss, ...]


def read_labels(path: Path) -> list[tuple[str, str, tuple[str, ...]]]:
    """The rows of a labels TSV (title<TAB>topic[<TAB>more...], with a header): (title, topic, rest)."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read labels: {exc.strerror or exc}") from None
    labels = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            raise ConfigError(f"{path}:{line}: expected title<TAB>topic")
        labels.append((row[0].strip(), row[1].strip(), tuple(row[2:])))
    return labels


def label_snapshot_files(path: Path) -> tuple[Path, ...]:
    """The snapshot files a labels TSV names in its third column, resolved against the
    ``seeds`` folder beside the labels' folder (``topics/labels.tsv`` -> ``seeds/<file>``)."""
    seeds = path.resolve().parent.parent / "seeds"
    names = dict.fromkeys(rest[0].strip() for _, _, rest in read_labels(path) if rest and rest[0].strip())
    return tuple(seeds / name for name in names)


def evaluate(labels: Path, papers: Sequence[Paper], grouper: Grouper, *, revise: Revise | None = None) -> EvalReport:
    """Place the labelled papers (matched by normalised title) and compare with the labels.

    ``revise`` may change the placements before they are compared (the model's second opinion,
    ``digest topics eval --llm``): it gets the matched papers and their placements, in order.
    """
    by_title: dict[str, Paper] = {}
    for paper in papers:
        by_title.setdefault(normalise_title(paper.title), paper)
    gold: list[str] = []
    matched: list[Paper] = []
    placed: list[str] = []
    misses: list[Miss] = []
    unmatched: list[str] = []
    seen: set[str] = set()
    for title, label, _ in read_labels(labels):
        key = normalise_title(title)
        if key in seen:
            continue
        seen.add(key)
        found = by_title.get(key)
        if found is None:
            unmatched.append(title)
            continue
        matched.append(found)
        gold.append(label)
    placements = grouper.place_all(matched)
    if revise is not None:
        placements = list(revise(matched, placements))
    for found, label, placement in zip(matched, gold, placements):
        placed.append(placement.topic)
        if placement.topic != label:
            misses.append(Miss(found.title, label, placement.topic, placement.evidence))
    known = grouper.taxonomy.codes()
    extra = sorted(set(gold) - set(known) - {OTHER_CODE})
    codes = known + tuple(extra) + (OTHER_CODE,)
    position = {code: i for i, code in enumerate(codes)}
    confusion = [[0] * len(codes) for _ in codes]
    for g, p in zip(gold, placed):
        confusion[position[g]][position[p]] += 1
    scores = []
    for i, code in enumerate(codes):
        support = sum(confusion[i])
        n_placed = sum(row[i] for row in confusion)
        if not support and not n_placed:
            continue
        hit = confusion[i][i]
        precision = hit / n_placed if n_placed else 0.0
        recall = hit / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        scores.append(TopicScore(code, precision, recall, f1, support, n_placed))
    n = len(gold)
    labelled = [s for s in scores if s.support]
    return EvalReport(
        n=n,
        accuracy=sum(g == p for g, p in zip(gold, placed)) / n if n else 0.0,
        macro_f1=sum(s.f1 for s in labelled) / len(labelled) if labelled else 0.0,
        other_share=placed.count(OTHER_CODE) / n if n else 0.0,
        topics=tuple(scores),
        codes=codes,
        confusion=tuple(tuple(row) for row in confusion),
        unmatched=tuple(unmatched),
        misses=tuple(misses),
    )


def format_report(report: EvalReport, *, misses: int = 0) -> str:
    """The report as a text table: totals, per-topic scores, the confusion matrix and,
    if ``misses`` > 0, that many misplaced papers with the evidence that misled the grouper."""
    lines = [
        f"{report.n} labelled papers"
        + (f" ({len(report.unmatched)} labels matched no paper)" if report.unmatched else ""),
        f"accuracy {report.accuracy:.3f}   macro-F1 {report.macro_f1:.3f}   "
        f"Other {100 * report.other_share:.1f} %",
    ]
    other = next((s for s in report.topics if s.code == OTHER_CODE and s.support), None)
    if other is not None:
        lines.append(
            f"Other: precision {other.precision:.3f}   recall {other.recall:.3f}   "
            f"({other.support} labelled other, {other.placed} placed there)"
        )
    lines.append("")
    width = max([len(c) for c in report.codes] + [5])
    lines.append(f"{'topic':<{width}}  precision  recall     f1  labelled  placed")
    for s in report.topics:
        lines.append(
            f"{s.code:<{width}}  {s.precision:9.3f}  {s.recall:6.3f}  {s.f1:5.3f}  {s.support:8d}  {s.placed:6d}"
        )
    used = [
        i
        for i, code in enumerate(report.codes)
        if sum(report.confusion[i]) or sum(row[i] for row in report.confusion)
    ]
    lines += ["", "confusion (rows: label, columns: placed, numbered as the rows)"]
    lines.append(" " * (width + 5) + "".join(f"{k + 1:>4}" for k in range(len(used))))
    for k, i in enumerate(used):
        cells = "".join(f"{report.confusion[i][j] or '.':>4}" for j in used)
        lines.append(f"{k + 1:>2}. {report.codes[i]:<{width}} {cells}")
    if report.unmatched:
        lines += ["", "labels that matched no paper:"] + [f"  {t}" for t in report.unmatched[:20]]
        if len(report.unmatched) > 20:
            lines.append(f"  ... and {len(report.unmatched) - 20} more")
    if misses and report.misses:
        lines += ["", f"misplaced papers (first {min(misses, len(report.misses))}):"]
        for m in report.misses[:misses]:
            lines.append(f"  {m.label} -> {m.placed}: {m.title}")
            if m.evidence:
                lines.append(f"      because: {'; '.join(m.evidence)}")
    return "\n".join(lines)

"""Measure teaching the borders between topics (and the blind spots real listings showed); print
the figures, save bench/results/topics-border-teaching.json.

Papers written from the labelling guide for the borders between topics: papers that share
their context words ("mixture-of-experts", "benchmark", "Indonesian", "vision transformer") but
not their topic (briefs: tools/topics-border-brief.md). The themes were chosen from the kinds of
paper misplaced among the dev labels' tuning part, so the dev-tuning figure flatters them.

* bench/data/teaching/border-lines.tsv (the first round, 440 papers): the 282 that
  tools/add_teaching.py keeps are in the shipped examples file at weight 1;
* bench/data/teaching/border-lines-2.tsv (a second round, 360 papers, other writers and
  themes): measured, not shipped (docs/topics.md says why);
* bench/data/teaching/blind-spots.tsv (360 papers, brief: tools/blind-spots-brief.md) for the
  kinds of paper the grouper misplaced among the listing days' tuning part: domain work built
  from agents (``applications``) against generic agent methods, machine learning inside science
  (``applications``) against the same fields without it (``other``), and computer science
  outside the topics (``other``) against topic papers with the same words: measured, not shipped.

Each variant is measured on the tuning splits (``topics.tuning_figures``),
on the out-of-scope papers from their text and on the feed items: the shipped
taxonomy, the same less the first round's lines, and the same plus the second round's lines (or
the blind spots') that tools/add_teaching.py would keep (255; 296), at weight 1. The first
round's lines stay in the background (the unlabelled papers the IDFs are counted over) in every
variant, and the others are in none of them: only what they teach as examples differs.

    python bench/topics_border_teaching.py
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tools"))

from digest.identity import normalise_title  # noqa: E402
from digest.topics import Taxonomy, default_taxonomy_path, load_taxonomy  # noqa: E402
from digest.topics.taxonomy import Example, examples_file_rows  # noqa: E402
from _common import Row, report  # noqa: E402
from add_teaching import checked, kept_rows  # noqa: E402
from topics import DATA, accuracy_rows, other_border_figures, tuning_figures  # noqa: E402

FIRST = DATA / "teaching" / "border-lines.tsv"
SECOND = DATA / "teaching" / "border-lines-2.tsv"
BLIND_SPOTS = DATA / "teaching" / "blind-spots.tsv"


def main() -> None:
    shipped = load_taxonomy(default_taxonomy_path())
    first = {normalise_title(r.title) for r in examples_file_rows(FIRST)}
    without = tuple(e for e in shipped.extra_examples if normalise_title(e.title) not in first)
    second, blind = (
        tuple(Example(r.title, str(r.topic), r.abstract, 1.0) for r in kept_rows(checked(examples_file_rows(p), p), None))
        for p in (SECOND, BLIND_SPOTS)
    )
    variants: dict[str, Taxonomy] = {
        "without border lines": dataclasses.replace(shipped, extra_examples=without),
        "first round (shipped)": shipped,
        "both rounds": dataclasses.replace(shipped, extra_examples=shipped.extra_examples + second),
        "blind spots": dataclasses.replace(shipped, extra_examples=shipped.extra_examples + blind),
    }
    results: list[Row] = []
    for name, taxonomy in variants.items():
        results += accuracy_rows(name, {**tuning_figures(taxonomy), **other_border_figures(taxonomy)})
    counts = {
        "first_round_shipped": len(shipped.extra_examples) - len(without),
        "second_round_kept": len(second),
        "blind_spots_kept": len(blind),
    }
    report("teaching the borders between topics", "topics-border-teaching", results, counts)


if __name__ == "__main__":
    main()

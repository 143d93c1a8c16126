"""Measure how much the breadth-teaching lines of the examples file should count; print the
figures, save bench/results/topics-breadth-teaching.json.

The shipped examples file ends with 833 papers written from the labelling guide for the breadth
of a day's listing (cs.CV and cs.CL of every kind, general ML, machine learning inside other
fields against those fields without it; tools/topics-examples-brief.md), at weight 0.5. Each
variant gives them another weight, or leaves them out, and is measured on the tuning part of
the dev labels, on the guide-written papers and on the tuning part of the invented arXiv day
(text only), never on a frozen split.

    python bench/topics_breadth_teaching.py
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from digest.topics import Taxonomy, default_taxonomy_path, load_taxonomy  # noqa: E402
from _common import Row, report  # noqa: E402
from topics import accuracy, arxiv_day, dev_papers, guide_written, unseen  # noqa: E402

SHIPPED_WEIGHT = 0.5


def with_breadth_weight(taxonomy: Taxonomy, weight: float | None) -> Taxonomy:
    """``taxonomy`` with its breadth-teaching lines (those of weight ``SHIPPED_WEIGHT``) at
    ``weight``, or without them when it is None."""
    extra = []
    for example in taxonomy.extra_examples:
        if example.weight != SHIPPED_WEIGHT:
            extra.append(example)
        elif weight is not None:
            extra.append(dataclasses.replace(example, weight=weight))
    return dataclasses.replace(taxonomy, extra_examples=tuple(extra))


def main() -> None:
    shipped = load_taxonomy(default_taxonomy_path())
    breadth = sum(e.weight == SHIPPED_WEIGHT for e in shipped.extra_examples)
    papers, labels = dev_papers(frozen=False)
    written, written_labels = guide_written()
    results: list[Row] = []
    for name, weight in (("left out", None), ("weight 0.25", 0.25), ("weight 0.5 (shipped)", 0.5),
                         ("weight 1", 1.0), ("weight 2", 2.0)):
        taxonomy = with_breadth_weight(shipped, weight)
        figures = {
            "dev-tuning": accuracy(unseen(taxonomy, papers), papers, labels),
            "guide-written": accuracy(unseen(taxonomy, written), written, written_labels),
        }
        day = arxiv_day(taxonomy, frozen=False)
        figures.update({key: value for key, value in day.items() if "text only" in key})
        for measure, value in figures.items():
            results.append(Row(f"{name}: {measure} accuracy", float(value["accuracy"]), "", better="higher"))  # type: ignore[arg-type]
    report("how much the breadth-teaching lines count", "topics-breadth-teaching", results,
           {"breadth_lines": breadth, "dev_tuning_n": len(papers), "guide_written_n": len(written)})


if __name__ == "__main__":
    main()

"""Measure how much the breadth-teaching lines of the examples file should count; print the
figures, save bench/results/topics-breadth-teaching.json.

The shipped examples file holds 833 papers written from the labelling guide for the breadth
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
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from digest.topics import Taxonomy, default_taxonomy_path, load_taxonomy  # noqa: E402
from digest.topics.taxonomy import Example  # noqa: E402
from _common import Row, report  # noqa: E402
from topics import accuracy_rows, tuning_figures  # noqa: E402

SHIPPED_WEIGHT = 0.5


def with_lines_weighted(taxonomy: Taxonomy, chosen: Callable[[Example], bool], weight: float | None) -> Taxonomy:
    """``taxonomy`` with the lines of its examples file that ``chosen`` picks at ``weight``, or
    without them when it is None."""
    extra = []
    for example in taxonomy.extra_examples:
        if not chosen(example):
            extra.append(example)
        elif weight is not None:
            extra.append(dataclasses.replace(example, weight=weight))
    return dataclasses.replace(taxonomy, extra_examples=tuple(extra))


def measure_weights(shipped: Taxonomy, chosen: Callable[[Example], bool], weights: dict[str, float | None]) -> list[Row]:
    """Each variant's figures on the tuning splits (``tuning_figures``), as result rows."""
    results: list[Row] = []
    for name, weight in weights.items():
        results += accuracy_rows(name, tuning_figures(with_lines_weighted(shipped, chosen, weight)))
    return results


def main() -> None:
    shipped = load_taxonomy(default_taxonomy_path())

    def breadth(example: Example) -> bool:
        return example.weight == SHIPPED_WEIGHT

    results = measure_weights(shipped, breadth, {"left out": None, "weight 0.25": 0.25, "weight 0.5 (shipped)": 0.5,
                                                 "weight 1": 1.0, "weight 2": 2.0})
    report("how much the breadth-teaching lines count", "topics-breadth-teaching", results,
           {"breadth_lines": sum(map(breadth, shipped.extra_examples))})


if __name__ == "__main__":
    main()

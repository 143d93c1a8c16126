"""Measure teaching the borders between topics; print the figures, save
bench/results/topics-border-teaching.json.

bench/data/teaching/border-lines.tsv holds 440 papers written from the labelling guide for the
borders between topics: papers that share their context words ("mixture-of-experts",
"benchmark", "Indonesian", "vision transformer") but not their topic (tools/topics-border-brief.md;
40 more, whose titles shared half their words with a measured paper's, were left out). Each
variant adds them to the shipped examples at a weight and is measured on the tuning splits
(``topics.tuning_figures``) and on the out-of-scope papers from their text. The themes were
chosen from the kinds of paper misplaced among the dev labels' tuning part, so the dev-tuning
figure flatters these lines. They are measured, not shipped: docs/topics.md says why.

    python bench/topics_border_teaching.py
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from digest.topics import OTHER_CODE, default_taxonomy_path, load_taxonomy  # noqa: E402
from digest.topics.taxonomy import Example  # noqa: E402
from _common import Row, report  # noqa: E402
from topics import DATA, accuracy, accuracy_rows, outside_papers, read_tsv, tuning_figures, unseen  # noqa: E402

LINES = DATA / "teaching" / "border-lines.tsv"


def main() -> None:
    shipped = load_taxonomy(default_taxonomy_path())
    rows = read_tsv(LINES)
    outside = outside_papers(DATA / "heldout-other.tsv", with_categories=False)
    results: list[Row] = []
    for name, weight in (("not taught (shipped)", None), ("weight 0.5", 0.5), ("weight 1", 1.0), ("weight 2", 2.0)):
        taxonomy = shipped
        if weight is not None:
            border = tuple(Example(r["title"], r["topic"], r["abstract"], weight) for r in rows)
            taxonomy = dataclasses.replace(shipped, extra_examples=shipped.extra_examples + border)
        figures = tuning_figures(taxonomy)
        figures["heldout-other (text only)"] = accuracy(unseen(taxonomy, outside), outside, [OTHER_CODE] * len(outside))
        results += accuracy_rows(name, figures)
    report("teaching the borders between topics", "topics-border-teaching", results, {"border_lines": len(rows)})


if __name__ == "__main__":
    main()

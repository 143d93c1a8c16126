"""Measure self-teaching for taxonomies with few examples; print the figures, save
bench/results/topics-selfteach.json.

A new taxonomy (descriptions and a handful of examples per topic) is the weak case of the
grouper.  The grouper teaches itself when a taxonomy has few examples (``SELF_TEACH_BELOW`` in
digest/topics/taxonomy.py): it places the papers of its background (the shipped examples file,
read without its labels), the ``SELF_TAUGHT`` surest placements of each class (largest margin
over the runner-up) become examples, and it learns again.  This script measures how many
per class to take and how much they weigh, for three taxonomies cut from the shipped one: the
first and the second five inline examples of each topic, and all its inline examples (no
examples file).

Each figure is on papers the grouper was not taught with: the measured papers are left out of
the taxonomy's examples and of the background, so none of them is self-taught either
(bench/topics.py, ``unseen``).  Tuning splits only (never the frozen one): the dev labels' tuning
part, the guide-written papers, the held-out out-of-scope papers from their text alone, and the
invented arXiv day's tuning part (text only).

    python bench/topics_selfteach.py [--per-class N ...] [--weight W ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from digest.topics import OTHER_CODE, default_taxonomy_path, load_taxonomy  # noqa: E402
from digest.topics import grouper  # noqa: E402
from _common import Row, report  # noqa: E402
from topics import DATA, accuracy, accuracy_rows, few_shot, outside_papers, tuning_figures, unseen  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, nargs="+", default=[200, 300, 500])
    parser.add_argument("--weight", type=float, nargs="+", default=[1.0])
    args = parser.parse_args()
    shipped = load_taxonomy(default_taxonomy_path())
    outside = outside_papers(DATA / "heldout-other.tsv", with_categories=False)
    taxonomies = {f"examples[{a}:{a + 5}]": few_shot(shipped, a, a + 5) for a in (0, 5)}
    taxonomies["all inline examples"] = few_shot(shipped, 0, None)
    settings = [(0, 1.0)] + [(n, w) for n in args.per_class for w in args.weight]
    rows: list[Row] = []
    for name, taxonomy in taxonomies.items():
        for per_class, weight in settings:
            grouper.SELF_TAUGHT, grouper.SELF_TAUGHT_WEIGHT = per_class, weight
            variant = dataclasses.replace(taxonomy, self_teaching=per_class > 0)
            label = f"{name}, self-taught {per_class} per class at {weight}" if per_class else f"{name}, not self-taught"
            figures = tuning_figures(variant)
            figures["out-of-scope text only"] = accuracy(unseen(variant, outside), outside, [OTHER_CODE] * len(outside))
            rows += accuracy_rows(label, figures)
            print(label, {k: v["accuracy"] for k, v in figures.items()}, flush=True)
    report("self-teaching a taxonomy with few examples", "topics-selfteach", rows, {"out_of_scope_n": len(outside)})


if __name__ == "__main__":
    main()

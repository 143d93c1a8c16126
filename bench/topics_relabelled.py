"""Measure teaching with the curated titles relabelled by the guide; print the figures, save
bench/results/topics-relabelled.json.

The 4,527 curated titles of the examples file carry the topic of the section of the public
paper list they came from. Eight helpers, who saw only the labelling guide, the brief
(bench/data/teaching/brief.md) and their share of the titles, gave each the guide's topic
(bench/data/teaching/curated-relabelled.tsv); 367 changed. This swaps those labels in and
measures on the tuning part of the dev labels, the guide-written papers, the held-out titles
(whose labels are list labels too) and the tuning part of the arXiv day, never on a frozen
split.

    python bench/topics_relabelled.py
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
from topics import DATA, accuracy, accuracy_rows, held_out_titles, read_tsv, tuning_figures, unseen  # noqa: E402

RELABELLED = DATA / "teaching" / "curated-relabelled.tsv"


def relabelled(taxonomy: Taxonomy) -> Taxonomy:
    """``taxonomy`` with its curated titles under the guide's topics."""
    topic_of = {r["title"]: r["topic"] for r in read_tsv(RELABELLED)}
    extra = tuple(dataclasses.replace(e, topic=topic_of.get(e.title, e.topic)) for e in taxonomy.extra_examples)
    return dataclasses.replace(taxonomy, extra_examples=extra)


def main() -> None:
    shipped = load_taxonomy(default_taxonomy_path())
    held_out, held_out_labels = held_out_titles()
    results: list[Row] = []
    for name, taxonomy in (("list labels (shipped)", shipped), ("the guide's labels", relabelled(shipped))):
        figures = tuning_figures(taxonomy)
        figures["held-out titles (list labels)"] = accuracy(unseen(taxonomy, held_out), held_out, held_out_labels)
        results += accuracy_rows(name, figures)
    report("curated titles relabelled by the guide", "topics-relabelled", results,
           {"relabelled": len(read_tsv(RELABELLED))})


if __name__ == "__main__":
    main()

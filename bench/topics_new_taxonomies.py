"""Measure the grouper on taxonomies of other subjects, with and without self-teaching; print
the figures, save bench/results/topics-new-taxonomies.json.

Each folder of bench/data/new-taxonomies/ holds a taxonomy a user might write (``topics.toml``:
descriptions, five examples per topic, an ``[other]`` table) and papers written for it by a
writer who saw nothing of the project's data (``labels.tsv``: title, topic, abstract; see
bench/data/README.md).  The grouper has never been tuned on them: they say what a new user gets,
and whether teaching itself from the shipped background (machine-learning papers and arXiv
abstracts of other fields) helps a taxonomy that is not the shipped one.

    python bench/topics_new_taxonomies.py
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from digest.models import Paper  # noqa: E402
from digest.topics import load_taxonomy  # noqa: E402
from _common import Row, report  # noqa: E402
from topics import DATA, accuracy, read_tsv, unseen  # noqa: E402

FOLDER = DATA / "new-taxonomies"
MEASURES = (("accuracy", "accuracy"), ("macro_f1", "macro-F1"), ("other_precision", "Other precision"),
            ("other_recall", "Other recall"))


def main() -> None:
    rows: list[Row] = []
    for folder in sorted(path for path in FOLDER.iterdir() if (path / "labels.tsv").is_file()):
        labelled = read_tsv(folder / "labels.tsv")
        papers = [Paper(title=r["title"], abstract=r["abstract"]) for r in labelled]
        labels = [r["topic"] for r in labelled]
        taxonomy = load_taxonomy(folder / "topics.toml")
        for teaches_itself in (False, True):
            variant = dataclasses.replace(taxonomy, self_teaching=teaches_itself)
            figures = accuracy(unseen(variant, papers), papers, labels)
            name = f"{folder.name} ({len(papers)} papers), {'self-taught' if teaches_itself else 'not self-taught'}"
            rows += [
                Row(f"{name}: {measure}", float(figures[key]), "", better="higher")  # type: ignore[arg-type]
                for key, measure in MEASURES
                if key in figures
            ]
    report("new taxonomies, with and without self-teaching", "topics-new-taxonomies", rows)


if __name__ == "__main__":
    main()

"""Measure teaching the grouper with the guide-written papers; print the figures, save
bench/results/topics-guide-teaching.json.

The guide-written papers (bench/data/guide-written.tsv) are titles and abstracts written from
the labelling guide alone. Are they better teaching than the titles of curated paper lists in
the shipped examples file? Each variant adds them to the shipped taxonomy's examples (or
replaces the curated titles with them) and is measured on the tuning part of the dev labels
and on the held-out titles; the frozen split is not read. Since what teaches cannot also test,
bench/topics.py uses these papers as a test set instead: see docs/topics.md.

    python bench/topics_guide_teaching.py
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from digest.topics import OTHER_CODE, Taxonomy, default_taxonomy_path, load_taxonomy  # noqa: E402
from digest.topics import grouper  # noqa: E402
from digest.topics.taxonomy import Example  # noqa: E402
from _common import Row, report  # noqa: E402
from topics import DATA, accuracy, dev_papers, held_out_titles, read_tsv, unseen  # noqa: E402


def main() -> None:
    shipped = load_taxonomy(default_taxonomy_path())
    guide = tuple(Example(r["title"], r["topic"], r["abstract"]) for r in read_tsv(DATA / "guide-written.tsv"))
    others = tuple(e for e in shipped.extra_examples if e.topic == OTHER_CODE)
    papers, labels = dev_papers(frozen=False)
    title_papers, title_labels = held_out_titles()

    variants: dict[str, tuple[Taxonomy, int]] = {
        "shipped examples": (shipped, grouper.EXAMPLE_ABSTRACT_WORDS),
        "plus guide-written, 40 abstract words": (
            dataclasses.replace(shipped, extra_examples=shipped.extra_examples + guide), 40),
        "plus guide-written, 80 abstract words": (
            dataclasses.replace(shipped, extra_examples=shipped.extra_examples + guide), 80),
        "guide-written instead of curated titles": (dataclasses.replace(shipped, extra_examples=others + guide), 40),
    }
    rows: list[Row] = []
    shipped_words = grouper.EXAMPLE_ABSTRACT_WORDS
    for name, (taxonomy, words) in variants.items():
        # How much of an example's abstract the word model reads (the background's papers too).
        grouper.EXAMPLE_ABSTRACT_WORDS = words
        dev = float(accuracy(unseen(taxonomy, papers), papers, labels)["accuracy"])  # type: ignore[arg-type]
        held = float(accuracy(unseen(taxonomy, title_papers), title_papers, title_labels)["accuracy"])  # type: ignore[arg-type]
        rows.append(Row(f"{name}: dev-tuning accuracy", dev, "", better="higher"))
        rows.append(Row(f"{name}: held-out titles accuracy", held, "", better="higher"))
    grouper.EXAMPLE_ABSTRACT_WORDS = shipped_words
    report("teaching with the guide-written papers", "topics-guide-teaching", rows,
           {"guide_written": len(guide), "dev_tuning_n": len(papers)})


if __name__ == "__main__":
    main()

"""Measure teaching with real listing papers labelled from the guide; print the figures, save
bench/results/topics-listing-teaching.json.

bench/data/teaching/listing-labelled.tsv holds papers of the same public daily listing as the
listing days (github.com/MayDomine/arxiv_rss_bot, August 2025 to August 2026), none of them a
listing-days paper or in another measuring set, each labelled from the guide by one reader
(brief: tools/listing-labelling-brief.md). Unlike the teaching papers written from the guide,
they are real papers of today's listings, with the words those use.

Each variant is the shipped taxonomy plus the labelled papers that tools/add_teaching.py would
keep (none like a measured paper), at a weight, measured on the tuning splits
(``topics.tuning_figures``, the five-example taxonomy too), the held-out titles, the
out-of-scope papers from their text and the feed items. The listing days' tuning part is of the
same listing as the teaching papers, so it flatters them: the dev labels, the guide-written
papers and the invented day are the fairer test.

    python bench/topics_listing_teaching.py
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tools"))

from digest.topics import OTHER_CODE, Taxonomy, default_taxonomy_path, load_taxonomy  # noqa: E402
from digest.topics.taxonomy import Example, examples_file_rows  # noqa: E402
from _common import Row, report  # noqa: E402
from add_teaching import checked, kept_rows  # noqa: E402
from topics import (  # noqa: E402
    DATA,
    accuracy,
    accuracy_rows,
    feed_items,
    held_out_titles,
    outside_papers,
    tuning_figures,
    unseen,
)

LABELLED = DATA / "teaching" / "listing-labelled.tsv"
WEIGHTS = (0.5, 1.0, 2.0)


def _sure(path: Path, line: int) -> bool:
    """Whether the reader of the labelled paper on ``line`` of ``path`` was sure of its topic."""
    return path.read_text(encoding="utf-8").splitlines()[line - 1].split("\t")[3] == "yes"


def main() -> None:
    shipped = load_taxonomy(default_taxonomy_path())
    rows = kept_rows(checked(examples_file_rows(LABELLED), LABELLED), DATA / "listing-days.tsv")
    variants: dict[str, Taxonomy] = {"the shipped topics": shipped}
    for weight in WEIGHTS:
        taught = tuple(Example(r.title, str(r.topic), r.abstract, weight) for r in rows)
        variants[f"with {len(rows)} labelled listing papers at weight {weight:g}"] = dataclasses.replace(
            shipped, extra_examples=shipped.extra_examples + taught
        )
    sure = {r.title for r in examples_file_rows(LABELLED) if _sure(LABELLED, r.line)}
    taught = tuple(Example(r.title, str(r.topic), r.abstract, 1.0 if r.title in sure else 0.5) for r in rows)
    variants["the same, at weight 1 where the reader was sure and 0.5 where not"] = dataclasses.replace(
        shipped, extra_examples=shipped.extra_examples + taught
    )
    outside = outside_papers(DATA / "heldout-other.tsv", with_categories=False)
    titles, title_labels = held_out_titles()
    results: list[Row] = []
    for name, taxonomy in variants.items():
        figures = tuning_figures(taxonomy, few_shot_too=True)
        figures["held-out-titles"] = accuracy(unseen(taxonomy, titles), titles, title_labels)
        figures["heldout-other (text only)"] = accuracy(unseen(taxonomy, outside), outside, [OTHER_CODE] * len(outside))
        figures.update(feed_items(taxonomy))
        results += accuracy_rows(name, figures)
        print(name, {k: v["accuracy"] for k, v in figures.items()}, flush=True)
    report("teaching with labelled listing papers", "topics-listing-teaching", results, {"labelled": len(rows)})


if __name__ == "__main__":
    main()

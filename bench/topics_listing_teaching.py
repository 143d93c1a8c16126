"""Measure teaching with real listing papers labelled from the guide; print the figures, save
bench/results/topics-listing-teaching.json.

bench/data/teaching/listing-labelled.tsv holds 4,809 papers of the same public daily listing as
the listing days (github.com/MayDomine/arxiv_rss_bot, August 2025 to August 2026), none of them
a listing-days paper or in another measuring set, each given the same topic from the guide by
two readers (brief: tools/listing-labelling-brief.md; the 205 they disagreed on are in
listing-labelled-disputed.tsv and teach nothing). tools/add_teaching.py keeps the 4,065 whose
titles resemble no listing-days title and adds them to the shipped examples file at weight 1 as
words-only lines (``nearest = no``: the meaning's nearest-example search never sees them).

Each variant is the shipped taxonomy with those lines changed, measured on the tuning splits
(``topics.tuning_figures``, the five-example taxonomy too), the held-out titles, the
out-of-scope papers from their text, the feed items and the invented day's papers that use
machine learning inside another field with their categories. The lines stay in the background
(the unlabelled papers the IDFs are counted over and a few-example taxonomy teaches itself
from) in every variant: only what they teach as examples differs. The listing days' tuning part
is of the same listing as these papers, so it flatters them: the dev labels, the guide-written
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

from digest.identity import normalise_title  # noqa: E402
from digest.topics import OTHER_CODE, Taxonomy, default_taxonomy_path, load_taxonomy  # noqa: E402
from digest.topics.taxonomy import Example, examples_file_rows  # noqa: E402
from _common import Row, report  # noqa: E402
from topics import (  # noqa: E402
    DATA,
    accuracy,
    accuracy_rows,
    arxiv_day,
    held_out_titles,
    other_border_figures,
    tuning_figures,
    unseen,
)

LABELLED = DATA / "teaching" / "listing-labelled.tsv"


def variants(shipped: Taxonomy) -> dict[str, Taxonomy]:
    """The shipped taxonomy, the same without the listing's lines, and with them taught otherwise."""
    labelled = {normalise_title(r.title) for r in examples_file_rows(LABELLED)}
    others = tuple(e for e in shipped.extra_examples if normalise_title(e.title) not in labelled)
    listing = tuple(e for e in shipped.extra_examples if normalise_title(e.title) in labelled)

    def taught(lines: tuple[Example, ...]) -> Taxonomy:
        return dataclasses.replace(shipped, extra_examples=others + lines)

    return {
        "without the listing's papers": taught(()),
        f"their {len(listing)} lines at weight 1, words only (shipped)": shipped,
        "the same at weight 0.5": taught(tuple(dataclasses.replace(e, weight=0.5) for e in listing)),
        "the same at weight 1, seen by the meaning too": taught(tuple(dataclasses.replace(e, nearest=True) for e in listing)),
        "the same without the lines labelled other": taught(tuple(e for e in listing if e.topic != OTHER_CODE)),
    }


def main() -> None:
    shipped = load_taxonomy(default_taxonomy_path())
    titles, title_labels = held_out_titles()
    results: list[Row] = []
    for name, taxonomy in variants(shipped).items():
        figures = tuning_figures(taxonomy, few_shot_too=True)
        figures["held-out-titles"] = accuracy(unseen(taxonomy, titles), titles, title_labels)
        figures["arxiv-day outside ML-applied"] = arxiv_day(taxonomy, frozen=False)["arxiv-day outside ML-applied"]
        figures.update(other_border_figures(taxonomy))
        results += accuracy_rows(name, figures)
    report("teaching with labelled listing papers", "topics-listing-teaching", results, {"labelled": len(examples_file_rows(LABELLED))})


if __name__ == "__main__":
    main()

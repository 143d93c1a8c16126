"""Measure how much of an abstract the word model should read, and how much its later sentences
should count; print the figures, save bench/results/topics-abstract-rest.json.

The word model reads a paper's title three times with the abstract's first 80 words, then,
apart, the title with the abstract's next ``REST_WORDS`` words, whose log-probabilities count
``REST_WEIGHT`` beside the first reading's (the sentences after the opening often name the
setting: a serving system, distributed training, a language). Each variant sets the two and is
measured on the tuning part of the dev labels (with the shipped topics, and cut to five
examples per topic), on the guide-written papers and on the tuning part of the invented arXiv
day (text only), never on a frozen split.

    python bench/topics_abstract_rest.py
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from digest.topics import default_taxonomy_path, grouper, load_taxonomy  # noqa: E402
from _common import Row, report  # noqa: E402
from topics import accuracy_rows, tuning_figures  # noqa: E402

VARIANTS = {
    "read once (no second reading)": (0.0, grouper.REST_WORDS),
    "next 100 words at 0.25": (0.25, 100),
    "next 150 words at 0.15": (0.15, 150),
    "next 150 words at 0.25 (shipped)": (0.25, 150),
    "next 150 words at 0.35": (0.35, 150),
    "next 200 words at 0.25": (0.25, 200),
    "the whole rest at 0.25": (0.25, 10_000),
}


def main() -> None:
    shipped = load_taxonomy(default_taxonomy_path())
    shipped_setting = (grouper.REST_WEIGHT, grouper.REST_WORDS)
    results: list[Row] = []
    try:
        for name, (weight, words) in VARIANTS.items():
            grouper.REST_WEIGHT, grouper.REST_WORDS = weight, words
            results += accuracy_rows(name, tuning_figures(shipped, few_shot_too=True))
    finally:
        grouper.REST_WEIGHT, grouper.REST_WORDS = shipped_setting
    report("how much of the abstract the word model reads", "topics-abstract-rest", results,
           {"first_reading_words": grouper.ABSTRACT_WORDS})


if __name__ == "__main__":
    main()

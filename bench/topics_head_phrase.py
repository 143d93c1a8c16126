"""Measure weighing a title's head phrase above the rest; print the figures, save
bench/results/topics-head-phrase.json.

The grouper reads a paper's title three times with the start of its abstract (its first
reading; the second, of the abstract's later words, is left as it is). A title's
head phrase, the part that names the contribution, could count more still: the words after a
"Name:" prefix, and of those the words before the first preposition ("Speculative decoding" in
"Speculative decoding for long-context serving"). Each variant adds the head phrase to what the
word model's first reading, once or twice; it is measured on the tuning part of the dev labels (shipped
topics and five examples per topic) and on the guide-written papers, never on the frozen split.

    python bench/topics_head_phrase.py
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from digest.models import Paper  # noqa: E402
from digest.topics import default_taxonomy_path, load_taxonomy  # noqa: E402
from digest.topics import grouper, model  # noqa: E402
from _common import Row, report  # noqa: E402
from topics import accuracy, accuracy_rows, dev_papers, few_shot, guide_written, unseen  # noqa: E402

PREPOSITION = re.compile(r"\s(?:for|in|on|with|via|of|from|under|across|at|to|through|using|by)\s", re.IGNORECASE)


def head_phrase(title: str, *, after_colon: bool, before_preposition: bool) -> str:
    """The part of ``title`` that names the contribution, as the variant reads it."""
    if after_colon and ":" in title:
        title = title.split(":", 1)[1]
    return PREPOSITION.split(title, 1)[0] if before_preposition else title


def main() -> None:
    shipped = load_taxonomy(default_taxonomy_path())
    papers, labels = dev_papers(frozen=False)
    written, written_labels = guide_written()
    plain = grouper._readings
    variants = {
        "as shipped": (False, False, 0),
        "after the colon, once more": (True, False, 1),
        "before the first preposition, once more": (False, True, 1),
        "after the colon and before the first preposition, once more": (True, True, 1),
        "after the colon and before the first preposition, twice more": (True, True, 2),
    }
    results: list[Row] = []
    try:
        for name, (after_colon, before_preposition, times) in variants.items():
            def readings(
                paper: Paper, a: bool = after_colon, b: bool = before_preposition, n: int = times
            ) -> tuple[list[str], list[str], list[str] | None]:
                title, first, rest = plain(paper)
                head = model.words(head_phrase(paper.title, after_colon=a, before_preposition=b))
                return title, first + head * n, rest

            grouper._readings = readings
            figures = {
                "dev-tuning": accuracy(unseen(shipped, papers), papers, labels),
                "few-shot dev-tuning": accuracy(unseen(few_shot(shipped), papers), papers, labels),
                "guide-written": accuracy(unseen(shipped, written), written, written_labels),
            }
            results += accuracy_rows(name, figures)
    finally:
        grouper._readings = plain
    report("weighing a title's head phrase", "topics-head-phrase", results,
           {"dev_tuning_n": len(papers), "guide_written_n": len(written)})


if __name__ == "__main__":
    main()

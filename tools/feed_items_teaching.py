"""Add the feed items written for teaching to the shipped examples file.

Blog and news feeds carry items that are not research (a hiring post, a funding round, release
notes, a conference recap), and research told in a blog's voice. bench/data/teaching/feed-items.tsv
holds 360 such items written for teaching from the labelling guide (the brief:
tools/feed-items-brief.md): 260 labelled ``other``, 100 with their topic.

Writers of one kind invent alike, so an item whose title shares half its words with a title of
the measuring set of its kind (bench/data/feed-items.tsv) is left out, and so is one of four or
more words that shares half of them with a title of another measuring set of bench/data, or one
whose title is already in the examples file. The rest go at the end of config/topics-examples.tsv
at weight 1, replacing the lines a previous run added (those of a teaching title, written as
this script writes them: a renamed item leaves its old line, to delete by hand). Run
tools/build_shipped_model.py after it.

    python tools/feed_items_teaching.py
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from digest.identity import normalise_title  # noqa: E402
from digest.topics import model  # noqa: E402
from digest.topics.taxonomy import examples_file_rows  # noqa: E402

TEACHING = ROOT / "bench" / "data" / "teaching" / "feed-items.tsv"
MEASURING_OF_ITS_KIND = ROOT / "bench" / "data" / "feed-items.tsv"
EXAMPLES = ROOT / "config" / "topics-examples.tsv"


def resembles(words: set[str], others: list[set[str]]) -> bool:
    """Whether half of ``words`` or more are the words of one of ``others``."""
    return bool(words) and any(len(words & other) >= len(words) / 2 for other in others)


def added_before(line: str, taught: set[str]) -> bool:
    """Whether an examples-file line is one this script wrote: a teaching title, four fields,
    no weight."""
    fields = line.rstrip("\n").split("\t")
    return len(fields) == 4 and fields[3] == "" and normalise_title(fields[0]) in taught


def main() -> int:
    teaching = examples_file_rows(TEACHING)
    taught = {normalise_title(r.title) for r in teaching}
    header, *lines = EXAMPLES.read_text(encoding="utf-8").splitlines(keepends=True)
    lines = [line for line in lines if not added_before(line, taught)]
    listed = {normalise_title(line.split("\t", 1)[0]) for line in lines}
    measuring = [
        path for path in (*ROOT.glob("bench/data/*.tsv"), *ROOT.glob("bench/data/new-taxonomies/*/labels.tsv"))
        if path != MEASURING_OF_ITS_KIND
    ]
    # Every measuring set has the title first, as an examples file has.
    its_kind = [set(model.words(r.title)) for r in examples_file_rows(MEASURING_OF_ITS_KIND)]
    other_sets = [set(model.words(r.title)) for path in measuring for r in examples_file_rows(path)]
    measured = {
        normalise_title(r.title) for path in (*measuring, MEASURING_OF_ITS_KIND) for r in examples_file_rows(path)
    }
    added = []
    for row in teaching:
        words = set(model.words(row.title))
        if normalise_title(row.title) in listed | measured or resembles(words, its_kind):
            continue
        if len(words) >= 4 and resembles(words, other_sets):
            continue
        added.append(f"{row.title}\t{row.topic}\t{row.abstract}\t\n")
    EXAMPLES.write_text(header + "".join(lines) + "".join(added), encoding="utf-8")
    other = sum(line.split("\t")[1] == "other" for line in added)
    print(f"added {len(added)} of {len(teaching)} feed items ({other} other) to {EXAMPLES.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

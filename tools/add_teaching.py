"""Add papers written for teaching to the shipped examples file, less those like a measured one.

Writers of one kind invent alike (and papers of one listing share their words), so a line
whose title shares half its words with a title of the measuring set of its kind (``--its-kind``)
is left out, and so is one of four or more words that shares half of them with a title of any
other measuring set: those of bench/data, the well-known papers of the tests, and the dev labels
(../shared/topics/labels-dev.tsv or $DIGEST_SHARED/topics/labels-dev.tsv, both sides of the
frozen split; without them the script stops, unless told ``--without-dev-labels``). A line whose
title is already in the examples file or measured, or repeats one of the file, is left out too;
a line without a title or with no topic of the shipped taxonomy stops the script. The rest go at
the end of config/topics-examples.tsv at ``--weight``, replacing the lines a previous run added
from the same file (those of one of its titles, written as this script writes them, at any
weight: a renamed line leaves its old one, to delete by hand). With ``--words-only`` they teach
the word model only (the examples file's ``nearest`` column says ``no``): the meaning's
nearest-example search, and so a placement's "near the example", never sees them. Teaching
papers are real papers or written by helpers who saw only the labelling guide and a brief
(``bench/data/teaching/*.tsv``: title, topic, abstract). Run tools/build_shipped_model.py after it.

    python tools/add_teaching.py bench/data/teaching/feed-items.tsv --its-kind bench/data/feed-items.tsv
    python tools/add_teaching.py bench/data/teaching/border-lines.tsv
    python tools/add_teaching.py bench/data/teaching/listing-labelled.tsv --its-kind bench/data/listing-days.tsv \
        --words-only
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from digest.identity import normalise_title  # noqa: E402
from digest.topics import OTHER_CODE, default_taxonomy_path, load_taxonomy, model  # noqa: E402
from digest.topics.taxonomy import (  # noqa: E402
    MAX_WEIGHT,
    MIN_WEIGHT,
    NEAREST_VALUES,
    ExampleRow,
    example_weight,
    examples_file_rows,
)

EXAMPLES = ROOT / "config" / "topics-examples.tsv"
DEV_LABELS = Path(os.environ.get("DIGEST_SHARED", ROOT.parent / "shared")) / "topics" / "labels-dev.tsv"


def resembles(words: set[str], others: list[set[str]]) -> bool:
    """Whether half of ``words`` or more are the words of one of ``others``."""
    return bool(words) and any(len(words & other) >= len(words) / 2 for other in others)


def weight_field(weight: float) -> str:
    """The weight column as this script writes it: empty for the default weight of 1."""
    return "" if weight == 1 else f"{weight:g}"


def added_before(line: str, taught: set[str]) -> bool:
    """Whether an examples-file line is one this script wrote from the same teaching file: one
    of its titles, four or five fields, a weight column that is empty or a number (and a
    nearest column that the examples file allows)."""
    fields = line.rstrip("\r\n").split("\t")
    if len(fields) not in (4, 5) or normalise_title(fields[0]) not in taught:
        return False
    if len(fields) == 5 and fields[4].strip().lower() not in NEAREST_VALUES:
        return False
    return example_weight(fields[3].strip()) is not None


#: The columns of the lines this script writes, in order (an examples file names them in its header).
COLUMNS = ("title", "topic", "abstract", "weight", "nearest")


def with_nearest_column(header: str) -> str:
    """The examples file's header line, naming the ``nearest`` column this script writes;
    SystemExit when its columns are not those it writes, in that order (the loader finds
    columns by name, so lines written by position would be misread)."""
    names = tuple(name.strip().lower() for name in header.rstrip("\r\n").split("\t"))
    if names not in (COLUMNS[:4], COLUMNS):
        raise SystemExit(f"{EXAMPLES}: its header should name the columns {', '.join(COLUMNS)}, in that order")
    return "\t".join(COLUMNS) + "\n"


def measuring_sets(its_kind: Path | None, *, dev_labels: bool = True) -> list[Path]:
    """Every measuring set but ``its_kind``: bench/data's, the known papers, the dev labels
    (unless ``dev_labels`` is false). tests/test_topics_taxonomy.py holds the examples file
    apart from the same sets."""
    paths = [
        *ROOT.glob("bench/data/*.tsv"),
        *ROOT.glob("bench/data/new-taxonomies/*/labels.tsv"),
        ROOT / "tests" / "fixtures" / "known-papers.tsv",
    ]
    if dev_labels:
        paths.append(DEV_LABELS)
    return sorted(p for p in paths if its_kind is None or p.resolve() != its_kind.resolve())


def checked(teaching: Sequence[ExampleRow], path: Path) -> list[ExampleRow]:
    """The rows of a teaching file, each with a title and a topic of the shipped taxonomy (or
    ``other``), repeated titles once; SystemExit naming the line otherwise."""
    codes = {*load_taxonomy(default_taxonomy_path()).codes(), OTHER_CODE}
    seen: set[str] = set()
    rows = []
    for row in teaching:
        if not row.title or row.topic not in codes:
            raise SystemExit(f"{path}:{row.line}: needs a title and one of the topics {', '.join(sorted(codes))}")
        key = normalise_title(row.title)
        if key not in seen:
            seen.add(key)
            rows.append(row)
    return rows


def kept_rows(
    teaching: Sequence[ExampleRow], its_kind: Path | None, listed: set[str] | None = None, *, dev_labels: bool = True
) -> list[ExampleRow]:
    """The teaching rows like no measured paper (see the module docstring) and not ``listed``
    (normalised titles already in the examples file)."""
    # Every measuring set has the title first, as an examples file has.
    kind = [r.title for r in examples_file_rows(its_kind)] if its_kind else []
    others = [r.title for path in measuring_sets(its_kind, dev_labels=dev_labels) for r in examples_file_rows(path)]
    kind_words = [set(model.words(title)) for title in kind]
    other_words = [set(model.words(title)) for title in others]
    left_out = {normalise_title(title) for title in (*others, *kind)} | (listed or set())
    kept = []
    for row in teaching:
        words = set(model.words(row.title))
        if normalise_title(row.title) in left_out or resembles(words, kind_words):
            continue
        if len(words) >= 4 and resembles(words, other_words):
            continue
        kept.append(row)
    return kept


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("teaching", type=Path, help="a TSV of title, topic, abstract written for teaching")
    parser.add_argument(
        "--its-kind", type=Path, help="the measuring set written by writers of the same kind (a path from here)"
    )
    parser.add_argument("--weight", type=float, default=1.0, help="the weight of each line added (default 1)")
    parser.add_argument(
        "--words-only",
        action="store_true",
        help="the meaning's nearest-example search never sees the lines (they teach the word model)",
    )
    parser.add_argument(
        "--without-dev-labels", action="store_true", help="go on when the dev labels are not there to hold lines against"
    )
    args = parser.parse_args()
    if not MIN_WEIGHT <= args.weight <= MAX_WEIGHT:
        parser.error(f"--weight must be a number from {MIN_WEIGHT:g} to {MAX_WEIGHT:g}")
    for path in (args.teaching, args.its_kind):
        if path is not None and not path.is_file():
            parser.error(f"{path}: no such file")
    if not args.without_dev_labels and not DEV_LABELS.is_file():
        parser.error(f"{DEV_LABELS}: no dev labels to hold the lines against (set DIGEST_SHARED, or --without-dev-labels)")
    weight = weight_field(args.weight)
    teaching = checked(examples_file_rows(args.teaching), args.teaching)
    taught = {normalise_title(r.title) for r in teaching}
    header, *lines = EXAMPLES.read_text(encoding="utf-8").splitlines(keepends=True)
    lines = [line for line in lines if not added_before(line, taught)]
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    listed = {normalise_title(line.split("\t", 1)[0]) for line in lines}
    kept = kept_rows(teaching, args.its_kind, listed, dev_labels=not args.without_dev_labels)
    nearest = "no" if args.words_only else ""
    added = [f"{r.title}\t{r.topic}\t{r.abstract or ''}\t{weight}\t{nearest}\n" for r in kept]
    EXAMPLES.write_text(with_nearest_column(header) + "".join(lines) + "".join(added), encoding="utf-8")
    other = sum(line.split("\t")[1] == "other" for line in added)
    print(f"added {len(added)} of {len(teaching)} lines ({other} other) to {EXAMPLES.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Add papers written for teaching to the shipped examples file, less those like a measured one.

Teaching lines are written by helpers who saw only the labelling guide and a brief
(bench/data/teaching/*.tsv: title, topic, abstract). Writers of one kind invent alike, so a line
whose title shares half its words with a title of the measuring set of its kind (``--its-kind``)
is left out, and so is one of four or more words that shares half of them with a title of any
other measuring set: those of bench/data, the well-known papers of the tests, and the dev labels
(../shared/topics/labels-dev.tsv, both sides of the frozen split) where they are present. A line
whose title is already in the examples file or measured is left out too. The rest go at the end
of config/topics-examples.tsv at ``--weight``, replacing the lines a previous run added from the
same file (those of one of its titles, written as this script writes them: a renamed line leaves
its old one, to delete by hand). Run tools/build_shipped_model.py after it.

    python tools/add_teaching.py bench/data/teaching/feed-items.tsv --its-kind bench/data/feed-items.tsv
    python tools/add_teaching.py bench/data/teaching/border-lines.tsv
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from digest.identity import normalise_title  # noqa: E402
from digest.topics import model  # noqa: E402
from digest.topics.taxonomy import ExampleRow, examples_file_rows  # noqa: E402

EXAMPLES = ROOT / "config" / "topics-examples.tsv"
DEV_LABELS = ROOT.parent / "shared" / "topics" / "labels-dev.tsv"


def resembles(words: set[str], others: list[set[str]]) -> bool:
    """Whether half of ``words`` or more are the words of one of ``others``."""
    return bool(words) and any(len(words & other) >= len(words) / 2 for other in others)


def weight_field(weight: float) -> str:
    """The weight column as this script writes it: empty for the default weight of 1."""
    return "" if weight == 1 else f"{weight:g}"


def added_before(line: str, taught: set[str], weight: str) -> bool:
    """Whether an examples-file line is one this script wrote from the same teaching file: one
    of its titles, four fields, the weight column it writes."""
    fields = line.rstrip("\n").split("\t")
    return len(fields) == 4 and fields[3] == weight and normalise_title(fields[0]) in taught


def measuring_sets(its_kind: Path | None) -> list[Path]:
    """Every measuring set but ``its_kind``: bench/data's, the known papers, the dev labels."""
    paths = [
        *ROOT.glob("bench/data/*.tsv"),
        *ROOT.glob("bench/data/new-taxonomies/*/labels.tsv"),
        ROOT / "tests" / "fixtures" / "known-papers.tsv",
    ]
    if DEV_LABELS.is_file():
        paths.append(DEV_LABELS)
    return sorted(p for p in paths if its_kind is None or p.resolve() != its_kind.resolve())


def kept_rows(teaching: Sequence[ExampleRow], its_kind: Path | None, listed: set[str] | None = None) -> list[ExampleRow]:
    """The teaching rows like no measured paper (see the module docstring) and not ``listed``
    (normalised titles already in the examples file)."""
    others = measuring_sets(its_kind)
    # Every measuring set has the title first, as an examples file has.
    kind = [set(model.words(r.title)) for r in examples_file_rows(its_kind)] if its_kind else []
    other_titles = [set(model.words(r.title)) for path in others for r in examples_file_rows(path)]
    measured = {
        normalise_title(r.title) for path in (*others, *([its_kind] if its_kind else [])) for r in examples_file_rows(path)
    }
    left_out = measured | (listed or set())
    kept = []
    for row in teaching:
        words = set(model.words(row.title))
        if normalise_title(row.title) in left_out or resembles(words, kind):
            continue
        if len(words) >= 4 and resembles(words, other_titles):
            continue
        kept.append(row)
    return kept


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("teaching", type=Path, help="a TSV of title, topic, abstract written for teaching")
    parser.add_argument("--its-kind", type=Path, help="the measuring set written by writers of the same kind")
    parser.add_argument("--weight", type=float, default=1.0, help="the weight of each line added (default 1)")
    args = parser.parse_args()
    weight = weight_field(args.weight)
    teaching = examples_file_rows(args.teaching)
    taught = {normalise_title(r.title) for r in teaching}
    header, *lines = EXAMPLES.read_text(encoding="utf-8").splitlines(keepends=True)
    lines = [line for line in lines if not added_before(line, taught, weight)]
    listed = {normalise_title(line.split("\t", 1)[0]) for line in lines}
    added = [f"{r.title}\t{r.topic}\t{r.abstract}\t{weight}\n" for r in kept_rows(teaching, args.its_kind, listed)]
    EXAMPLES.write_text(header + "".join(lines) + "".join(added), encoding="utf-8")
    other = sum(line.split("\t")[1] == "other" for line in added)
    print(f"added {len(added)} of {len(teaching)} lines ({other} other) to {EXAMPLES.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Whose are the grouper's misplacements: the grouper's, or the labels'?

``make DIR`` writes the papers of the dev labels' tuning part that the shipped grouper misplaces
to ``DIR/papers.tsv`` (id, title, abstract, and the label and the grouper's answer as ``A`` and
``B`` in a random order), the labelling guide beside them, and which is which to
``DIR/key.tsv`` (and the commit of the grouper to ``DIR/grouper.txt``). A reader who sees nothing else (the guide, the paper, the two codes) answers in
``DIR/answers.tsv``: ``id``, ``answer`` (``A`` or ``B``, with ``?`` when the other is
defensible, or ``neither:<code>``) and ``reason``. ``score DIR`` counts whom the reader sided
with and saves bench/results/topics-misses-audit.json.

DIR should lie outside the repository: the abstracts come from the seed snapshots.

    python bench/topics_misses_audit.py make /tmp/audit
    python bench/topics_misses_audit.py score /tmp/audit
"""

from __future__ import annotations

import argparse
import csv
import random
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from digest.topics import default_taxonomy_path, load_taxonomy  # noqa: E402
from _common import Row, report  # noqa: E402
from tests.seed_papers import LABELS  # noqa: E402
from topics import dev_papers, read_tsv, unseen  # noqa: E402

GUIDE = LABELS.with_name("taxonomy.md")


def make(folder: Path) -> None:
    """The blind pairs of the misplaced tuning papers, the guide and the key, in ``folder``."""
    papers, labels = dev_papers(frozen=False)
    placed = unseen(load_taxonomy(default_taxonomy_path()), papers).place_all(papers)
    rng = random.Random(13)
    rows: list[list[object]] = []
    key: list[list[object]] = []
    for paper, label, placement in zip(papers, labels, placed):
        if placement.topic == label:
            continue
        first, second = (label, placement.topic) if rng.random() < 0.5 else (placement.topic, label)
        number = len(rows) + 1
        rows.append([number, paper.title, " ".join(paper.abstract.split()), first, second])
        key.append([number, label, placement.topic, "A" if first == label else "B"])
    folder.mkdir(parents=True, exist_ok=True)
    for name, header, lines in (("papers.tsv", ["id", "title", "abstract", "A", "B"], rows),
                                ("key.tsv", ["id", "label", "grouper", "label_is"], key)):
        with (folder / name).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, delimiter="\t")
            writer.writerow(header)
            writer.writerows(lines)
    shutil.copyfile(GUIDE, folder / "guide.md")
    (folder / "grouper.txt").write_text(grouper_version() + "\n", encoding="utf-8")
    print(f"wrote {len(rows)} misplaced papers of {len(papers)} to {folder}/papers.tsv (the key: key.tsv)")


def score(folder: Path) -> None:
    """Whom the reader's answers side with, clear and leaning."""
    key = {row["id"]: row for row in read_tsv(folder / "key.tsv")}
    sided: Counter[str] = Counter()
    answers = read_tsv(folder / "answers.tsv")
    unanswered = set(key) - {answer["id"] for answer in answers}
    if unanswered:
        print(f"answers.tsv: no answer for {len(unanswered)} of the {len(key)} papers", file=sys.stderr)
    for answer in answers:
        said = answer["answer"].strip()
        side = said.rstrip("?")
        if side.startswith("neither"):
            sided["neither"] += 1
            continue
        if side not in ("A", "B"):
            sys.exit(f"answers.tsv: id {answer['id']}: {said!r} is not A, B, A?, B? or neither:<code>")
        whom = "label" if side == key[answer["id"]]["label_is"] else "grouper"
        sided[f"{whom} ({'leaning' if said.endswith('?') else 'clear'})"] += 1
    rows = [Row(f"the reader sides with the {what}", float(n), "papers", better="higher") for what, n in sorted(sided.items())]
    made_with = (folder / "grouper.txt").read_text(encoding="utf-8").strip()
    report("whose are the grouper's misplacements", "topics-misses-audit", rows,
           {"misplaced": len(key), "grouper": made_with})


def grouper_version() -> str:
    """The commit whose grouper misplaced the papers (and whether the tree differed from it)."""
    described = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                               capture_output=True, text=True, check=False)
    return described.stdout.strip() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("make", "score"))
    parser.add_argument("folder", type=Path)
    args = parser.parse_args()
    (make if args.step == "make" else score)(args.folder)


if __name__ == "__main__":
    main()

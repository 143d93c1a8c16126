"""Measure self-teaching for taxonomies with few examples; print the figures, save
bench/results/topics-selfteach.json.

A new taxonomy (descriptions and a handful of examples per topic) is the weak case of the
grouper: 0.545 on the dev labels with five examples per topic (bench/topics.py, ``few-shot``).
Self-teaching is the classic semi-supervised step: the taxonomy's grouper places a pool of
unlabelled papers (the shipped examples file read *without its labels*: ML titles and
out-of-scope abstracts, less every dev-labelled title of either split), the ``--per-class``
surest placements of each class (largest margin over the runner-up) become examples, and the
grouper learns again.

It is measured on the tuning part of the dev labels only (never the frozen split), and on the
held-out out-of-scope papers read from their text alone, for three taxonomies: the first,
second and third five inline examples of each topic, and all the inline examples.

This is an experiment, not a feature of the grouper: the gain depends on Other getting its
share of the pool's out-of-scope papers, and on the pool holding papers of every topic; see
docs/topics.md.

    python bench/topics_selfteach.py [--per-class N ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from digest.identity import normalise_title  # noqa: E402
from digest.topics import OTHER_CODE, Grouper, Taxonomy, Topic, default_taxonomy_path, load_taxonomy  # noqa: E402
from digest.models import Paper  # noqa: E402
from digest.topics.taxonomy import Example  # noqa: E402
from tests.seed_papers import label_rows  # noqa: E402
from _common import Row, report  # noqa: E402
from topics import DATA, accuracy, dev_papers, outside_papers  # noqa: E402

def cut(shipped: Taxonomy, start: int, stop: int | None) -> Taxonomy:
    """The shipped taxonomy with inline examples ``start:stop`` of each topic and no examples file."""
    topics = tuple(
        Topic(t.code, t.title, t.description, (), t.examples[start:stop], t.categories, t.wins_over) for t in shipped.topics
    )
    return Taxonomy(topics, shipped.path, shipped.other)


def self_taught(taxonomy: Taxonomy, pool: list[Example], per_class: int) -> Taxonomy:
    """``taxonomy`` plus the ``per_class`` surest of its own placements of each class in ``pool``."""
    papers = [Paper(title=e.title, abstract=e.abstract) for e in pool]
    placed = Grouper(taxonomy).place_all(papers)
    chosen: list[Example] = []
    for code in (*taxonomy.codes(), OTHER_CODE):
        rows = sorted(
            (i for i, p in enumerate(placed) if p.topic == code),
            key=lambda i: placed[i].runner_up_score - placed[i].score,
        )
        chosen += [dataclasses.replace(pool[i], topic=code) for i in rows[:per_class]]
    return dataclasses.replace(taxonomy, extra_examples=taxonomy.extra_examples + tuple(chosen))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, nargs="+", default=[60, 100])
    args = parser.parse_args()
    shipped = load_taxonomy(default_taxonomy_path())
    every_dev_title = {normalise_title(r["title"]) for r in label_rows()}
    pool = [e for e in shipped.extra_examples if normalise_title(e.title) not in every_dev_title]
    papers, labels = dev_papers(frozen=False)
    outside = outside_papers(DATA / "heldout-other.tsv", with_categories=False)

    def measure(taxonomy: Taxonomy) -> dict[str, float]:
        grouper = Grouper(taxonomy)
        return {
            "dev_tuning": accuracy(grouper, papers, labels)["accuracy"],  # type: ignore[dict-item]
            "out_of_scope_text_only": accuracy(grouper, outside, [OTHER_CODE] * len(outside))["accuracy"],  # type: ignore[dict-item]
        }

    taxonomies = {f"examples[{a}:{a + 5}]": cut(shipped, a, a + 5) for a in (0, 5, 10)}
    taxonomies["all inline examples"] = cut(shipped, 0, None)
    rows: list[Row] = []
    for name, whole in taxonomies.items():
        taxonomy = whole.without_examples(every_dev_title)
        variants = {"taught only": taxonomy}
        variants.update({f"self-taught, {n} per class": self_taught(taxonomy, pool, n) for n in args.per_class})
        for label, variant in variants.items():
            figures = measure(variant)
            rows.append(Row(f"{name}, {label}: dev-tuning accuracy", figures["dev_tuning"], "", better="higher"))
            rows.append(Row(f"{name}, {label}: out-of-scope to Other (text)", figures["out_of_scope_text_only"], "",
                            better="higher"))
    report("self-teaching a taxonomy with few examples", "topics-selfteach", rows,
           {"pool": len(pool), "dev_tuning_n": len(papers), "out_of_scope_n": len(outside)})


if __name__ == "__main__":
    main()

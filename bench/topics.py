"""Benchmark and measure the topic grouper; print the figures, save bench/results/topics.json.

Speed: 1,000 papers (the seed papers cycled, their words perturbed so every copy is new text,
or synthetic papers without ../shared) placed by a fresh Grouper per run, whose learned model
comes from the cache folder as in every run after the first; the first, cold learning is timed
once on its own.

Quality, always on papers the grouper was not taught with (a taxonomy example that is also a
measured paper is left out first, and so is a paper of the background, the unlabelled papers
the grouper's IDFs are counted over):

* ``dev-tuning``: the dev labels (../shared/topics/labels-dev.tsv) less the frozen third;
* ``dev-frozen``: that frozen third (bench/topics_split.py), only with ``--frozen``: it is
  computed once, at the end of a piece of work, never while tuning;
* ``held-out-titles``: 1,137 titles of public curated paper lists kept out of the shipped
  examples (bench/data/heldout-ml.tsv: a fifth of what was collected, by hash);
* ``out-of-scope``: 347 arXiv papers outside ML (bench/data/heldout-other.tsv, a third kept out
  of the shipped examples) and 20 written in today's style (bench/data/out-of-scope-modern.tsv):
  the share placed in Other with their categories and from the text alone;
* ``applied-ml``: ML methods applied to other fields, primary category outside ML
  (bench/data/applied-ml.tsv): where they go;
* ``known-papers``: 66 famous papers, titles only (tests/fixtures/known-papers.tsv);
* ``listing-days``: 320 real papers of a year of a public daily arXiv listing of efficient-LLM
  work (cs.LG, cs.AI, cs.CL, cs.DC; titles and the abstracts' first 300 characters, as the
  listing shows them), labelled from the guide by two readers and a third where they differed
  (bench/data/listing-days.tsv, see bench/data/README.md): the closest to the listings of the
  seeds that no one here tuned on (4,065 other papers of the same listing's year, labelled
  alike, are words-only lines of the shipped examples file, which flatters it somewhat);
  measured with the listing's category and without, less its frozen third (as the dev
  labels' split); with ``--frozen`` that third too;
* ``feed-items``: what blog and news feeds carry (bench/data/feed-items.tsv): 120 items that are
  not research (hiring, company news, events, release notes, newsletters, courses, notices,
  personal posts), to Other, and 60 research posts, to their topics;
* ``arxiv-day``: an invented day of a listing of every field, written from the labelling guide
  alone (bench/data/arxiv-day-*.tsv, see bench/data/README.md), less its frozen third: papers
  outside computer science (the share in Other, with their categories and from the text alone;
  those that use machine learning as a tool apart, where the guide sends them to
  ``applications``), and papers of primary cs.CV and cs.CL of every kind (accuracy and the
  share in Other; the file's four eess.IV papers are not measured);
  with ``--frozen`` its frozen third too;
* ``guide-written``: papers (title and abstract) written for this purpose from the labelling
  guide alone, by writers who saw no dev label, seed or example (bench/data/guide-written.tsv,
  see bench/data/README.md); never used while tuning;
* ``few-shot``: the shipped taxonomy cut to descriptions and five examples per topic (no
  examples file), on ``dev-tuning`` (and ``dev-frozen``, ``guide-written``): what a new
  taxonomy gets before it is taught; it teaches itself from the background (see
  ``SELF_TEACH_BELOW`` in digest/topics/taxonomy.py), and ``few-shot, not self-taught`` is the
  same with ``self_teaching = false``;
* ``inline examples only``: the shipped taxonomy without its examples file (descriptions and
  its 16 to 52 inline examples per topic, self-taught), on the same papers.

    python bench/topics.py [--papers N] [--runs R] [--frozen]
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from digest.identity import normalise_title  # noqa: E402
from digest.models import Paper  # noqa: E402
from digest.topics import OTHER_CODE, Grouper, Taxonomy, Topic, default_taxonomy_path, load_taxonomy  # noqa: E402
from digest.topics.cache import fingerprint  # noqa: E402
from digest.topics.grouper import BACKGROUND  # noqa: E402
from tests.seed_papers import LABELS, SEEDS, label_rows, load_seed_papers  # noqa: E402
from topics_split import is_frozen  # noqa: E402
from _common import Row  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "topics.json"
DATA = ROOT / "bench" / "data"
KNOWN = ROOT / "tests" / "fixtures" / "known-papers.tsv"


def perturb(text: str, copy: int, rng: random.Random) -> str:
    """Give about one word in six a copy-specific spelling: new words for every copy."""
    if copy == 0:
        return text
    return " ".join(f"{w}{copy}" if rng.random() < 1 / 6 else w for w in text.split())


def make_papers(n: int) -> list[Paper]:
    """``n`` papers: the seed papers cycled and perturbed, or synthesised from the taxonomy."""
    rng = random.Random(7)
    base = load_seed_papers() if SEEDS.is_dir() else []
    if not base:
        words = [w for t in load_taxonomy(default_taxonomy_path()).topics for w in t.description.split()]
        base = [Paper(title=" ".join(rng.sample(words, 8)), abstract=" ".join(rng.sample(words, 150))) for _ in range(100)]
    papers = []
    for i in range(n):
        seed, copy = base[i % len(base)], i // len(base)
        papers.append(Paper(
            title=f"{perturb(seed.title, copy, rng)} ({copy})" if copy else seed.title,
            abstract=perturb(seed.abstract, copy, rng),
            source="bench",
            position=i,
        ))
    return papers


def time_grouping(papers: list[Paper], runs: int) -> dict[str, object]:
    """Seconds to learn the shipped taxonomy cold (once), then to place all papers with a fresh
    Grouper whose model comes from the cache, per run."""
    taxonomy = load_taxonomy(default_taxonomy_path())
    with tempfile.TemporaryDirectory() as cache:
        os.environ["XDG_CACHE_HOME"] = cache
        start = time.perf_counter()
        Grouper(taxonomy).place_all(papers[:1])
        cold = time.perf_counter() - start
        from digest.topics import cache as learned

        warm = []
        for _ in range(runs):
            learned._MEMORY.clear()  # as a new process: the model is read from the cache file
            start = time.perf_counter()
            Grouper(taxonomy).place_all(papers)
            warm.append(time.perf_counter() - start)
    return {
        "learn_cold_s": round(cold, 2),
        "place_s": {"best": round(min(warm), 4), "median": round(statistics.median(warm), 4)},
        "papers_per_s": round(len(papers) / statistics.median(warm)),
    }


def accuracy(grouper: Grouper, papers: Sequence[Paper], labels: Sequence[str]) -> dict[str, object]:
    """Accuracy, macro-F1, where the papers went, and Other's precision and recall when some
    (not all) of the labels are Other."""
    placed = [p.topic for p in grouper.place_all(papers)]
    right = sum(p == g for p, g in zip(placed, labels))
    f1s = []
    for code in set(labels):
        tp = sum(p == g == code for p, g in zip(placed, labels))
        precision = tp / max(1, placed.count(code))
        recall = tp / max(1, labels.count(code))
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    figures: dict[str, object] = {
        "n": len(papers),
        "accuracy": round(right / max(1, len(papers)), 3),
        "macro_f1": round(sum(f1s) / max(1, len(f1s)), 3),
        "other_share": round(placed.count(OTHER_CODE) / max(1, len(papers)), 3),
        "placed": dict(Counter(placed).most_common()),
    }
    if OTHER_CODE in labels and set(labels) != {OTHER_CODE}:
        both = sum(p == g == OTHER_CODE for p, g in zip(placed, labels))
        figures["other_precision"] = round(both / max(1, placed.count(OTHER_CODE)), 3)
        figures["other_recall"] = round(both / labels.count(OTHER_CODE), 3)
    return figures


def unseen(taxonomy: Taxonomy, papers: Sequence[Paper]) -> Grouper:
    """A grouper of ``taxonomy`` less the examples that are among ``papers``, and with none of
    them in the background its IDFs are counted over either."""
    titles = {normalise_title(p.title) for p in papers}
    return Grouper(taxonomy.without_examples(titles), background=background_without(titles))


_BACKGROUNDS = tempfile.TemporaryDirectory(prefix="digest-bench-background-")


def background_without(titles: set[str]) -> Path:
    """A copy of the grouper's background less the papers whose normalised title is in ``titles``."""
    path = Path(_BACKGROUNDS.name) / f"{fingerprint(sorted(titles))}.tsv"
    if not path.exists():
        header, *rows = BACKGROUND.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [row for row in rows if normalise_title(row.split("\t", 1)[0]) not in titles]
        path.write_text(header + "".join(kept), encoding="utf-8")
    return path


def dev_papers(frozen: bool) -> tuple[list[Paper], list[str]]:
    """The labelled dev papers of one side of the frozen split, with their labels."""
    by_title = {normalise_title(p.title): p for p in load_seed_papers()}
    papers, labels = [], []
    for row in label_rows():
        paper = by_title.get(normalise_title(row["title"]))
        if paper is not None and is_frozen(row["title"]) == frozen:
            papers.append(paper)
            labels.append(row["topic"])
    return papers, labels


def guide_written() -> tuple[list[Paper], list[str]]:
    """The papers written from the labelling guide (title and abstract), with their labels."""
    rows = read_tsv(DATA / "guide-written.tsv")
    return [Paper(title=r["title"], abstract=r["abstract"]) for r in rows], [r["topic"] for r in rows]


def held_out_titles() -> tuple[list[Paper], list[str]]:
    """The held-out titles of public paper lists (titles only), with their list labels."""
    rows = read_tsv(DATA / "heldout-ml.tsv")
    return [Paper(title=r["title"]) for r in rows], [r["topic"] for r in rows]


def read_tsv(path: Path) -> list[dict[str, str]]:
    """The rows of a TSV with a header line."""
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


def outside_papers(path: Path, *, with_categories: bool) -> list[Paper]:
    """Papers of a TSV of title, abstract, categories."""
    return papers_of_rows(read_tsv(path), with_categories=with_categories)


def papers_of_rows(rows: Sequence[dict[str, str]], *, with_categories: bool) -> list[Paper]:
    """Papers of TSV rows with a title, an abstract and categories (left out unless asked for)."""
    return [
        Paper(title=r["title"], abstract=r["abstract"], categories=tuple(r["categories"].split()) if with_categories else ())
        for r in rows
    ]


def few_shot(taxonomy: Taxonomy, start: int = 0, stop: int | None = 5) -> Taxonomy:
    """The taxonomy cut to its descriptions and inline examples ``start:stop`` of each topic
    (the first five unless told), without its examples file and keywords."""
    topics = tuple(
        Topic(t.code, t.title, t.description, (), t.examples[start:stop], t.categories, t.wins_over)
        for t in taxonomy.topics
    )
    return Taxonomy(topics, taxonomy.path, taxonomy.other)


def new_taxonomies(shipped: Taxonomy) -> dict[str, Taxonomy]:
    """The shipped taxonomy cut as a new user's would be: five examples per topic (self-taught,
    and not), and all its inline examples without the examples file."""
    five = few_shot(shipped)
    return {
        "few-shot": five,
        "few-shot, not self-taught": dataclasses.replace(five, self_teaching=False),
        "inline examples only": few_shot(shipped, 0, None),
    }


def new_taxonomies_on(
    shipped: Taxonomy, papers: Sequence[Paper], labels: Sequence[str], suffix: str
) -> dict[str, dict[str, object]]:
    """The figures of each of :func:`new_taxonomies` on ``papers``, named "<taxonomy><suffix>"."""
    return {
        f"{name}{suffix}": accuracy(unseen(taxonomy, papers), papers, labels)
        for name, taxonomy in new_taxonomies(shipped).items()
    }


def quality(include_frozen: bool) -> dict[str, object]:
    """Every measure of the module docstring that the data here allows."""
    shipped = load_taxonomy(default_taxonomy_path())
    results: dict[str, object] = {}
    if LABELS.is_file():
        papers, labels = dev_papers(frozen=False)
        results["dev-tuning"] = accuracy(unseen(shipped, papers), papers, labels)
        results.update(new_taxonomies_on(shipped, papers, labels, ""))
        if include_frozen:
            papers, labels = dev_papers(frozen=True)
            results["dev-frozen"] = accuracy(unseen(shipped, papers), papers, labels)
            results.update(new_taxonomies_on(shipped, papers, labels, " (dev-frozen)"))
    papers, labels = guide_written()
    results["guide-written"] = accuracy(unseen(shipped, papers), papers, labels)
    results.update(new_taxonomies_on(shipped, papers, labels, " (guide-written)"))
    papers, labels = held_out_titles()
    results["held-out-titles"] = accuracy(unseen(shipped, papers), papers, labels)
    for name in ("heldout-other", "out-of-scope-modern"):
        for with_categories in (True, False):
            papers = outside_papers(DATA / f"{name}.tsv", with_categories=with_categories)
            key = f"{name}{'' if with_categories else ' (text only)'}"
            results[key] = accuracy(unseen(shipped, papers), papers, [OTHER_CODE] * len(papers))
    papers = outside_papers(DATA / "applied-ml.tsv", with_categories=True)
    results["applied-ml"] = accuracy(unseen(shipped, papers), papers, ["applications"] * len(papers))
    rows = read_tsv(KNOWN)
    papers = [Paper(title=r["title"]) for r in rows]
    results["known-papers"] = accuracy(unseen(shipped, papers), papers, [r["topic"] for r in rows])
    results.update(listing_days(shipped, frozen=False))
    if include_frozen:
        results.update(listing_days(shipped, frozen=True))
    results.update(feed_items(shipped))
    results.update(arxiv_day(shipped, frozen=False))
    if include_frozen:
        results.update(arxiv_day(shipped, frozen=True))
    return results


def listing_days(taxonomy: Taxonomy, *, frozen: bool) -> dict[str, dict[str, object]]:
    """The real papers of a year of a daily listing, one side of their frozen split, with the
    listing's category and from the text alone."""
    rows = [r for r in read_tsv(DATA / "listing-days.tsv") if is_frozen(r["title"]) == frozen]
    labels = [r["topic"] for r in rows]
    results: dict[str, dict[str, object]] = {}
    for with_categories in (True, False):
        papers = papers_of_rows(rows, with_categories=with_categories)
        key = f"listing-days{'' if with_categories else ' (text only)'}{' (frozen)' if frozen else ''}"
        results[key] = accuracy(unseen(taxonomy, papers), papers, labels)
    return results


def feed_items(taxonomy: Taxonomy) -> dict[str, dict[str, object]]:
    """The items of blog and news feeds: those that are not research (to Other), and research
    posts (to their topics)."""
    rows = read_tsv(DATA / "feed-items.tsv")
    results: dict[str, dict[str, object]] = {}
    for name, research in (("feed-items not research", False), ("feed-items research", True)):
        kept = [r for r in rows if (r["kind"] == "research") == research]
        papers = [Paper(title=r["title"], abstract=r["abstract"]) for r in kept]
        results[name] = accuracy(unseen(taxonomy, papers), papers, [r["topic"] for r in kept])
    return results


def arxiv_day(taxonomy: Taxonomy, *, frozen: bool) -> dict[str, dict[str, object]]:
    """The invented arXiv day, one side of its frozen split: outside-field papers with and without
    machine learning as a tool, and cs.CV / cs.CL papers, each with and without categories."""
    side = " (frozen)" if frozen else ""
    results: dict[str, dict[str, object]] = {}
    outside = [r for r in read_tsv(DATA / "arxiv-day-outside.tsv") if is_frozen(r["title"]) == frozen]
    computer = [r for r in read_tsv(DATA / "arxiv-day-cs.tsv") if is_frozen(r["title"]) == frozen]
    for with_categories in (True, False):
        how = "" if with_categories else " (text only)"
        for name, ml_tool, label in (("outside", "no", OTHER_CODE), ("outside ML-applied", "yes", "applications")):
            papers = papers_of_rows([r for r in outside if r["ml_tool"] == ml_tool], with_categories=with_categories)
            results[f"arxiv-day {name}{how}{side}"] = accuracy(unseen(taxonomy, papers), papers, [label] * len(papers))
        for primary in ("cs.CV", "cs.CL"):
            rows = [r for r in computer if r["categories"].split()[0] == primary]
            papers = papers_of_rows(rows, with_categories=with_categories)
            results[f"arxiv-day {primary}{how}{side}"] = accuracy(unseen(taxonomy, papers), papers, [r["topic"] for r in rows])
    return results


def tuning_figures(taxonomy: Taxonomy, *, few_shot_too: bool = False) -> dict[str, dict[str, object]]:
    """A variant's figures on the tuning splits only, as the bench scripts that choose between
    variants measure them: the dev labels' tuning part (and, if asked, with the taxonomy cut to
    five examples per topic), the guide-written papers, the listing days' tuning part and the
    invented day's tuning part, text only."""
    papers, labels = dev_papers(frozen=False)
    written, written_labels = guide_written()
    figures = {"dev-tuning": accuracy(unseen(taxonomy, papers), papers, labels)}
    if few_shot_too:
        figures["few-shot dev-tuning"] = accuracy(unseen(few_shot(taxonomy), papers), papers, labels)
    figures["guide-written"] = accuracy(unseen(taxonomy, written), written, written_labels)
    figures.update(listing_days(taxonomy, frozen=False))
    day = arxiv_day(taxonomy, frozen=False)
    figures.update({key: value for key, value in day.items() if "text only" in key})
    return figures


def other_border_figures(taxonomy: Taxonomy) -> dict[str, dict[str, object]]:
    """A variant's figures on Other's borders, as the teaching benches measure them: the
    out-of-scope arXiv papers from their text (to Other), and the feed items (those that are
    not research to Other, research posts to their topics)."""
    outside = outside_papers(DATA / "heldout-other.tsv", with_categories=False)
    figures = {"heldout-other (text only)": accuracy(unseen(taxonomy, outside), outside, [OTHER_CODE] * len(outside))}
    figures.update(feed_items(taxonomy))
    return figures


def accuracy_rows(variant: str, figures: dict[str, dict[str, object]]) -> list[Row]:
    """A variant's accuracies as rows of a results table, named "<variant>: <measure> accuracy"."""
    return [
        Row(f"{variant}: {measure} accuracy", float(value["accuracy"]), "", better="higher")  # type: ignore[arg-type]
        for measure, value in figures.items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--frozen", action="store_true", help="also measure the frozen split (once, at the end of a piece of work)")
    args = parser.parse_args()
    papers = make_papers(args.papers)
    speed = time_grouping(papers, args.runs)
    measured = quality(args.frozen)
    result = {
        "papers": len(papers),
        "runs": args.runs,
        **speed,
        "target_s_per_1000": 0.5,
        "load_average_1min": round(os.getloadavg()[0], 2),  # other work on the machine skews timings
        "python": platform.python_version(),
        "machine": platform.machine(),
        "quality": measured,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    place = speed["place_s"]
    assert isinstance(place, dict)
    print(f"placed {len(papers)} papers: median {place['median'] * 1000:.0f} ms, best {place['best'] * 1000:.0f} ms "
          f"(model from the cache); learning the shipped taxonomy cold: {speed['learn_cold_s']} s")
    for name, figures in measured.items():
        assert isinstance(figures, dict)
        print(f"{name:32} n={figures['n']:5}  accuracy {figures['accuracy']:.3f}  macro-F1 {figures['macro_f1']:.3f}  "
              f"Other {figures['other_share']:.3f}")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

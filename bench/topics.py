"""Benchmark the topic grouper: group 1,000 papers, print papers/s, save bench/results/topics.json.

The 1,000 papers cycle through the seed snapshots (../shared/seeds) with each copy's words
perturbed, so the grouper meets new vocabulary as it would on a real day; without the seeds
it synthesises papers from the taxonomy's own words.  Each run builds a fresh Grouper (its
word cache starts cold) and groups all papers with group_papers(); the best and the median
of several runs are reported.  With ../shared present it also records the agreement with the
dev labels.

    python bench/topics.py [--papers N] [--runs R]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from digest.models import Paper  # noqa: E402
from digest.topics import (  # noqa: E402
    Grouper,
    default_taxonomy_path,
    evaluate,
    group_papers,
    label_snapshot_files,
    load_taxonomy,
)
from tests.seed_papers import LABELS, SEEDS, load_seed_papers  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "topics.json"


def perturb(text: str, copy: int, rng: random.Random) -> str:
    """Give about one word in six a copy-specific spelling: new words for the cache."""
    if copy == 0:
        return text
    return " ".join(f"{w}{copy}" if rng.random() < 1 / 6 else w for w in text.split())


def make_papers(n: int) -> list[Paper]:
    """``n`` papers: the seed papers cycled and perturbed, or synthesised from the taxonomy."""
    rng = random.Random(7)
    base = load_seed_papers() if SEEDS.is_dir() else []
    if not base:
        words = [w for t in load_taxonomy(default_taxonomy_path()).topics
                 for w in (t.description + " " + " ".join(t.keywords)).split()]
        base = [Paper(title=" ".join(rng.sample(words, 8)), abstract=" ".join(rng.sample(words, 150)))
                for _ in range(100)]
    papers = []
    for i in range(n):
        seed, copy = base[i % len(base)], i // len(base)
        papers.append(Paper(
            title=f"{perturb(seed.title, copy, rng)} ({copy})" if copy else seed.title,
            abstract=perturb(seed.abstract, copy, rng),
            source="bench",
            position=i,
            upvotes=rng.randint(0, 200),
        ))
    return papers


def time_grouping(papers: list[Paper], runs: int) -> tuple[list[float], list[float]]:
    """Seconds to build the grouper and to group all papers, per run."""
    taxonomy = load_taxonomy(default_taxonomy_path())
    builds, groupings = [], []
    for _ in range(runs):
        start = time.perf_counter()
        grouper = Grouper(taxonomy)
        built = time.perf_counter()
        group_papers(papers, grouper)
        done = time.perf_counter()
        builds.append(built - start)
        groupings.append(done - built)
    return builds, groupings


def quality() -> dict[str, object] | None:
    """Agreement with the dev labels, if ../shared is there."""
    if not LABELS.is_file():
        return None
    grouper = Grouper(load_taxonomy(default_taxonomy_path()))
    report = evaluate(LABELS, load_seed_papers(list(label_snapshot_files(LABELS))), grouper)
    return {
        "labels": "labels-dev.tsv",
        "n": report.n,
        "accuracy": round(report.accuracy, 3),
        "macro_f1": round(report.macro_f1, 3),
        "other_share": round(report.other_share, 3),
        "per_topic_f1": {s.code: round(s.f1, 3) for s in report.topics},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    papers = make_papers(args.papers)
    builds, groupings = time_grouping(papers, args.runs)
    total = [b + g for b, g in zip(builds, groupings)]
    best, median = min(total), statistics.median(total)
    result = {
        "papers": len(papers),
        "runs": args.runs,
        "build_s": {"best": round(min(builds), 4), "median": round(statistics.median(builds), 4)},
        "group_s": {"best": round(min(groupings), 4), "median": round(statistics.median(groupings), 4)},
        "total_s": {"best": round(best, 4), "median": round(median, 4)},
        "papers_per_s": {"best": round(len(papers) / best), "median": round(len(papers) / median)},
        "target_s_per_1000": 0.5,
        "load_average_1min": round(os.getloadavg()[0], 2),  # other work on the machine skews timings
        "python": platform.python_version(),
        "machine": platform.machine(),
        "quality": quality(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"grouped {len(papers)} papers: best {best * 1000:.0f} ms, median {median * 1000:.0f} ms "
          f"(build {min(builds) * 1000:.0f} ms) -> {len(papers) / median:,.0f} papers/s (median)")
    if result["quality"]:
        q = result["quality"]
        assert isinstance(q, dict)
        print(f"dev labels: accuracy {q['accuracy']}, macro-F1 {q['macro_f1']}, Other {q['other_share']}")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

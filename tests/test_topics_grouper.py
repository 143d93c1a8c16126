"""The grouper: one topic (or Other) per paper, decided by what the topics file teaches, arXiv
categories and tie-break rules, with the evidence a reader sees; what it learned is cached."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from digest.errors import ConfigError
from digest.identity import normalise_title
from digest.models import Paper, Placement
from digest.topics import (
    OTHER_CODE,
    Grouper,
    add_example,
    default_taxonomy_path,
    explain,
    group_papers,
    load_taxonomy,
)
from digest.topics import grouper as grouper_module
from digest.topics.grouper import ML_EVIDENCE, description_items, teaching

FIXTURES = Path(__file__).parent / "fixtures"
CUSTOM = FIXTURES / "custom-topics.toml"


def paper(title: str, abstract: str = "", *categories: str, **fields: object) -> Paper:
    return Paper(title=title, abstract=abstract, categories=categories, **fields)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def grouper() -> Grouper:
    """The shipped taxonomy (learned once per test session, then served by the cache)."""
    return Grouper(load_taxonomy(default_taxonomy_path()))


@pytest.fixture(scope="module")
def custom() -> Grouper:
    """A user's own taxonomy: three topics from descriptions and three examples each."""
    return Grouper(load_taxonomy(CUSTOM))


RECIPES = paper(
    "Sourdough Bread Recipes from Small Bakeries",
    "We collect bread recipes from bakeries, compare flour, hydration and baking times, and "
    "describe how the crust and the crumb depend on them.",
)
PROOF = paper(
    "On the Divisibility of Class Numbers of Imaginary Quadratic Fields",
    "We prove that for every odd prime p there are infinitely many imaginary quadratic fields "
    "whose class number is divisible by p, using an explicit lower bound on the discriminant, a "
    "lemma of Siegel and the theory of genus characters.",
)
TOP_TAGGING = "Tagging boosted top quarks at the LHC"
PHYSICS_ABSTRACT = (
    "We compute the jet mass distribution of boosted top-quark jets at next-to-leading "
    "logarithmic accuracy in perturbative QCD, including non-global logarithms, and compare "
    "with ATLAS and CMS measurements at 13 TeV."
)
PASSING_ML_ABSTRACT = (
    "We study boosted top-quark jets at 13 TeV in perturbative QCD and compare the jet mass "
    "distribution with the output of a neural network tagger trained on simulated events."
)
# Half physics, half machine learning: within the topics by its text, though not surely.
HALF_ML_ABSTRACT = (
    "We train a graph neural network on simulated collision events to tag jets from top quarks, "
    "and compare it with the jet mass distribution predicted by perturbative QCD."
)
ML_ABSTRACT = (
    "We apply deep learning to jet tagging: a graph neural network trained on simulated "
    "collision events classifies jets from top quarks, W bosons and QCD background, and "
    "outperforms boosted decision trees."
)


# ---------------------------------------------------------------------------- one topic per paper


def test_every_paper_lands_in_exactly_one_group(grouper: Grouper) -> None:
    titles = [
        "Speculative decoding with a small draft model for faster LLM inference",
        "Low-rank adapters for instruction tuning of a 7B language model",
        "Text-to-video generation with a latent diffusion transformer",
        "A neural audio codec for speech at 1.5 kbps",
    ]
    papers = [paper(t, position=i) for i, t in enumerate(titles)]
    papers += [
        paper(RECIPES.title, RECIPES.abstract, position=4),
        paper(TOP_TAGGING, PHYSICS_ABSTRACT, "hep-ph", position=5),
    ]
    groups, placements = group_papers(papers, grouper)
    grouped = [p.key for g in groups for p in g.papers]
    assert sorted(grouped) == sorted(p.key for p in papers)  # each paper once, none lost
    assert set(placements) == {p.key for p in papers}
    codes = [g.code for g in groups]
    taxonomy = grouper.taxonomy.codes()
    assert codes[-1] == OTHER_CODE and len(set(codes)) == len(codes)
    assert codes[:-1] == [c for c in taxonomy if c in codes]  # taxonomy order, no empty group
    for group in groups:
        assert group.papers and group.title == grouper.taxonomy.title_of(group.code)
        assert all(placements[p.key].topic == group.code for p in group.papers)
    assert [placements[p.key].topic for p in papers] == [
        "inference", "adaptation", "generation", "audio", OTHER_CODE, OTHER_CODE,
    ]


def test_place_all_agrees_with_place_and_an_empty_list_is_fine(grouper: Grouper) -> None:
    papers = [RECIPES, PROOF, paper("Sparse mixture-of-experts layers with expert-choice routing")]
    assert grouper.place_all(papers) == [grouper.place(p) for p in papers]
    assert grouper.place_all([]) == []


# ---------------------------------------------------------------------------- Other


# Eighty-odd words of context that leave open whether the paper is about training or serving.
SPREAD_OVER_GPUS = (
    "Large language models have grown from millions to hundreds of billions of parameters in a "
    "few years, and no single accelerator holds them any more. Their weights, their activations "
    "and the state kept beside them must be spread over many devices, and the way they are spread "
    "decides how much of the hardware is used. Practitioners choose among many layouts by hand, "
    "and the best layout depends on the model, the cluster and the batch, so much of the "
    "hardware is left idle."
)


@pytest.mark.parametrize(
    ("contribution", "topic", "word"),
    [
        ("We present a serving system that answers requests with low latency: it pages the KV "
         "cache, batches concurrent requests continuously and schedules decoding steps across "
         "devices, cutting time per output token and raising the throughput of online inference "
         "by 2.1x over existing serving engines.", "inference", '"serving"'),
        ("We present a distributed training system: it shards optimizer states and gradients "
         "across devices, overlaps communication with the backward pass and picks the pipeline "
         "schedule per step, raising pretraining throughput by 2.1x on commodity GPU clusters.",
         "training", '"optimizer"'),
    ],
    ids=["serving", "training"],
)
def test_the_abstract_is_read_past_its_opening_where_the_contribution_is_often_named(
    grouper: Grouper, contribution: str, topic: str, word: str
) -> None:
    """The first reading (title, and the abstract's first 80 words) leaves open whether the
    paper is about serving or training; the sentences after them, read apart, decide it, and
    ``why`` names their words."""
    title = "Taking Large Language Models to Many GPUs"
    assert len(SPREAD_OVER_GPUS.split()) > grouper_module.ABSTRACT_WORDS
    opening_only = grouper.place(paper(title, SPREAD_OVER_GPUS))
    assert {opening_only.topic, opening_only.runner_up} == {"inference", "training"}
    assert opening_only.score - opening_only.runner_up_score < 0.5
    placed = grouper.place(paper(title, f"{SPREAD_OVER_GPUS} {contribution}"))
    assert placed.topic == topic
    assert any(line.startswith("words ") and word in line for line in placed.evidence)


def test_a_physics_paper_filed_under_hep_ph_goes_to_other_and_says_why(grouper: Grouper) -> None:
    placement = grouper.place(paper(TOP_TAGGING, PHYSICS_ABSTRACT, "hep-ph"))
    assert placement.topic == OTHER_CODE
    assert placement.evidence[0].startswith("Other: ")
    assert "hep-ph" in placement.evidence[0]
    assert placement.runner_up is not None and placement.runner_up != OTHER_CODE


def test_the_same_paper_with_an_ml_abstract_cross_listed_to_cs_lg_goes_to_applications(grouper: Grouper) -> None:
    placement = grouper.place(paper(TOP_TAGGING, ML_ABSTRACT, "hep-ph", "cs.LG"))
    assert placement.topic == "applications"
    assert not placement.evidence[0].startswith("Other")
    # Filed under hep-ph alone, a text that is clearly an ML method leaves Other all the same.
    alone = grouper.place(paper(TOP_TAGGING, ML_ABSTRACT, "hep-ph"))
    assert alone.topic == "applications"
    assert alone.fit is not None and alone.fit >= ML_EVIDENCE


def test_under_an_other_category_alone_a_text_that_only_mentions_ml_stays_in_other(grouper: Grouper) -> None:
    mostly_physics = paper(TOP_TAGGING, PASSING_ML_ABSTRACT, "hep-ph")
    alone = grouper.place(mostly_physics)
    assert alone.topic == OTHER_CODE
    # Whether its text or its category decides, the reason names the category.
    assert alone.evidence[0].startswith("Other: ") and "primary arXiv category hep-ph lies outside" in alone.evidence[0]
    # Cross-listed to cs.LG, the author says it is ML: the text decides.
    listed = grouper.place(paper(TOP_TAGGING, PASSING_ML_ABSTRACT, "hep-ph", "cs.LG"))
    assert listed.topic == "applications"


def test_under_an_other_category_alone_a_text_not_clearly_within_the_topics_goes_to_other(grouper: Grouper) -> None:
    """The category decides what the text leaves open: within the topics from its text alone,
    the paper goes to Other when filed under physics alone, and back when cross-listed to ML."""
    assert grouper.place(paper(TOP_TAGGING, HALF_ML_ABSTRACT)).topic == "applications"
    alone = grouper.place(paper(TOP_TAGGING, HALF_ML_ABSTRACT, "hep-ph"))
    assert alone.topic == OTHER_CODE
    assert alone.evidence[0].startswith(
        "Other: primary arXiv category hep-ph lies outside the topics and the text is not clearly within them"
    )
    assert grouper.place(paper(TOP_TAGGING, HALF_ML_ABSTRACT, "hep-ph", "cs.LG")).topic == "applications"


def test_a_cross_list_to_an_ml_category_counts_against_other_and_is_named(grouper: Grouper) -> None:
    """Filed under physics and cs.LG, a paper whose text alone reads like physics goes to
    applications: its authors said it is machine learning too."""
    title = "Gravitational-wave parameter estimation with normalizing flows"
    abstract = ("We infer the masses and spins of binary black holes from detector strain with a "
                "normalizing flow conditioned on the data, in seconds per event.")
    assert grouper.place(paper(title, abstract, "gr-qc")).topic == OTHER_CODE
    listed = grouper.place(paper(title, abstract, "gr-qc", "cs.LG"))
    assert listed.topic == "applications"
    assert "arXiv category cs.LG beside gr-qc" in listed.evidence


@pytest.mark.parametrize("outside", [RECIPES, PROOF], ids=["bread-recipes", "number-theory-proof"])
def test_a_text_clearly_outside_ml_goes_to_other_without_categories(grouper: Grouper, outside: Paper) -> None:
    placement = grouper.place(outside)
    assert outside.categories == ()
    assert placement.topic == OTHER_CODE
    assert placement.evidence[0].startswith("Other: ")
    assert placement.runner_up in grouper.taxonomy.codes()


NOT_RESEARCH = {
    "hiring": paper("We are hiring research engineers in London"),
    "funding": paper(
        "Announcing our Series B funding round",
        "Today we are excited to announce $40M in new funding led by top investors to grow the team and expand our product.",
    ),
    "offsite": paper("Recap of our company offsite in Lisbon", "The whole team met for three days of planning, talks and dinners."),
    "office-hours": paper("Office hours cancelled this week"),
    "release-notes": paper("Release notes: v2.3 adds dark mode and faster search"),
}


@pytest.mark.parametrize("item", NOT_RESEARCH.values(), ids=NOT_RESEARCH.keys())
def test_a_feed_item_that_is_not_research_goes_to_other(grouper: Grouper, item: Paper) -> None:
    """A blog's hiring post, funding news or release notes are no paper of any topic."""
    placement = grouper.place(item)
    assert placement.topic == OTHER_CODE, placement.evidence
    assert placement.evidence[0].startswith("Other: reads like papers outside the topics")


def test_research_told_in_a_blogs_voice_still_goes_to_its_topic(grouper: Grouper) -> None:
    post = paper(
        "Introducing Falcon-Lite: 4-bit weights let our 8B model run on a phone",
        "We quantize all weights to 4 bits with a new rounding scheme and keep accuracy within one point.",
    )
    assert grouper.place(post).topic == "compression"


# ---------------------------------------------------------------------------- categories, rules, examples


def test_an_arxiv_category_named_by_a_topic_pulls_a_borderline_paper_to_it(grouper: Grouper) -> None:
    title = "Self-supervised pretraining of a small encoder on unlabelled sensor streams"
    abstract = "We pretrain a small encoder on unlabelled sensor streams with masked prediction and fine-tune it on few labels."
    assert grouper.place(paper(title, abstract)).topic != "audio"
    placement = grouper.place(paper(title, abstract, "eess.AS"))
    assert placement.topic == "audio"
    assert "arXiv category eess.AS" in placement.evidence


BIRDS_AND_FISH = """\
[[topics]]
code = "fish"
title = "Fish"
description = "Fish of rivers, lakes and seas: salmon, trout, cod, their spawning, migration and fisheries."
examples = ["Salmon spawning runs in northern rivers", "Trout growth in cold lakes", "Cod stocks of the North Sea"]

[[topics]]
code = "birds"
title = "Birds"
description = "Birds: songbirds, seabirds, raptors, their nesting, migration and feeding."
examples = ["Nesting success of songbirds in hedgerows", "Raptor migration over mountain passes", "Feeding habits of garden birds"]
"""


def test_a_wins_over_rule_decides_between_two_close_topics(tmp_path: Path) -> None:
    both = paper("Seasonal migration of salmon and seabirds")
    clearly_fish = paper("Salmon and seabirds")  # fish by a wide margin
    path = tmp_path / "topics.toml"
    path.write_text(BIRDS_AND_FISH, encoding="utf-8")
    plain = Grouper(load_taxonomy(path))
    before = plain.place(both)
    assert (before.topic, before.runner_up) == ("fish", "birds")
    assert not any(e.startswith("tie-break") for e in before.evidence)
    assert plain.place(clearly_fish).topic == "fish"

    path.write_text(BIRDS_AND_FISH + 'wins_over = ["fish"]\n', encoding="utf-8")  # a rule for birds
    ruled = Grouper(load_taxonomy(path))
    after = ruled.place(both)
    assert (after.topic, after.runner_up) == ("birds", "fish")
    assert after.evidence[0] == "tie-break: birds wins over fish"
    # The rule breaks ties only: a paper that is clearly fish stays fish.
    assert ruled.place(clearly_fish).topic == "fish"


def test_an_example_title_decides_its_topic(tmp_path: Path, custom: Grouper) -> None:
    robot = paper(
        "Learning Bimanual Grasping for a Humanoid Robot",
        "We train a humanoid robot to grasp and hand over objects with two arms.",
    )
    assert custom.place(robot).topic == "robotics"
    path = tmp_path / "topics.toml"
    shutil.copy(CUSTOM, path)
    add_example(path, "rl", "Learning bimanual grasping for a humanoid robot.")  # matched by normalised title
    placement = Grouper(load_taxonomy(path)).place(robot)
    assert placement.topic == "rl"
    assert placement.evidence[0] == "listed as an example of 'rl'"
    assert placement.runner_up == "robotics"


def test_a_custom_taxonomy_from_descriptions_and_a_few_examples(custom: Grouper) -> None:
    cases = {
        "rl": paper(
            "Conservative Value Estimation for Offline Reinforcement Learning",
            "Offline reinforcement learning learns a policy from a fixed dataset of transitions. "
            "We regularise the value function so that the policy does not exploit unseen actions "
            "and report higher returns and rewards on continuous control benchmarks.",
        ),
        "robotics": paper(
            "Learning Bimanual Grasping for a Humanoid Robot",
            "We train a humanoid robot to grasp and hand over objects with two arms. Policies "
            "trained in simulation transfer to the real robot (sim-to-real) and succeed in 87 % "
            "of manipulation trials.",
        ),
        "my-lab": paper(
            "Outlier-Aware 3-bit Quantization of Large Language Models",
            "We quantize the weights of large language models to 3 bits and prune outlier "
            "channels, keeping perplexity close to the FP16 model while LLM inference runs 2x faster.",
        ),
        OTHER_CODE: RECIPES,
    }
    for expected, item in cases.items():
        assert custom.place(item).topic == expected, item.title
    # Titles alone, as a listing without abstracts gives them.
    assert custom.place(paper("Model-based reinforcement learning with learned world models")).topic == "rl"
    assert custom.place(paper("Legged locomotion on rough terrain for a quadruped robot")).topic == "robotics"
    assert custom.place(paper("Pruning attention heads of large language models")).topic == "my-lab"


def test_a_description_lists_its_items_and_each_teaches_like_an_example(custom: Grouper) -> None:
    """A sub-area the description names but no example shows still finds its topic, and the
    reason says which phrase of the description it is near (the taxonomy not teaching itself:
    the papers it would teach itself with show many sub-areas)."""
    untaught = Grouper(replace(custom.taxonomy, self_teaching=False))
    robotics = untaught.taxonomy.topic("robotics").description
    assert description_items(robotics) == (
        "Robot learning", "manipulation", "locomotion", "grasping", "embodied agents",
        "sim-to-real transfer", "motion planning", "autonomous driving",
    )
    placed = untaught.place(paper("Sim-to-real transfer of a pick-and-place policy"))
    assert placed.topic == "robotics"
    assert 'near "sim-to-real transfer" in the description' in placed.evidence
    placed = untaught.place(paper("Offline RL from logged data with conservative value functions"))
    # The title names two items of the description: either is the nearest.
    assert placed.topic == "rl"
    assert placed.evidence[-1] in {f'near "{item}" in the description' for item in ("offline RL", "value functions")}


def test_abbreviations_end_no_item_and_an_item_needs_a_content_word() -> None:
    assert description_items("Adapting models (e.g. LoRA, adapters), etc. Dense vs. sparse experts; i.e. merging.") == (
        "Adapting models", "LoRA", "adapters", "Dense vs sparse experts", "merging",
    )
    assert description_items("") == ()


def test_an_item_that_is_already_an_inline_example_is_taught_once(tmp_path: Path) -> None:
    path = tmp_path / "topics.toml"
    path.write_text(
        '[[topics]]\ncode = "rl"\ntitle = "RL"\ndescription = "Offline RL, exploration."\n'
        'examples = ["Offline RL"]\n\n[[topics]]\ncode = "robotics"\ntitle = "Robotics"\n'
        'description = ""\nexamples = ["Learning to grasp"]\n',
        encoding="utf-8",
    )
    taught = teaching(load_taxonomy(path))
    assert [(e.title, e.topic) for e in taught.examples] == [
        ("Offline RL", "rl"), ("Learning to grasp", "robotics"), ("exploration", "rl"),
    ]
    assert taught.first_item == 2


def test_the_background_counts_in_the_fingerprint_and_a_missing_one_only_costs_accuracy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The background (unlabelled papers of the field) refines the IDFs: a new one is learned
    anew, and a taxonomy of the user's own still places papers when it cannot be read."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    taxonomy = load_taxonomy(CUSTOM)
    assert teaching(taxonomy).key == teaching(taxonomy, background=grouper_module.BACKGROUND).key
    background = tmp_path / "background.tsv"
    background.write_text("title\ttopic\nA transformer for proteins\tapplications\n", encoding="utf-8")
    first = teaching(taxonomy, background=background).key
    assert teaching(taxonomy, background=background).key == first != teaching(taxonomy).key
    background.write_text("title\ttopic\nA transformer for speech\tother\n", encoding="utf-8")
    assert teaching(taxonomy, background=background).key != first
    missing = tmp_path / "missing.tsv"
    assert teaching(taxonomy, background=missing).key != first
    curiosity = paper("Curiosity-driven exploration for sparse-reward reinforcement learning")
    assert Grouper(taxonomy, background=missing).place(curiosity).topic == "rl"


def test_a_line_of_the_examples_file_teaches_with_its_weight(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A line's weight column says how much it counts: a heavy line pulls a paper that reads
    like it to its topic, and a changed weight is learned anew."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    topics = tmp_path / "topics.toml"
    topics.write_text('examples_file = "examples.tsv"\n' + CUSTOM.read_text(encoding="utf-8"), encoding="utf-8")
    examples = tmp_path / "examples.tsv"
    ambiguous = paper("Stacking blocks with a robot arm")

    def taught(weight: str) -> tuple[str, str]:
        examples.write_text(
            "title\ttopic\tabstract\tweight\n"
            f"Reward shaping for block stacking with a robot arm\trl\t\t{weight}\n",
            encoding="utf-8",
        )
        taxonomy = load_taxonomy(topics)
        return teaching(taxonomy).key, Grouper(taxonomy).place(ambiguous).topic

    light_key, light = taught("0.01")
    heavy_key, heavy = taught("50")
    assert light_key != heavy_key
    assert (light, heavy) == ("robotics", "rl")


def test_a_words_only_line_teaches_the_word_model_but_is_never_the_nearest_example(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A line whose nearest column says no still pulls a paper that reads like it to its topic,
    but the meaning never sees it: the reason names another example, never it."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    topics = tmp_path / "topics.toml"
    topics.write_text('examples_file = "examples.tsv"\n' + CUSTOM.read_text(encoding="utf-8"), encoding="utf-8")
    examples = tmp_path / "examples.tsv"
    line = "Reward shaping for block stacking with a robot arm"
    ambiguous = paper("Stacking blocks with a robot arm")

    def placed(nearest: str) -> tuple[str, Placement]:
        examples.write_text(f"title\ttopic\tabstract\tweight\tnearest\n{line}\trl\t\t50\t{nearest}\n", encoding="utf-8")
        taxonomy = load_taxonomy(topics)
        return teaching(taxonomy).key, Grouper(taxonomy).place(ambiguous)

    seen_key, seen = placed("")
    unseen_key, unseen = placed("no")
    assert seen_key != unseen_key
    assert seen.topic == unseen.topic == "rl"
    # It is the line that pulls the paper: light, the paper stays with robotics.
    examples.write_text(f"title\ttopic\tabstract\tweight\tnearest\n{line}\trl\t\t0.01\tno\n", encoding="utf-8")
    assert Grouper(load_taxonomy(topics)).place(ambiguous).topic == "robotics"
    assert f'near the example "{line}"' in seen.evidence
    assert not any(line in reason for reason in unseen.evidence)


ON_TOPIC = {
    "Exploration bonuses from prediction errors": (
        "rl", "We reward the agent for visiting states whose outcome its model predicts badly, and learn a value function for the bonus."),
    "Curiosity-driven exploration for sparse-reward reinforcement learning": (
        "rl", "Agents rarely see a reward in sparse-reward tasks. We add an intrinsic curiosity reward and improve returns on Atari games."),
    "Multi-agent policy gradients with a centralised critic": (
        "rl", "We train several agents with a shared critic and decentralised policies."),
    "Temporal-difference learning with function approximation": (
        "rl", "We analyse the convergence of TD learning with linear function approximation."),
    "Model-based reinforcement learning with learned world models": ("rl", ""),
    "A quadruped robot learns to walk on ice": (
        "robotics", "We train a locomotion controller in simulation and deploy it on a real quadruped."),
    "Grasp planning with tactile feedback": ("robotics", "A robot hand adjusts its grasp using touch sensors."),
    "Legged locomotion on rough terrain for a quadruped robot": ("robotics", ""),
    "Motion planning for autonomous driving in dense traffic": ("robotics", ""),
    "Pruning attention heads of large language models": ("my-lab", ""),
    "KV cache compression for long-context LLM inference": ("my-lab", ""),
}


def test_an_other_table_does_not_pull_clearly_on_topic_papers_of_a_small_taxonomy_into_other(tmp_path: Path) -> None:
    """The custom taxonomy plus an [other] table (a description, three examples, categories):
    papers a reader would file under one of its topics without hesitation stay there."""
    other = (FIXTURES / "topics-eval" / "topics.toml").read_text(encoding="utf-8").split("\n[other]\n")[1]
    path = tmp_path / "topics.toml"
    path.write_text(CUSTOM.read_text(encoding="utf-8") + "\n[other]\n" + other, encoding="utf-8")
    taxonomy = load_taxonomy(path)
    assert taxonomy.other.examples and taxonomy.other.categories
    papers = [paper(title, abstract) for title, (_, abstract) in ON_TOPIC.items()]
    placed = {p.title: pl for p, pl in zip(papers, Grouper(taxonomy).place_all(papers))}
    wrong = [
        f"{title} -> {placed[title].topic} ({placed[title].evidence[0]})"
        for title, (expected, _) in ON_TOPIC.items()
        if placed[title].topic != expected
    ]
    assert not wrong, f"{len(wrong)} of {len(ON_TOPIC)} misplaced:\n" + "\n".join(wrong)


# ---------------------------------------------------------------------------- evidence and order


def test_evidence_is_never_empty_and_the_explanation_names_the_runner_up(grouper: Grouper) -> None:
    papers = [
        paper("Speculative decoding with a small draft model for faster LLM inference"),
        paper("Mixed-precision 4-bit weight quantization for large language models"),
        RECIPES,
        paper(TOP_TAGGING, PHYSICS_ABSTRACT, "hep-ph"),
        paper("Efficient Streaming Language Models with Attention Sinks"),  # a shipped example
    ]
    for item, placement in zip(papers, grouper.place_all(papers)):
        assert placement.evidence, item.title
        assert all(e.strip() for e in placement.evidence)
        assert placement.runner_up is not None and placement.runner_up not in (placement.topic, OTHER_CODE)
        assert placement.score >= placement.runner_up_score or placement.evidence[0].startswith(("tie-break", "listed", "Other"))
        text = explain(item, placement, grouper.taxonomy)
        lines = text.splitlines()
        assert lines[0] == item.title
        assert lines[1] == (
            f"  -> {grouper.taxonomy.title_of(placement.topic)} "
            f"(runner-up: {grouper.taxonomy.title_of(placement.runner_up)})"
        )
        assert lines[2] == "     " + "; ".join(placement.evidence)
    # A topic chosen from the text names the words and the nearest example that decided it.
    first = grouper.place(papers[0])
    assert first.topic == "inference"
    assert any(e.startswith("words ") for e in first.evidence)
    assert any(e.startswith('near the example "') for e in first.evidence)


def test_group_order_source_and_upvotes(grouper: Grouper) -> None:
    titles = [
        "Speculative decoding for fast LLM inference",
        "KV cache eviction for LLM serving",
        "Early exit inference for on-device LLMs",
        "Offloading LLM inference to CPU memory",
    ]
    upvotes = [5, None, 30, 5]
    papers = [paper(t, position=i, upvotes=u) for i, (t, u) in enumerate(zip(titles, upvotes))]
    shuffled = [papers[2], papers[0], papers[3], papers[1]]
    (by_source,), _ = group_papers(shuffled, grouper)
    assert by_source.code == "inference"
    assert [p.position for p in by_source.papers] == [0, 1, 2, 3]
    (by_votes,), _ = group_papers(shuffled, grouper, order="upvotes")
    assert [p.position for p in by_votes.papers] == [2, 0, 3, 1]  # 30, 5 (pos 0), 5 (pos 3), none
    with pytest.raises(ConfigError, match="unknown topic order 'random'"):
        group_papers(papers, grouper, order="random")


# ---------------------------------------------------------------------------- the cache

PLACE = """\
import json, sys
from pathlib import Path
from digest.models import Paper
from digest.topics import Grouper, load_taxonomy
grouper = Grouper(load_taxonomy(Path(sys.argv[1])))
papers = [Paper(title=t) for t in ("Offline reinforcement learning from logged data",
                                   "A quadruped robot walks on rough terrain",
                                   "Pruning attention heads of large language models")]
print(json.dumps([[p.topic, p.score, list(p.evidence)] for p in grouper.place_all(papers)]))
"""


def place_in_a_new_process(topics: Path, cache: Path) -> list[object]:
    """What a new run (a new process) places with the taxonomy ``topics`` and cache folder ``cache``."""
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    done = subprocess.run([sys.executable, "-c", PLACE, str(topics)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result: list[object] = json.loads(done.stdout)
    return result


def test_what_was_learned_is_cached_per_taxonomy_and_read_back_by_the_next_run(tmp_path: Path) -> None:
    import numpy as np

    topics = tmp_path / "topics.toml"
    shutil.copy(CUSTOM, topics)
    cache = tmp_path / "cache"
    folder = cache / "digest" / "topics"

    first = place_in_a_new_process(topics, cache)
    (learned,) = folder.glob("*.npz")
    stat = learned.stat()
    # The next run reads the file (nothing is learned, so nothing is written) and places alike.
    assert place_in_a_new_process(topics, cache) == first
    again = learned.stat()
    assert (again.st_ino, again.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)
    assert list(folder.glob("*.npz")) == [learned]

    # An edited taxonomy is learned afresh, under a new fingerprint.
    text = topics.read_text(encoding="utf-8")
    topics.write_text(text.replace("Robot learning:", "Robot learning and robot hardware:"), encoding="utf-8")
    assert place_in_a_new_process(topics, cache) != first  # the description's words changed the scores
    files = sorted(folder.glob("*.npz"))
    assert len(files) == 2 and learned in files
    assert not list(folder.glob(".*.tmp"))


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_a_damaged_cache_file_is_ignored_and_learned_again(tmp_path: Path, damage: str) -> None:
    import numpy as np

    topics = tmp_path / "topics.toml"
    shutil.copy(CUSTOM, topics)
    cache = tmp_path / "cache"
    placed = place_in_a_new_process(topics, cache)
    (learned,) = (cache / "digest" / "topics").glob("*.npz")
    whole = learned.read_bytes()
    learned.write_bytes({"garbage": b"PK\x03\x04 not a zip archive", "truncated": whole[: len(whole) // 2], "empty": b""}[damage])
    assert place_in_a_new_process(topics, cache) == placed
    with np.load(learned, allow_pickle=False) as data:  # repaired
        assert "weights" in data.files


def test_a_cache_folder_that_cannot_be_made_only_costs_time(tmp_path: Path) -> None:
    topics = tmp_path / "topics.toml"
    shutil.copy(CUSTOM, topics)
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder", encoding="utf-8")  # $XDG_CACHE_HOME/digest cannot be made under it
    placed = place_in_a_new_process(topics, blocked)
    assert [item[0] for item in placed] == ["rl", "robotics", "my-lab"]  # type: ignore[index]
    assert blocked.read_text(encoding="utf-8") == "not a folder"


def test_the_shipped_model_is_learned_from_the_shipped_topics_as_they_are() -> None:
    """digest/topics/shipped-model.npz spares every user the first learning of the shipped
    topics; it must be the model of config/topics.toml and its examples file as they are now
    (after an edit: python tools/build_shipped_model.py)."""
    import numpy as np

    from digest.topics.cache import SHIPPED
    from digest.topics.grouper import teaching

    with np.load(SHIPPED, allow_pickle=False) as data:
        shipped = str(data["fingerprint"])
    assert shipped == teaching(load_taxonomy(default_taxonomy_path())).key


def test_the_listed_titles_the_model_keeps_are_the_topics_files_as_normalised_now(grouper: Grouper) -> None:
    """The learned model (and the shipped one) keeps each listed example's normalised title, the
    first listing winning: a change to normalise_title must not leave stale keys behind."""

    expected: dict[str, str] = {}
    for example in grouper.taxonomy.examples():
        expected.setdefault(normalise_title(example.title), example.topic)
    assert grouper._model.listed == expected


def test_a_first_run_with_the_shipped_topics_learns_nothing(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    placed = place_in_a_new_process(default_taxonomy_path(), cache)
    assert len(placed) == 3
    assert not (cache / "digest" / "topics").exists()  # read from the shipped file: nothing learned, nothing written


SELF_TEACHING_BACKGROUND = (
    "title\ttopic\tabstract\n"
    "Glimmer rewards: exploration bonuses for sparse-reward agents\t\t"
    "We give a reinforcement learning agent a glimmer reward for states its value function has not seen.\n"
    "Policy optimisation with glimmer bonuses\t\t"
    "Glimmer bonuses make a policy gradient agent explore Atari games with sparse rewards.\n"
    "Quadruped locomotion with sim-to-real transfer\t\tA legged robot learns to walk in simulation.\n"
    "Grasping transparent objects with a robot hand\t\tA robot grasps glass from depth images.\n"
    "4-bit quantization of the KV cache for long-context LLM inference\t\t"
    "We quantize keys and values of a large language model.\n"
    "Pruning large language models in one shot\t\tWe prune half the weights of an LLM without retraining.\n"
)


def test_a_taxonomy_with_few_examples_teaches_itself_from_the_background(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A handful of examples per topic is self-taught: the background papers it places most
    surely become examples, so words only those papers use ("glimmer") count for their topic;
    they are not listed examples (a paper of the background is placed, not looked up)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    background = tmp_path / "background.tsv"
    background.write_text(SELF_TEACHING_BACKGROUND, encoding="utf-8")
    taxonomy = load_taxonomy(CUSTOM)
    assert teaching(taxonomy).self_teach and not teaching(load_taxonomy(default_taxonomy_path())).self_teach
    glimmer = paper("Glimmer signals for curious agents", "Agents that follow a glimmer find the goal sooner.")

    taught = Grouper(taxonomy, background=background)
    placed = taught.place(glimmer)
    assert placed.topic == "rl"
    assert any('"glimmer"' in line for line in placed.evidence), placed.evidence
    again_title = "Policy optimisation with glimmer bonuses"
    again = taught.place(paper(again_title))
    assert again.topic == "rl" and not any("listed as an example" in line for line in again.evidence)
    assert f'near "{again_title}", a paper it placed here itself (self-taught)' in again.evidence

    # A paper being measured (left out of the examples) is not taught by self-teaching either.
    measured = Grouper(taxonomy.without_examples({normalise_title(again_title)}), background=background)
    assert not any(again_title in line for line in measured.place(paper(again_title)).evidence)

    untaught = Grouper(replace(taxonomy, self_teaching=False), background=background)
    assert teaching(untaught.taxonomy, background=background).key != teaching(taxonomy, background=background).key
    assert not any("glimmer" in line or "self-taught" in line for line in untaught.place(glimmer).evidence)


@pytest.mark.parametrize(("setting", "expected"), [("true", True), ("false", False), ("", None)])
def test_the_topics_file_can_turn_self_teaching_on_or_off(tmp_path: Path, setting: str, expected: bool | None) -> None:
    path = tmp_path / "topics.toml"
    text = CUSTOM.read_text(encoding="utf-8")
    path.write_text((f"self_teaching = {setting}\n" if setting else "") + text, encoding="utf-8")
    taxonomy = load_taxonomy(path)
    assert taxonomy.self_teaching is expected
    assert teaching(taxonomy).self_teach is (expected is not False)


def test_a_self_teaching_setting_that_is_not_a_boolean_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "topics.toml"
    path.write_text('self_teaching = "yes"\n' + CUSTOM.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"topics\.toml: self_teaching: expected true or false, got 'yes'"):
        load_taxonomy(path)


def test_what_decides_the_self_taught_papers_is_in_the_fingerprint(monkeypatch: pytest.MonkeyPatch) -> None:
    """A self-taught model is learned anew when what chose its papers changes: the keywords and
    tie-break rules that place them, how many are taken and their weight, the papers held out."""
    taxonomy = load_taxonomy(CUSTOM)
    key = teaching(taxonomy).key
    first, *rest = taxonomy.topics
    assert teaching(replace(taxonomy, topics=(replace(first, keywords=("grasp*",)), *rest))).key != key
    assert teaching(replace(taxonomy, topics=(replace(first, wins_over=("rl",)), *rest))).key != key
    assert teaching(taxonomy.without_examples({normalise_title("A paper being measured")})).key != key
    monkeypatch.setattr(grouper_module, "SELF_TAUGHT", 100)
    assert teaching(taxonomy).key != key
    monkeypatch.setattr(grouper_module, "SELF_TAUGHT_WEIGHT", 0.5)
    assert teaching(taxonomy).key not in {key, teaching(replace(taxonomy, self_teaching=False)).key}

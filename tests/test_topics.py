"""The topic grouper: config loading, placement, explanations, teaching, evaluation."""

from __future__ import annotations

import csv
import re
import shutil
import tomllib
from pathlib import Path

import pytest

from digest.errors import ConfigError
from digest.models import Paper
from digest.topics import (
    OTHER_CODE,
    Grouper,
    Taxonomy,
    Topic,
    add_example,
    default_taxonomy_path,
    evaluate,
    format_report,
    group_papers,
    label_snapshot_files,
    load_taxonomy,
    parse_keyword,
)
from tests.seed_papers import LABELS, SEEDS, load_seed_papers

FIXTURES = Path(__file__).parent / "fixtures"
TAXONOMY_CODES = (
    "architecture", "inference", "compression", "training", "adaptation", "understanding",
    "vision", "multimodal", "generation", "audio", "applications",
)
needs_shared = pytest.mark.skipif(not LABELS.is_file(), reason="../shared (labels, seeds) not present")


@pytest.fixture(scope="module")
def grouper() -> Grouper:
    return Grouper(load_taxonomy(default_taxonomy_path()))


def paper(title: str, abstract: str = "", **fields: object) -> Paper:
    return Paper(title=title, abstract=abstract, **fields)  # type: ignore[arg-type]


QUANT = paper(
    "KVQuant: Towards 10 Million Context Length LLM Inference with KV Cache Quantization",
    "LLMs are seeing growing use for applications which require large context windows, and "
    "with these large context windows KV cache activations surface as the dominant "
    "contributor to memory consumption during inference. Quantization is a promising "
    "approach for compressing KV cache activations; we propose per-channel key quantization "
    "and pre-RoPE quantization, reaching 3-bit KV cache with little perplexity loss.",
)
SPEECH = paper(
    "Streaming Speech Recognition with a Small Conformer",
    "We present an automatic speech recognition model for streaming audio that reaches a low "
    "word error rate on LibriSpeech while running in real time on a phone.",
)
RECIPES = paper(
    "Sourdough Bread Recipes from Small Bakeries",
    "We collect bread recipes from bakeries, compare flour, hydration and baking times, and "
    "describe how the crust and the crumb depend on them.",
)


def write(tmp_path: Path, text: str, name: str = "topics.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------- the shipped taxonomy


def test_default_taxonomy_has_the_eleven_topics_in_order() -> None:
    taxonomy = load_taxonomy(default_taxonomy_path())
    assert taxonomy.codes() == TAXONOMY_CODES
    assert taxonomy.topic("inference").title == "Inference & serving"
    assert all(t.description and t.keywords for t in taxonomy.topics)
    assert not any(t.examples for t in taxonomy.topics)


def test_parse_keyword_reads_weights() -> None:
    assert parse_keyword("kv cache") == ("kv cache", 1.0)
    assert parse_keyword("quantiz*^4") == ("quantiz*", 4.0)
    assert parse_keyword("token pruning^-2.5") == ("token pruning", -2.5)
    for bad in ("mamba^x", "mamba^0", "^3"):
        with pytest.raises(ValueError):
            parse_keyword(bad)


# ---------------------------------------------------------------------------- placing papers


def test_placement_explains_the_deciding_words_and_the_runner_up(grouper: Grouper) -> None:
    placement = grouper.place(QUANT)
    # Tie-break rule 1: the core method is quantization, though it speeds up inference.
    assert placement.topic == "compression"
    assert placement.runner_up == "inference"
    assert placement.evidence[0] == "tie-break: compression wins over inference"
    assert any('"quantiz*" (title+abstract' in e for e in placement.evidence)


def test_keywords_in_the_title_and_abstract_decide(grouper: Grouper) -> None:
    placement = grouper.place(SPEECH)
    assert placement.topic == "audio"
    assert any("speech recognition" in e for e in placement.evidence)
    assert placement.runner_up is not None and placement.runner_up != "audio"


def test_a_paper_that_fits_nothing_goes_to_other(grouper: Grouper) -> None:
    placement = grouper.place(RECIPES)
    assert placement.topic == OTHER_CODE
    assert placement.evidence == ("no topic matched strongly enough",)


def test_every_paper_lands_in_exactly_one_group(grouper: Grouper) -> None:
    papers = [QUANT, SPEECH, RECIPES] + [
        paper(f"Paper {i}: {t}", "", position=i)
        for i, t in enumerate(["Diffusion models for video generation", "LoRA fine-tuning", "Bread"])
    ]
    groups, placements = group_papers(papers, grouper)
    grouped = [p for g in groups for p in g.papers]
    assert sorted(p.key for p in grouped) == sorted(p.key for p in papers)
    assert set(placements) == {p.key for p in papers}
    codes = [g.code for g in groups]
    assert codes[-1] == OTHER_CODE
    assert codes[:-1] == [c for c in TAXONOMY_CODES if c in codes]  # taxonomy order, no empties
    assert all(g.papers for g in groups)
    for group in groups:
        assert all(placements[p.key].topic == group.code for p in group.papers)


@needs_shared
def test_every_seed_paper_gets_one_topic_and_other_stays_small(grouper: Grouper) -> None:
    papers = load_seed_papers()
    groups, placements = group_papers(papers, grouper)
    assert sum(len(g.papers) for g in groups) == len(papers)
    other = sum(len(g.papers) for g in groups if g.code == OTHER_CODE)
    assert other / len(papers) <= 0.05


def test_group_order_source_and_upvotes(grouper: Grouper) -> None:
    titles = ["Speculative decoding for fast LLM inference", "KV cache eviction for LLM serving",
              "Early exit inference for on-device LLMs", "Offloading LLM inference to CPU memory"]
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


# ---------------------------------------------------------------------------- users' own topics


def test_custom_taxonomy_from_descriptions_and_examples() -> None:
    grouper = Grouper(load_taxonomy(FIXTURES / "custom-topics.toml"))
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
        assert grouper.place(item).topic == expected, item.title


def test_an_example_title_decides_its_topic(tmp_path: Path, grouper: Grouper) -> None:
    assert grouper.place(SPEECH).topic == "audio"
    path = tmp_path / "topics.toml"
    shutil.copy(default_taxonomy_path(), path)
    add_example(path, "inference", SPEECH.title)
    taught = Grouper(load_taxonomy(path))
    placement = taught.place(SPEECH)
    assert placement.topic == "inference"
    assert placement.evidence[0] == "listed as an example of 'inference'"
    assert placement.runner_up == "audio"


def test_examples_pull_similar_papers() -> None:
    def grouper(*lab_examples: str) -> Grouper:
        return Grouper(Taxonomy((
            Topic("forests", "Forests", "Trees, woods and the animals that live there."),
            Topic("oceans", "Oceans", "Seas, coasts and the animals that live there."),
            Topic("my-lab", "Our lab", "What our group works on.", examples=lab_examples),
        )))

    item = paper("Resin flow in Scots pine after storm damage",
                 "We measure resin flow in damaged pine trees in three woods.")
    assert grouper().place(item).topic == "forests"
    taught = grouper("Resin ducts and bark beetles in pine stands", "Pine resin yield by season")
    placement = taught.place(item)
    assert placement.topic == "my-lab"
    assert placement.runner_up == "forests"
    assert "resin" in " ".join(placement.evidence)


# ---------------------------------------------------------------------------- teaching: add_example


def test_add_example_round_trips_and_keeps_the_rest_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "topics.toml"
    shutil.copy(default_taxonomy_path(), path)
    before_text = path.read_text(encoding="utf-8")
    before = tomllib.loads(before_text)
    title = 'A "Quoted" Title with a \\ backslash and ümlauts'
    add_example(path, "training", title)
    after_text = path.read_text(encoding="utf-8")
    after = tomllib.loads(after_text)
    training = codes_index(before)["training"]
    assert after["topics"][training]["examples"] == [title]
    before["topics"][training]["examples"] = [title]
    assert after == before
    # Only the examples line of that topic changed; every comment is still there.
    changed = [(a, b) for a, b in zip(before_text.splitlines(), after_text.splitlines()) if a != b]
    assert len(changed) == 1 and changed[0][1].startswith("examples = [")
    assert len(before_text.splitlines()) == len(after_text.splitlines())
    add_example(path, "training", "Second Example")
    add_example(path, "training", "second example")  # the same title again: no change
    assert tomllib.loads(path.read_text())["topics"][training]["examples"] == [title, "Second Example"]


def codes_index(data: dict[str, list[dict[str, object]]]) -> dict[str, int]:
    return {str(t["code"]): i for i, t in enumerate(data["topics"])}


@pytest.mark.parametrize(
    ("examples", "expected_text"),
    [
        ('examples = ["A"]  # inline', 'examples = ["A", "New"]  # inline'),
        ('examples = ["A",]', 'examples = ["A", "New"]'),
        ('examples = [\n    "A",  # first\n    "B" # second, no comma\n]',
         'examples = [\n    "A",  # first\n    "B", # second, no comma\n    "New",\n]'),
        ('examples = [ # none yet\n]', 'examples = [ # none yet\n    "New",\n]'),
        ("examples = ['x]y']", "examples = ['x]y', \"New\"]"),
    ],
)
def test_add_example_edits_each_array_layout(tmp_path: Path, examples: str, expected_text: str) -> None:
    head = '[[topics]]\ncode = "a"\ntitle = "A"\n'
    tail = '\n\n[[topics]]\ncode = "b"\ntitle = "B"\nexamples = ["kept"]\n'
    path = write(tmp_path, head + examples + tail)
    add_example(path, "a", "New")
    assert path.read_text() == head + expected_text + tail
    data = tomllib.loads(path.read_text())
    assert data["topics"][1]["examples"] == ["kept"]


def test_add_example_adds_a_missing_examples_key(tmp_path: Path) -> None:
    path = write(tmp_path, '[[topics]]\ncode = "a"\ntitle = "A"\n\n[[topics]]\ncode = "b"\ntitle = "B"\n')
    add_example(path, "a", "New")
    data = tomllib.loads(path.read_text())
    assert data["topics"][0]["examples"] == ["New"]
    assert "examples" not in data["topics"][1]


def test_add_example_refuses_unknown_topics_and_conflicts(tmp_path: Path) -> None:
    path = write(tmp_path, '[[topics]]\ncode = "a"\ntitle = "A"\nexamples = ["Taken"]\n'
                           '[[topics]]\ncode = "b"\ntitle = "B"\n')
    before = path.read_text()
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: no topic 'c'$"):
        add_example(path, "c", "New")
    with pytest.raises(ConfigError, match="already an example of 'a'"):
        add_example(path, "b", "taken")
    assert path.read_text() == before


# ---------------------------------------------------------------------------- config errors


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[topics]]\ncode = "a"\ntitle = "A"\nkeywords = "mamba"\n',
         "topics[0].keywords: expected a list of strings"),
        ('[[topics]]\ncode = "a"\ntitle = "A"\n[[topics]]\ncode = "b"\ntitle = "B"\nexamples = [1]\n',
         "topics[1].examples: expected a list of strings"),
        ('[[topics]]\ncode = "a"\ntitle = "A"\ncolour = "red"\n', "topics[0]: unknown key 'colour'"),
        ('[[topics]]\ncode = "a"\ntitle = "A"\n[[topics]]\ncode = "a"\ntitle = "B"\n',
         "topics[1].code: duplicate code 'a'"),
        ('[[topics]]\ncode = "My Lab"\ntitle = "A"\n', "topics[0].code: 'My Lab' must be lower-case"),
        ('[[topics]]\ncode = "other"\ntitle = "A"\n', "topics[0].code: 'other' is reserved"),
        ('[[topics]]\ntitle = "A"\n', "topics[0].code: missing"),
        ('[[topics]]\ncode = "a"\ntitle = 3\n', "topics[0].title: expected a string"),
        ('[[topics]]\ncode = "a"\ntitle = "A"\nkeywords = ["mamba^x"]\n',
         "topics[0].keywords[0]: bad weight 'x'"),
        ('[[topics]]\ncode = "a"\ntitle = "A"\nwins_over = ["b"]\n', "topics[0].wins_over[0]: unknown topic 'b'"),
        ('[[topics]]\ncode = "a"\ntitle = "A"\nexamples = ["T"]\n[[topics]]\ncode = "b"\ntitle = "B"\n'
         'examples = ["t."]\n', "topics[1].examples[0]: 't.' is already an example of 'a'"),
        ('name = "x"\n[[topics]]\ncode = "a"\ntitle = "A"\n', "unknown key 'name'"),
        ("topics = []\n", "topics: expected at least one [[topics]] table"),
        ('[[topics]\ncode = "a"\n', "not valid TOML"),
    ],
)
def test_config_errors_name_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_taxonomy(path)
    first_line = str(caught.value)
    assert "\n" not in first_line
    assert first_line.startswith(f"{path}: ")
    assert message in first_line


def test_a_missing_topics_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read topics file"):
        load_taxonomy(tmp_path / "nope.toml")


# ---------------------------------------------------------------------------- evaluation


def test_evaluate_counts_agreement_and_lists_unmatched_labels(tmp_path: Path, grouper: Grouper) -> None:
    labels = write(
        tmp_path,
        "title\ttopic\tseed_file\n"
        f"{QUANT.title}\tcompression\tx.txt\n"
        f"{SPEECH.title.upper()}\tinference\tx.txt\n"  # matched by normalised title
        "A Paper Nobody Listed\tvision\tx.txt\n",
        name="labels.tsv",
    )
    report = evaluate(labels, [QUANT, SPEECH, RECIPES], grouper)
    assert report.n == 2
    assert report.accuracy == 0.5
    assert report.unmatched == ("A Paper Nobody Listed",)
    assert [(m.label, m.placed) for m in report.misses] == [("inference", "audio")]
    row = report.codes.index("inference")
    assert report.confusion[row][report.codes.index("audio")] == 1
    scores = {s.code: s for s in report.topics}
    assert scores["compression"].f1 == 1.0 and scores["inference"].recall == 0.0
    assert report.macro_f1 == 0.5  # over the labelled topics: compression 1.0, inference 0.0
    text = format_report(report, misses=5)
    assert "accuracy 0.500" in text and "confusion" in text
    assert "inference -> audio: Streaming Speech Recognition" in text
    assert label_snapshot_files(labels) == (tmp_path.parent / "seeds" / "x.txt",)


def test_bad_label_rows_are_config_errors(tmp_path: Path, grouper: Grouper) -> None:
    labels = write(tmp_path, "title\ttopic\nonly a title\n", name="labels.tsv")
    with pytest.raises(ConfigError, match=r"labels.tsv:2: expected title<TAB>topic"):
        evaluate(labels, [], grouper)


def test_well_known_papers_by_title_alone(grouper: Grouper) -> None:
    """66 famous papers outside the dev set, titles only: the keywords are general knowledge."""
    with (FIXTURES / "known-papers.tsv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    right = sum(grouper.place(paper(r["title"])).topic == r["topic"] for r in rows)
    assert right / len(rows) >= 0.85


@needs_shared
def test_dev_labels_agreement(grouper: Grouper) -> None:
    """The shipped topics on labels-dev: measured 0.854 accuracy, 0.872 macro-F1, no Other."""
    report = evaluate(LABELS, load_seed_papers(list(label_snapshot_files(LABELS))), grouper)
    assert report.n == 315 and not report.unmatched
    assert report.accuracy >= 0.83
    assert report.macro_f1 >= 0.85
    assert report.other_share <= 0.02


@needs_shared
def test_held_out_seed_files_agreement(tmp_path: Path, grouper: Grouper) -> None:
    """Keywords were tuned looking at errors on seed files 000 and 001 only; 002 and 004 are
    the fair estimate (measured 0.801)."""
    held_out = sorted(SEEDS.glob("00[24]_*.txt"))
    lines = LABELS.read_text(encoding="utf-8").splitlines()
    kept = lines[:1] + [line for line in lines[1:] if line.endswith(tuple(f.name for f in held_out))]
    labels = write(tmp_path, "\n".join(kept) + "\n", name="labels.tsv")
    report = evaluate(labels, load_seed_papers(held_out), grouper)
    assert report.n == 156
    assert report.accuracy >= 0.78

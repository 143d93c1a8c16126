"""The topics file: parsing, the shipped taxonomy, its examples file, and one-line errors that
name the file and the key."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from digest.errors import ConfigError
from digest.identity import normalise_title
from digest.topics import (
    OTHER_CODE,
    Example,
    Taxonomy,
    default_taxonomy_path,
    load_taxonomy,
    parse_keyword,
)
from digest.topics.taxonomy import category_matches, examples_file_rows

TAXONOMY_CODES = (
    "architecture", "inference", "compression", "training", "adaptation", "understanding",
    "vision", "multimodal", "generation", "audio", "applications",
)


def write(folder: Path, text: str, name: str = "topics.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------- the shipped taxonomy


def test_the_shipped_taxonomy_has_the_eleven_topics_in_order_and_teaches_each() -> None:
    taxonomy = load_taxonomy(default_taxonomy_path())
    assert taxonomy.codes() == TAXONOMY_CODES
    assert taxonomy.topic("inference").title == "Inference & serving"
    assert taxonomy.title_of(OTHER_CODE) == "Other"
    assert taxonomy.title_of("gone") == "gone"  # a code no longer in the taxonomy shows as itself
    with pytest.raises(KeyError):
        taxonomy.topic(OTHER_CODE)
    # Every topic is taught by a description and examples, inline and from the examples file.
    from_file = {code: sum(e.topic == code for e in taxonomy.extra_examples) for code in (*TAXONOMY_CODES, OTHER_CODE)}
    for topic in taxonomy.topics:
        assert topic.description and len(topic.examples) >= 5, topic.code
        assert from_file[topic.code] >= 50, topic.code
    assert taxonomy.topic("audio").categories == ("eess.AS", "cs.SD")
    assert "inference" in taxonomy.topic("compression").wins_over
    # What lies outside: a description, examples (inline and in the file) and the arXiv archives.
    assert taxonomy.other.description and taxonomy.other.examples and from_file[OTHER_CODE] >= 100
    assert {"hep-ph", "math", "astro-ph"} <= set(taxonomy.other.categories)
    assert "cs.LG" not in taxonomy.other.categories
    assert "cs.LG" in taxonomy.other.except_with  # an ML paper cross-listed from physics is judged by its text
    # examples() lists the inline examples, then [other]'s, then the file's.
    examples = taxonomy.examples()
    assert examples[0] == Example(taxonomy.topics[0].examples[0], "architecture")
    assert examples[-len(taxonomy.extra_examples):] == taxonomy.extra_examples
    inline = sum(len(t.examples) for t in taxonomy.topics) + len(taxonomy.other.examples)
    assert len(examples) == inline + len(taxonomy.extra_examples)


BENCH_DATA = Path(__file__).resolve().parents[1] / "bench" / "data"
MEASURING_SETS = sorted([*BENCH_DATA.glob("*.tsv"), *BENCH_DATA.glob("new-taxonomies/*/labels.tsv")])


def test_no_paper_of_the_bench_data_sets_is_in_the_shipped_examples_file() -> None:
    """The measuring sets of bench/data are papers the shipped examples file does not teach (the
    dev labels and the known papers are another matter: bench/topics.py leaves every measured
    paper out of the taxonomy before measuring)."""
    import csv

    taught = {normalise_title(e.title) for e in load_taxonomy(default_taxonomy_path()).extra_examples}
    assert len(MEASURING_SETS) >= 9
    for path in MEASURING_SETS:
        with path.open(encoding="utf-8", newline="") as handle:
            titles = [row["title"] for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)]
        assert titles, path.name
        assert not {normalise_title(t) for t in titles} & taught, path.name


def test_parse_keyword_reads_weights() -> None:
    assert parse_keyword("kv cache") == ("kv cache", 1.0)
    assert parse_keyword("quantiz*^4") == ("quantiz*", 4.0)
    assert parse_keyword("token pruning^-2.5") == ("token pruning", -2.5)
    for bad in ("mamba^x", "mamba^0", "^3", "mamba^inf"):
        with pytest.raises(ValueError):
            parse_keyword(bad)


@pytest.mark.parametrize(
    ("pattern", "category", "expected"),
    [
        ("math", "math.AP", True),  # a whole archive
        ("math.AP", "math.AP", True),
        ("astro-ph", "astro-ph.GA", True),
        ("q-bio", "q-bio", True),
        ("math", "math-ph", False),  # mathematical physics is another archive
        ("cs.LG", "cs.CL", False),
        ("math.AP", "math", False),  # a category does not cover its whole archive
        ("hep", "hep-ph", False),
    ],
)
def test_category_matches_a_category_or_its_archive(pattern: str, category: str, expected: bool) -> None:
    assert category_matches(pattern, category) is expected


# ---------------------------------------------------------------------------- a user's file


FULL = """\
examples_file = "examples.tsv"

[[topics]]
code = "rl"
title = "Reinforcement learning"
description = "  Policies, values and rewards.  "
examples = ["Proximal Policy Optimization Algorithms", "  "]
categories = ["cs.LG", "stat.ML"]
keywords = ["policy gradient^2"]

[[topics]]
code = "robotics"
title = "Robotics"
description = "Robots."
categories = ["cs.RO"]
wins_over = ["rl"]

[other]
description = "Anything else."
examples = ["A catalogue of variable stars"]
categories = ["astro-ph", "math"]
except_with = ["cs.LG"]
"""

EXAMPLES = (
    "title\ttopic\tabstract\tweight\n"
    "Learning to Walk in Minutes\trobotics\tWe train a quadruped to walk.\n"
    "\n"
    "Offline RL from logged data\trl\n"
    "Gene expression in yeast\tother\t\t0.5\n"
)


def test_a_full_topics_file_is_read_into_plain_values(tmp_path: Path) -> None:
    write(tmp_path, EXAMPLES, "examples.tsv")
    taxonomy = load_taxonomy(write(tmp_path, FULL))
    rl, robotics = taxonomy.topics
    assert (rl.code, rl.title, rl.description) == ("rl", "Reinforcement learning", "Policies, values and rewards.")
    assert rl.examples == ("Proximal Policy Optimization Algorithms",)  # blank entries dropped
    assert rl.categories == ("cs.LG", "stat.ML") and rl.keywords == ("policy gradient^2",)
    assert robotics.wins_over == ("rl",) and robotics.examples == ()
    assert taxonomy.other.description == "Anything else."
    assert taxonomy.other.examples == ("A catalogue of variable stars",)
    assert taxonomy.other.categories == ("astro-ph", "math")
    assert taxonomy.other.except_with == ("cs.LG",)
    assert taxonomy.extra_examples == (
        Example("Learning to Walk in Minutes", "robotics", "We train a quadruped to walk."),
        Example("Offline RL from logged data", "rl", ""),
        Example("Gene expression in yeast", OTHER_CODE, "", 0.5),
    )
    assert taxonomy.path == tmp_path / "topics.toml"


def test_a_minimal_file_needs_only_codes_and_titles(tmp_path: Path) -> None:
    taxonomy = load_taxonomy(write(tmp_path, '[[topics]]\ncode = "a"\ntitle = "A"\n'))
    assert taxonomy.codes() == ("a",)
    assert taxonomy.topics[0].description == "" and taxonomy.extra_examples == ()
    assert taxonomy.other.description == "" and taxonomy.other.categories == () and taxonomy.other.except_with == ()


def test_an_edited_topics_or_examples_file_is_read_again(tmp_path: Path) -> None:
    examples = write(tmp_path, EXAMPLES, "examples.tsv")
    path = write(tmp_path, FULL)
    assert len(load_taxonomy(path).extra_examples) == 3
    examples.write_text(EXAMPLES + "Sim-to-real transfer for a robot arm\trobotics\n", encoding="utf-8")
    assert len(load_taxonomy(path).extra_examples) == 4
    path.write_text(FULL.replace('title = "Robotics"', 'title = "Robots and arms"'), encoding="utf-8")
    assert load_taxonomy(path).topic("robotics").title == "Robots and arms"


def test_without_examples_leaves_out_the_given_titles_everywhere(tmp_path: Path) -> None:
    write(tmp_path, EXAMPLES, "examples.tsv")
    taxonomy = load_taxonomy(write(tmp_path, FULL))
    left_out = {normalise_title(t) for t in (
        "proximal policy optimization algorithms.",  # matched by normalised title
        "A Catalogue of Variable Stars",
        "Learning to walk in minutes",
        "A title no example has",
    )}
    measured = taxonomy.without_examples(left_out)
    assert measured.topics[0].examples == ()
    assert measured.other.examples == ()
    assert [e.title for e in measured.extra_examples] == ["Offline RL from logged data", "Gene expression in yeast"]
    # Everything else is kept, and the taxonomy it came from is unchanged.
    assert measured.codes() == taxonomy.codes()
    assert [(t.description, t.categories, t.keywords, t.wins_over) for t in measured.topics] == [
        (t.description, t.categories, t.keywords, t.wins_over) for t in taxonomy.topics
    ]
    assert measured.other.categories == taxonomy.other.categories
    assert measured.other.except_with == taxonomy.other.except_with == ("cs.LG",)
    assert measured.other.description == taxonomy.other.description
    assert len(taxonomy.examples()) == len(measured.examples()) + 3
    # The papers left out are not taught by self-teaching either, and the taxonomy measured
    # teaches itself exactly when the whole one does (leaving examples out does not decide it).
    assert measured.held_out == left_out
    assert measured.self_teaching is taxonomy.teaches_itself() is True
    assert taxonomy.without_examples(set()) == dataclasses.replace(taxonomy, self_teaching=True)


# ---------------------------------------------------------------------------- config errors

TWO = '[[topics]]\ncode = "a"\ntitle = "A"\n[[topics]]\ncode = "b"\ntitle = "B"\n'


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
        ('[[topics]]\ncode = "a"\ntitle = " "\n', "topics[0].title: must not be empty"),
        ('[[topics]]\ncode = "a"\ntitle = "A"\ndescription = ["x"]\n', "topics[0].description: expected a string"),
        ('[[topics]]\ncode = "a"\ntitle = "A"\nkeywords = ["mamba^x"]\n',
         "topics[0].keywords[0]: bad weight 'x'"),
        ('[[topics]]\ncode = "a"\ntitle = "A"\nwins_over = ["b"]\n', "topics[0].wins_over[0]: unknown topic 'b'"),
        ('[[topics]]\ncode = "a"\ntitle = "A"\nexamples = ["T"]\n[[topics]]\ncode = "b"\ntitle = "B"\n'
         'examples = ["t."]\n', "topics[1].examples[0]: 't.' is already an example of 'a'"),
        ('[[topics]]\ncode = "a"\ntitle = "A"\ncategories = "cs.LG"\n', "topics[0].categories: expected a list of strings"),
        ('[[topics]]\ncode = "a"\ntitle = "A"\ncategories = ["cs.LG", "cs LG"]\n',
         "topics[0].categories[1]: 'cs LG' is not an arXiv category"),
        ('name = "x"\n[[topics]]\ncode = "a"\ntitle = "A"\n', "unknown key 'name'"),
        ("topics = []\n", "topics: expected at least one [[topics]] table"),
        ("topics = [1]\n", "topics[0]: expected a table"),
        ('[[topics]\ncode = "a"\n', "not valid TOML"),
        # [other]
        (TWO + 'other = "physics"\n', "topics[1]: unknown key 'other'"),  # a key of the last [[topics]] table
        ('other = "physics"\n' + TWO, "other: expected a table"),
        (TWO + '[other]\ncolour = "red"\n', "other: unknown key 'colour'"),
        (TWO + "[other]\ndescription = 3\n", "other.description: expected a string"),
        (TWO + '[other]\nexamples = "A catalogue of stars"\n', "other.examples: expected a list of strings"),
        (TWO + '[other]\ncategories = ["hep-ph", "Physics!"]\n',
         "other.categories[1]: 'Physics!' is not an arXiv category such as 'cs.LG' or an archive such as 'math'"),
        (TWO + '[other]\nexcept_with = ["cs.LG", "CS LG"]\n',
         "other.except_with[1]: 'CS LG' is not an arXiv category"),
        (TWO + '[other]\nexcept_with = "cs.LG"\n', "other.except_with: expected a list of strings"),
        # examples_file: the name itself
        ('examples_file = 3\n' + TWO, "examples_file: expected the name of a TSV file"),
        ('examples_file = " "\n' + TWO, "examples_file: expected the name of a TSV file"),
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


def test_every_problem_is_reported_the_first_in_the_message_the_rest_in_the_hint(tmp_path: Path) -> None:
    path = write(tmp_path, '[[topics]]\ncode = "A"\ntitle = "A"\n[[topics]]\ncode = "b"\ntitle = 3\n[other]\nx = 1\n')
    with pytest.raises(ConfigError) as caught:
        load_taxonomy(path)
    assert str(caught.value) == f"{path}: topics[0].code: 'A' must be lower-case letters, digits, '-' or '_'"
    assert caught.value.hint is not None and "\n" not in caught.value.hint
    assert "topics[1].title: expected a string" in caught.value.hint
    assert "other: unknown key 'x'" in caught.value.hint


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("title\ttopic\nA good row\ta\njust a title\n",
         "examples.tsv:3: expected title<TAB>topic[<TAB>abstract][<TAB>weight][<TAB>nearest]"),
        ("title\ttopic\n\tb\n", "examples.tsv:2: expected title<TAB>topic[<TAB>abstract][<TAB>weight][<TAB>nearest]"),
        ("title\ttopic\tnearest\nA paper\ta\tmaybe\n", "examples.tsv:2: nearest 'maybe' is not yes or no"),
        *(
            (f"title\ttopic\tabstract\tweight\nA paper\ta\t\t{weight}\n",
             f"examples.tsv:2: weight {weight!r} is not a number from 0.001 to 1000")
            for weight in ("half", "0", "-1", "nan", "inf", "1e30", "0.0001")
        ),
        ("title\ttopic\nA good row\ta\nA paper\tvision\n", "examples.tsv:3: unknown topic 'vision'"),
    ],
)
def test_a_bad_examples_file_row_names_the_file_and_line(tmp_path: Path, rows: str, message: str) -> None:
    examples = write(tmp_path, rows, "examples.tsv")
    path = write(tmp_path, 'examples_file = "examples.tsv"\n' + TWO)
    with pytest.raises(ConfigError) as caught:
        load_taxonomy(path)
    first_line = str(caught.value)
    assert "\n" not in first_line
    assert first_line == f"{path}: {examples.parent / message}"


def test_the_abstract_weight_and_nearest_columns_are_found_by_the_headers_names(tmp_path: Path) -> None:
    write(tmp_path, "title\ttopic\tweight\nA paper\ta\t5\n", "examples.tsv")
    assert load_taxonomy(write(tmp_path, 'examples_file = "examples.tsv"\n' + TWO)).extra_examples == (
        Example("A paper", "a", "", 5.0),
    )
    # "nearest" is yes unless a line says no, in any case.
    write(tmp_path, "title\ttopic\tnearest\tweight\nA paper\ta\tNo\t2\nAnother\ta\t\t\nA third\ta\tyes\n", "examples.tsv")
    assert load_taxonomy(write(tmp_path, 'examples_file = "examples.tsv"\n' + TWO)).extra_examples == (
        Example("A paper", "a", "", 2.0, nearest=False),
        Example("Another", "a", "", 1.0),
        Example("A third", "a", "", 1.0),
    )
    # A column the header names otherwise is ignored; without a weight column every line weighs 1.
    write(tmp_path, "title\ttopic\tabstract\tsource\nA paper\ta\tWe study it.\tarxiv\n", "examples.tsv")
    assert load_taxonomy(write(tmp_path, 'examples_file = "examples.tsv"\n' + TWO)).extra_examples == (
        Example("A paper", "a", "We study it.", 1.0),
    )


def test_a_missing_examples_file_names_it(tmp_path: Path) -> None:
    path = write(tmp_path, 'examples_file = "nope.tsv"\n' + TWO)
    with pytest.raises(ConfigError) as caught:
        load_taxonomy(path)
    assert str(caught.value) == f"{path}: examples_file: cannot read {tmp_path / 'nope.tsv'}: No such file or directory"


def test_a_missing_or_unreadable_topics_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml: cannot read topics file"):
        load_taxonomy(tmp_path / "nope.toml")
    path = write(tmp_path, "")
    path.write_bytes(b'[[topics]]\ncode = "a"\ntitle = "\xff"\n')
    with pytest.raises(ConfigError, match=r"topics\.toml: not valid TOML"):
        load_taxonomy(path)
    if os.geteuid() != 0:  # root reads any file
        path.write_text(TWO, encoding="utf-8")
        path.chmod(0)
        try:
            with pytest.raises(ConfigError, match=r"topics\.toml: cannot read topics file: Permission denied"):
                load_taxonomy(path)
        finally:
            path.chmod(0o644)


def test_a_taxonomy_can_be_built_in_code() -> None:
    from digest.topics import OtherSpec, Topic

    taxonomy = Taxonomy((Topic("a", "A", "About a."),), other=OtherSpec("Not a.", ("Not about a",), ("math",)))
    assert taxonomy.codes() == ("a",)
    assert taxonomy.examples() == (Example("Not about a", OTHER_CODE),)


@pytest.mark.parametrize("folder", sorted(path.name for path in (BENCH_DATA / "new-taxonomies").iterdir() if path.is_dir()))
def test_the_new_taxonomies_of_the_bench_are_valid_topics_files_with_labels_of_their_codes(folder: str) -> None:
    taxonomy = load_taxonomy(BENCH_DATA / "new-taxonomies" / folder / "topics.toml")
    assert all(len(t.examples) == 5 for t in taxonomy.topics) and taxonomy.other.examples
    assert taxonomy.teaches_itself()
    rows = examples_file_rows(BENCH_DATA / "new-taxonomies" / folder / "labels.tsv")
    assert {row.topic for row in rows} == {*taxonomy.codes(), "other"}
    assert all(row.abstract for row in rows)

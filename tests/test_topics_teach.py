"""Teaching the grouper: ``add_example`` edits the topics file in place, keeping the user's layout."""

from __future__ import annotations

import re
import shutil
import tomllib
from pathlib import Path

import pytest

from digest.errors import ConfigError
from digest.models import Paper
from digest.topics import Grouper, add_example, default_taxonomy_path, load_taxonomy


def write(folder: Path, text: str, name: str = "topics.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def shipped_copy(folder: Path) -> Path:
    """The shipped topics file and its examples file, copied into ``folder``."""
    source = default_taxonomy_path()
    examples = tomllib.loads(source.read_text(encoding="utf-8"))["examples_file"]
    shutil.copy(source.parent / examples, folder / examples)
    return Path(shutil.copy(source, folder / "topics.toml"))


def codes_index(data: dict[str, list[dict[str, object]]]) -> dict[str, int]:
    return {str(t["code"]): i for i, t in enumerate(data["topics"])}


def test_add_example_round_trips_and_keeps_the_rest_of_the_file(tmp_path: Path) -> None:
    path = shipped_copy(tmp_path)
    before_text = path.read_text(encoding="utf-8")
    before = tomllib.loads(before_text)
    training = codes_index(before)["training"]
    old_examples = list(before["topics"][training]["examples"])
    title = 'A "Quoted" Title with a \\ backslash and ümlauts'
    add_example(path, "training", title)
    after_text = path.read_text(encoding="utf-8")
    after = tomllib.loads(after_text)
    assert after["topics"][training]["examples"] == old_examples + [title]
    before["topics"][training]["examples"] = old_examples + [title]
    assert after == before
    # One line was added (the new item, indented like the others); every other line, comments
    # included, is as it was.
    before_lines, after_lines = before_text.splitlines(), after_text.splitlines()
    assert len(after_lines) == len(before_lines) + 1
    added = next(i for i, (a, b) in enumerate(zip(before_lines, after_lines)) if a != b)
    assert after_lines[added] == '    "A \\"Quoted\\" Title with a \\\\ backslash and ümlauts",'
    assert after_lines[:added] + after_lines[added + 1:] == before_lines
    add_example(path, "training", "Second Example")
    add_example(path, "training", "second example.")  # the same title again: no change
    examples = tomllib.loads(path.read_text(encoding="utf-8"))["topics"][training]["examples"]
    assert examples == old_examples + [title, "Second Example"]
    assert load_taxonomy(path).topic("training").examples[-2:] == (title, "Second Example")


@pytest.mark.parametrize(
    ("examples", "expected_text"),
    [
        ('examples = ["A"]  # inline', 'examples = ["A", "New"]  # inline'),
        ('examples = ["A",]', 'examples = ["A", "New"]'),
        ('examples = []', 'examples = ["New"]'),
        ('examples = [\n    "A",  # first\n    "B" # second, no comma\n]',
         'examples = [\n    "A",  # first\n    "B", # second, no comma\n    "New",\n]'),
        ('examples = [ # none yet\n]', 'examples = [ # none yet\n    "New",\n]'),
        ("examples = ['x]y']", "examples = ['x]y', \"New\"]"),
        ('examples = ["""a # not a comment"""]', 'examples = ["""a # not a comment""", "New"]'),
    ],
)
def test_add_example_edits_each_array_layout(tmp_path: Path, examples: str, expected_text: str) -> None:
    head = '[[topics]]\ncode = "a"\ntitle = "A"\n'
    tail = '\n\n[[topics]]\ncode = "b"\ntitle = "B"\nexamples = ["kept"]\n'
    path = write(tmp_path, head + examples + tail)
    add_example(path, "a", "New")
    assert path.read_text(encoding="utf-8") == head + expected_text + tail
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    assert data["topics"][1]["examples"] == ["kept"]


def test_add_example_adds_a_missing_examples_key(tmp_path: Path) -> None:
    path = write(tmp_path, '[[topics]]\ncode = "a"\ntitle = "A"\n\n[[topics]]\ncode = "b"\ntitle = "B"\n\n[other]\ndescription = "x"\n')
    add_example(path, "a", "New")
    add_example(path, "b", "Newer")
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    assert data["topics"][0]["examples"] == ["New"]
    assert data["topics"][1]["examples"] == ["Newer"]
    assert data["other"] == {"description": "x"}


def test_add_example_refuses_unknown_topics_conflicts_and_empty_titles(tmp_path: Path) -> None:
    path = write(tmp_path, '[[topics]]\ncode = "a"\ntitle = "A"\nexamples = ["Taken"]\n'
                           '[[topics]]\ncode = "b"\ntitle = "B"\n')
    before = path.read_text(encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: no topic 'c'$") as caught:
        add_example(path, "c", "New")
    assert caught.value.hint == "topics in this file: a, b"
    with pytest.raises(ConfigError, match="already an example of 'a'"):
        add_example(path, "b", "taken")
    with pytest.raises(ConfigError, match="an example needs a title"):
        add_example(path, "a", "   ")
    assert path.read_text(encoding="utf-8") == before


def test_add_example_refuses_a_layout_it_cannot_edit(tmp_path: Path) -> None:
    path = write(tmp_path, 'topics = [{ code = "a", title = "A" }]\n')
    with pytest.raises(ConfigError, match=r"topics\[0\]: cannot edit this file's layout"):
        add_example(path, "a", "New")
    assert path.read_text(encoding="utf-8") == 'topics = [{ code = "a", title = "A" }]\n'


def test_a_taught_example_moves_a_paper_filed_under_another_topic_in_the_examples_file(tmp_path: Path) -> None:
    """A title the examples file files under robotics, taught to rl with add-example: the
    teaching must not be silently ignored (add_example may refuse it instead)."""
    write(tmp_path, "title\ttopic\nA Quadruped Robot Learns to Walk\trobotics\n", "examples.tsv")
    path = write(tmp_path, (
        'examples_file = "examples.tsv"\n'
        '[[topics]]\ncode = "rl"\ntitle = "RL"\ndescription = "Reinforcement learning: policies, rewards."\n'
        'examples = ["Proximal Policy Optimization Algorithms"]\n'
        '[[topics]]\ncode = "robotics"\ntitle = "Robotics"\ndescription = "Robots: grasping, locomotion."\n'
        'examples = ["Learning Dexterous In-Hand Manipulation"]\n'
    ))
    try:
        add_example(path, "rl", "A quadruped robot learns to walk")
    except ConfigError as exc:
        assert "already an example of 'robotics'" in str(exc)
        return
    placement = Grouper(load_taxonomy(path)).place(Paper(title="A Quadruped Robot Learns to Walk"))
    assert (placement.topic, placement.evidence[0]) == ("rl", "listed as an example of 'rl'")


def test_add_example_through_the_cli(tmp_path: Path, digest_cli, write_config) -> None:  # type: ignore[no-untyped-def]
    topics = write(tmp_path, '[[topics]]\ncode = "a"\ntitle = "A"\n')
    write_config('[topics]\nfile = "topics.toml"\n')
    done = digest_cli("topics", "add-example", "a", "A New Title", check_code=0)
    assert done.stdout.strip() == f"Added to a in {topics}: A New Title"
    assert load_taxonomy(topics).topic("a").examples == ("A New Title",)
    failed = digest_cli("topics", "add-example", "zz", "Whatever", check_code=2)
    assert failed.stdout == ""
    assert failed.stderr.splitlines()[0] == f"error: {topics}: no topic 'zz'"

"""tools/add_teaching.py: which teaching lines reach the shipped examples file."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

from add_teaching import added_before, checked, kept_rows, with_nearest_column  # noqa: E402
from digest.identity import normalise_title  # noqa: E402
from digest.topics.taxonomy import ExampleRow, examples_file_rows  # noqa: E402

KNOWN = Path(__file__).parent / "fixtures" / "known-papers.tsv"


def row(title: str, topic: str | None = "inference", line: int = 2) -> ExampleRow:
    return ExampleRow(line, title, topic, "An abstract.", "", "")


def test_a_line_like_a_measured_paper_is_left_out_and_a_new_one_kept() -> None:
    known = examples_file_rows(KNOWN)[0].title
    # Half the words of a measured title are enough to leave a line out (writers invent alike).
    near = " ".join(known.split()[: max(2, len(known.split()) // 2 + 1)]) + " revisited for cheaper phones"
    new = "Quokka: paging a key-value store of attention states between two kinds of memory"
    kept = kept_rows([row(known), row(near), row(new)], None, dev_labels=False)
    assert [r.title for r in kept] == [new]
    assert kept_rows([row(new)], None, {normalise_title(new)}, dev_labels=False) == []


def test_lines_it_wrote_before_are_recognised_at_any_weight_and_no_others() -> None:
    taught = {normalise_title("Quokka: paging a key-value store")}
    assert added_before("Quokka: paging a key-value store\tinference\tAn abstract.\t\n", taught)
    assert added_before("Quokka: paging a key-value store\tinference\tAn abstract.\t0.5\n", taught)
    assert not added_before("Quokka: paging a key-value store\tinference\tAn abstract.\n", taught)
    assert not added_before("Another title\tinference\tAn abstract.\t\n", taught)
    # ... and with the nearest column it writes now.
    assert added_before("Quokka: paging a key-value store\tinference\tAn abstract.\t\tno\n", taught)
    assert added_before("Quokka: paging a key-value store\tinference\tAn abstract.\t0.5\t\n", taught)
    assert added_before("Quokka: paging a key-value store\tinference\tAn abstract.\t\tNo\r\n", taught)
    assert not added_before("Quokka: paging a key-value store\tinference\tAn abstract.\t\tperhaps\n", taught)


def test_the_header_gains_the_nearest_column_once_and_another_header_stops_it() -> None:
    assert with_nearest_column("title\ttopic\tabstract\tweight\n") == "title\ttopic\tabstract\tweight\tnearest\n"
    assert with_nearest_column("title\ttopic\tabstract\tweight\tnearest\r\n") == "title\ttopic\tabstract\tweight\tnearest\n"
    # Lines are written by position: a header naming other columns, or the same in another order, would misread them.
    for header in ("title\ttopic\tabstract\n", "title\ttopic\tweight\tabstract\n", "title\ttopic\tabstract\tweight\tsource\n"):
        with pytest.raises(SystemExit, match="should name the columns title, topic, abstract, weight, nearest"):
            with_nearest_column(header)


def test_a_line_without_a_known_topic_stops_it_and_a_repeated_title_counts_once() -> None:
    with pytest.raises(SystemExit, match=r"teach.tsv:3: needs a title and one of the topics"):
        checked([row("A title"), row("Another", "robots", line=3)], Path("teach.tsv"))
    with pytest.raises(SystemExit, match=r"teach.tsv:2"):
        checked([row("A title", None)], Path("teach.tsv"))
    assert [r.title for r in checked([row("A title"), row("a title!"), row("B")], Path("t.tsv"))] == ["A title", "B"]

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, seed
from digest.errors import ParseError
from digest.sources.snapshots import read_snapshot, resolve_listing_date

SNAPS = FIXTURES / "snapshots"
TAKEN = dt.datetime(2025, 3, 14, 7, 0, tzinfo=dt.timezone.utc)
TITLES = [
    "Recurrent Memory Layers for Long Documents",
    "Four-Bit Weights Without Outliers",
    "A Benchmark of Expert Reasoning Problems",
]


def read(name: str, taken: dt.datetime = TAKEN) -> list[tuple[str, str]]:
    snapshot = read_snapshot(SNAPS / name, source="inbox", taken_at=taken)
    return [(p.title, p.abstract) for p in snapshot.papers]


@pytest.mark.parametrize("name", ["blank-lines.txt", "no-blank-lines.txt"])
def test_titles_and_abstracts_with_or_without_blank_lines(name: str) -> None:
    entries = read(name)
    assert [t for t, _ in entries] == TITLES
    assert all(a.startswith("We ") and a.endswith(".") for _, a in entries)


def test_a_title_without_abstract_does_not_swallow_the_next_title() -> None:
    entries = read("missing-abstract.txt")
    assert [t for t, _ in entries] == TITLES
    assert entries[0][1] == ""
    assert entries[1][1].startswith("We study how post-training quantization")


def test_chrome_glued_to_the_first_title_and_no_date_line() -> None:
    snapshot = read_snapshot(SNAPS / "glued-chrome-no-date.txt", source="inbox", taken_at=TAKEN)
    assert [p.title for p in snapshot.papers] == TITLES[:2]
    assert snapshot.listing_date is None


def test_bom_crlf_and_trailing_spaces() -> None:
    snapshot = read_snapshot(SNAPS / "bom-crlf-trailing-spaces.txt", source="inbox", taken_at=TAKEN)
    assert [p.title for p in snapshot.papers] == TITLES[:2]
    assert not any(p.abstract.endswith((" ", "\r")) for p in snapshot.papers)
    assert snapshot.listing_date == dt.date(2025, 3, 14)


def test_date_line_takes_the_most_recent_year_not_after_ingest() -> None:
    snapshot = read_snapshot(SNAPS / "new-year.txt", source="inbox", taken_at=dt.datetime(2026, 1, 3, tzinfo=dt.timezone.utc))
    assert snapshot.listing_date == dt.date(2026, 1, 2)
    assert resolve_listing_date(12, 31, dt.date(2026, 1, 3)) == dt.date(2025, 12, 31)
    assert resolve_listing_date(2, 29, dt.date(2026, 3, 1)) == dt.date(2024, 2, 29)


def test_positions_follow_the_listing_order() -> None:
    snapshot = read_snapshot(SNAPS / "blank-lines.txt", source="inbox", taken_at=TAKEN)
    assert [p.position for p in snapshot.papers] == [0, 1, 2]
    assert {p.source for p in snapshot.papers} == {"inbox"}


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("chrome-only.txt", "no paper entries found"),
        ("latin1.txt", "not UTF-8 text (invalid byte 0xff"),
        ("binary.bin", "binary file"),
    ],
)
def test_bad_files_are_errors_naming_the_file(name: str, message: str) -> None:
    with pytest.raises(ParseError) as caught:
        read_snapshot(SNAPS / name, source="inbox", taken_at=TAKEN)
    assert str(SNAPS / name) in caught.value.message
    assert message in caught.value.message
    assert "\n" not in caught.value.message


def test_renamed_copies_share_the_content_hash(tmp_path: Path) -> None:
    copy = tmp_path / "other-name.txt"
    copy.write_bytes((SNAPS / "blank-lines.txt").read_bytes())
    a = read_snapshot(SNAPS / "blank-lines.txt", source="inbox", taken_at=TAKEN)
    b = read_snapshot(copy, source="inbox", taken_at=TAKEN)
    assert a.content_hash == b.content_hash


@pytest.mark.parametrize(("prefix", "count", "date"), [("002", 78, "2025-03-11"), ("001", 73, "2025-03-13"), ("000", 112, "2025-03-14"), ("004", 97, "2025-05-06")])
def test_real_seed_snapshots_parse_completely(prefix: str, count: int, date: str) -> None:
    day = dt.date.fromisoformat(date)
    snapshot = read_snapshot(seed(prefix), source="seeds", taken_at=dt.datetime.combine(day, dt.time(), dt.timezone.utc))
    assert len(snapshot.papers) == count
    assert snapshot.listing_date == day
    assert all(p.abstract for p in snapshot.papers)
    assert all(len(p.title) < 300 for p in snapshot.papers)

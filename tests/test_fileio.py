"""Atomic writes, one file or a batch made durable together (``digest/fileio.py``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from digest.fileio import AtomicBatch, write_atomic, write_if_changed


def leftovers(folder: Path) -> list[str]:
    """Temp files left anywhere under ``folder``."""
    return sorted(p.name for p in folder.rglob("*.tmp"))


def test_batch_replaces_files_only_when_the_block_ends(tmp_path: Path) -> None:
    old = tmp_path / "index.md"
    old.write_text("old\n", encoding="utf-8")
    with AtomicBatch() as batch:
        batch.write(old, "new\n")
        batch.write(tmp_path / "topics" / "vision.md", ["piece one, ", "piece two\n"])
        assert old.read_text(encoding="utf-8") == "old\n"
        assert not (tmp_path / "topics" / "vision.md").exists()
    assert old.read_text(encoding="utf-8") == "new\n"
    assert (tmp_path / "topics" / "vision.md").read_text(encoding="utf-8") == "piece one, piece two\n"
    assert leftovers(tmp_path) == []


def test_batch_files_get_the_usual_permissions(tmp_path: Path) -> None:
    mask = os.umask(0o027)
    try:
        with AtomicBatch() as batch:
            batch.write(tmp_path / "feed.xml", "<feed/>")
    finally:
        os.umask(mask)
    assert (tmp_path / "feed.xml").stat().st_mode & 0o777 == 0o640


def test_an_error_in_the_block_replaces_nothing_and_leaves_no_temp_file(tmp_path: Path) -> None:
    kept = tmp_path / "index.md"
    kept.write_text("old\n", encoding="utf-8")
    with pytest.raises(RuntimeError), AtomicBatch() as batch:
        batch.write(kept, "new\n")
        batch.write(tmp_path / "feed.xml", "<feed/>")
        raise RuntimeError("rendering failed")
    assert kept.read_text(encoding="utf-8") == "old\n"
    assert not (tmp_path / "feed.xml").exists()
    assert leftovers(tmp_path) == []


def test_a_write_that_fails_midway_is_dropped_and_the_others_still_land(tmp_path: Path) -> None:
    def broken() -> Iterator[str]:
        yield "half a page"
        raise OSError(28, "No space left on device")

    with AtomicBatch() as batch:
        batch.write(tmp_path / "a.md", "a\n")
        with pytest.raises(OSError):
            batch.write(tmp_path / "b.md", broken())
        batch.write(tmp_path / "c.md", "c\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.md", "c.md"]


def test_a_failed_rename_keeps_the_files_before_it_and_removes_the_temp_files(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "inside").write_text("x", encoding="utf-8")
    with pytest.raises(OSError), AtomicBatch() as batch:
        batch.write(tmp_path / "first.md", "1\n")
        batch.write(tmp_path / "taken", "a directory is in the way\n")
        batch.write(tmp_path / "third.md", "3\n")
    assert (tmp_path / "first.md").read_text(encoding="utf-8") == "1\n"
    assert not (tmp_path / "third.md").exists()
    assert (tmp_path / "taken").is_dir()
    assert leftovers(tmp_path) == []


def test_write_if_changed_leaves_an_identical_file_alone(tmp_path: Path) -> None:
    page = tmp_path / "index.md"
    write_atomic(page, "same\n")
    os.utime(page, ns=(1_000_000_000, 1_000_000_000))
    assert write_if_changed(page, "same\n") is False
    assert page.stat().st_mtime_ns == 1_000_000_000
    assert write_if_changed(page, "other\n") is True
    assert page.read_text(encoding="utf-8") == "other\n"


def test_the_last_write_of_a_path_in_a_batch_wins(tmp_path: Path) -> None:
    page = tmp_path / "index.md"
    page.write_text("on disk\n", encoding="utf-8")
    with AtomicBatch() as batch:
        batch.write(page, "first\n")
        batch.write(page, "second\n")
        assert len(leftovers(tmp_path)) == 1  # the first one's temp file is gone already
        assert batch.write_if_changed(page, "on disk\n") is True  # what the batch would leave is "second"
    assert page.read_text(encoding="utf-8") == "on disk\n"
    assert leftovers(tmp_path) == []

"""Snapshot files: paper-listing pages copied as text, dropped into an inbox folder.

A snapshot is page chrome (``new``, ``Subscribe``, ...), an optional date line (``Mar 14``), then
entries: a title line followed by an abstract paragraph.  Blank lines between lines are optional,
chrome may be glued to the first title (``SubscribeSuperpipeline: ...``), an abstract may be
missing.  Titles and abstracts are told apart by shape (an abstract is prose: long, or many words
ending in a full stop), so a title without an abstract never swallows the next title.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from digest.errors import ParseError
from digest.models import Paper, Snapshot

# Page chrome seen on paper-listing pages, compared case-insensitively.
CHROME_LINES = (
    "new",
    "get trending papers in your email inbox!",
    "get trending papers in your email inbox once a day!",
    "subscribe",
    "byak and the research community",
    "daily papers",
)
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DATE_LINE = re.compile(r"^(?P<month>[A-Za-z]{3})[a-z]*\.?\s+(?P<day>\d{1,2})$")
_GLUED_CHROME = re.compile(
    "^(?:" + "|".join(re.escape(c) for c in sorted(CHROME_LINES, key=len, reverse=True)) + r")(?=[A-Z0-9])",
    re.IGNORECASE,
)
# An abstract is prose: longer than any title, or a sentence of many words.
_TITLE_MAX_CHARS = 300
_PROSE_MIN_WORDS = 12
MAX_FILE_BYTES = 50_000_000


@dataclass(frozen=True, slots=True)
class ParsedListing:
    """What a snapshot text holds: its listing date (if any) and its (title, abstract) entries."""

    listing_date: dt.date | None
    entries: tuple[tuple[str, str], ...]


def looks_like_abstract(line: str) -> bool:
    """True when a line reads as an abstract paragraph rather than a title.

    Titles are short and rarely end a sentence; abstracts are long prose.  An ellipsis is not a
    sentence end (``... or RNNs or ....`` closes a real title).
    """
    if len(line) > _TITLE_MAX_CHARS:
        return True
    ends_sentence = line.endswith((".", '."', ".)")) and not line.endswith("..")
    return ends_sentence and len(line.split()) >= _PROSE_MIN_WORDS


def resolve_listing_date(month: int, day: int, ingest_date: dt.date) -> dt.date | None:
    """The most recent ``month``/``day`` not after ``ingest_date`` (the year is never written)."""
    for year in (ingest_date.year, ingest_date.year - 1, ingest_date.year - 2, ingest_date.year - 3, ingest_date.year - 4):
        try:
            candidate = dt.date(year, month, day)
        except ValueError:  # Feb 29 in a common year
            continue
        if candidate <= ingest_date:
            return candidate
    return None


def _date_of(line: str, ingest_date: dt.date) -> dt.date | None:
    found = _DATE_LINE.match(line)
    if not found or found["month"].lower() not in _MONTHS:
        return None
    day = int(found["day"])
    if not 1 <= day <= 31:
        return None
    return resolve_listing_date(_MONTHS.index(found["month"].lower()) + 1, day, ingest_date)


def parse_listing(text: str, ingest_date: dt.date) -> ParsedListing:
    """Split a snapshot's text into its listing date and (title, abstract) entries."""
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    listing_date: dt.date | None = None
    index = 0
    # Leading chrome and the date line; chrome may be glued to the next line's text.
    while index < len(lines):
        line = lines[index]
        glued = _GLUED_CHROME.match(line)
        if line.casefold() in CHROME_LINES:
            index += 1
        elif (date := _date_of(line, ingest_date)) is not None and listing_date is None:
            listing_date = date
            index += 1
        elif glued:
            lines[index] = line[glued.end():]
        else:
            break
    entries: list[tuple[str, str]] = []
    title: str | None = None
    abstract: list[str] = []
    for line in lines[index:]:
        if title is None and looks_like_abstract(line):
            continue  # prose before any title is page text, not an entry
        # Right after a title any prose is its abstract; after an abstract only a line longer
        # than any title continues it, so a title is never taken for a paragraph.
        continues = len(line) > _TITLE_MAX_CHARS if abstract else looks_like_abstract(line)
        if continues:
            abstract.append(line)
            continue
        if title is not None:
            entries.append((title, " ".join(abstract)))
        title, abstract = line, []
    if title is not None:
        entries.append((title, " ".join(abstract)))
    return ParsedListing(listing_date, tuple(entries))


def decode_snapshot(data: bytes, origin: str) -> str:
    """Bytes to text; binary or non-UTF-8 files are a ParseError naming the file."""
    if b"\x00" in data[:65536]:
        raise ParseError(f"{origin}: binary file (contains NUL bytes), not a text snapshot")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ParseError(
            f"{origin}: not UTF-8 text (invalid byte 0x{data[exc.start]:02x} at offset {exc.start})",
            hint="save the snapshot as UTF-8",
        ) from None


def content_hash(data: bytes) -> str:
    """The identity of a snapshot file's content (renamed copies share it)."""
    return hashlib.sha256(data).hexdigest()


def read_snapshot_bytes(path: Path) -> bytes:
    """A snapshot file's bytes; unreadable or over ``MAX_FILE_BYTES`` is a ParseError naming it."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ParseError(f"{path}: file is {size} bytes, over the {MAX_FILE_BYTES}-byte limit for a snapshot")
        return path.read_bytes()
    except OSError as exc:
        raise ParseError(f"{path}: cannot read: {exc.strerror}") from None


def read_snapshot(path: Path, *, source: str, taken_at: dt.datetime) -> Snapshot:
    """Parse one snapshot file into a Snapshot; a file with no entry is a ParseError."""
    return snapshot_from_bytes(read_snapshot_bytes(path), origin=str(path), source=source, taken_at=taken_at)


def snapshot_from_bytes(data: bytes, *, origin: str, source: str, taken_at: dt.datetime) -> Snapshot:
    """Parse a snapshot's bytes (``origin`` names it in errors)."""
    listing = parse_listing(decode_snapshot(data, origin), taken_at.date())
    if not listing.entries:
        raise ParseError(f"{origin}: no paper entries found (expected title lines each followed by an abstract)")
    papers = tuple(
        Paper(title=title, abstract=abstract, source=source, position=position, published=listing.listing_date)
        for position, (title, abstract) in enumerate(listing.entries)
    )
    return Snapshot(
        source=source,
        origin=origin,
        papers=papers,
        content_hash=content_hash(data),
        taken_at=taken_at,
        listing_date=listing.listing_date,
    )


def inbox_files(folder: Path) -> Iterator[Path]:
    """The files of an inbox folder in name order, skipping hidden and editor temp files."""
    for path in sorted(folder.iterdir()):
        if path.is_file() and not path.name.startswith((".", "~")) and not path.name.endswith(("~", ".swp", ".tmp")):
            yield path

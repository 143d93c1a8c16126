"""Raw feed entries to papers: the part of feed reading shared by both readers.

``feed.read_entries`` (feedparser, any feed) and ``feed_fast.read_entries`` (lxml, well-formed
arXiv-like RSS 2.0 and Atom) both produce :class:`RawEntry` values with the same meaning;
:func:`build_papers` alone decides what a paper's fields are, so both readers agree.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from digest.categories import arxiv_categories
from digest.errors import ParseError
from digest.identity import parse_arxiv_id, parse_doi
from digest.models import Paper
from digest.sources.text import clip, html_to_line, html_to_text, one_line, unfold

#: Every announce type arXiv listings use.
ANNOUNCE_TYPES = frozenset({"new", "cross", "replace", "replace-cross"})
#: The announce types that count as new papers unless a source says otherwise.
DEFAULT_ANNOUNCE_TYPES = frozenset({"new", "cross"})

_ARXIV_PREFIX = re.compile(
    r"^\s*arXiv:\S+\s+Announce Type:\s*(?P<type>[\w-]+)\s*(?:Abstract:\s*)?", re.IGNORECASE
)
_LEGACY_SUFFIX = re.compile(
    r"\s*\(arXiv:\S+\s*\[(?P<category>[^\]]*)\]\s*(?P<flag>UPDATED|CROSS LISTED)?\)\s*$", re.IGNORECASE
)
_LEGACY_TYPES = {None: "new", "updated": "replace", "cross listed": "cross"}


@dataclass(frozen=True, slots=True)
class RawEntry:
    """One feed entry as read, before it becomes a :class:`Paper` (shared by both readers)."""

    title: str
    title_is_html: bool
    summary: str
    summary_is_html: bool
    authors: tuple[str, ...]
    #: id/guid, the entry's link, its other links: searched for an arXiv id, then a DOI.
    ids: tuple[str, ...]
    #: explicit DOI fields (``arxiv:doi``, ``prism:doi``, ``dc:identifier``).
    dois: tuple[str, ...]
    link: str | None
    announce_type: str | None
    published: dt.date | None
    #: the entry's category terms as listed (RSS ``<category>``, Atom ``term``), any vocabulary.
    categories: tuple[str, ...] = ()
    #: ``arxiv:primary_category`` (the arXiv API), listed first when given.
    primary_category: str | None = None


def check_arxiv_error(feed_title: str, entries: Iterable[tuple[str, str, str]], *, source: str, url: str) -> None:
    """Raise :class:`ParseError` for arXiv's error answers.

    ``entries`` are (title, id, summary) triples.  arXiv's listings answer an unknown category
    with a feed titled "Feed error for query: …"; its API answers a bad query with one entry
    titled "Error" whose id is under ``arxiv.org/api/errors``.
    """
    if feed_title.strip().lower().startswith("feed error for query"):
        raise feed_error(source, f"arXiv answered {clip(feed_title)!r} (is the category right?)", url)
    for title, entry_id, summary in entries:
        if title.strip() == "Error" and "arxiv.org/api/errors" in entry_id:
            raise feed_error(source, f"arXiv API error: {clip(summary) or entry_id}", url)


def entry_ids(entry_id: str, link: str | None, hrefs: Iterable[str]) -> tuple[str, ...]:
    """The strings searched for an entry's arXiv id and DOI: its id, its link, its other links."""
    ids = [entry_id] if entry_id else []
    if link:
        ids.append(link)
    ids.extend(href for href in hrefs if href != link)
    return tuple(ids)


def build_papers(
    entries: Iterable[RawEntry],
    *,
    source: str,
    announce_types: frozenset[str] = DEFAULT_ANNOUNCE_TYPES,
    warn: Callable[[str], None] | None = None,
) -> list[Paper]:
    """Turn raw entries into papers: filter by announce type, clean text, find identities."""
    builder = PaperBuilder(source=source, announce_types=announce_types, warn=warn)
    for entry in entries:
        builder.add(entry)
    return builder.papers


class PaperBuilder:
    """:func:`build_papers` one entry at a time, for a reader that drops each entry once it is added."""

    def __init__(
        self,
        *,
        source: str,
        announce_types: frozenset[str] = DEFAULT_ANNOUNCE_TYPES,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.source = source
        self.announce_types = announce_types
        self.warn = warn
        self.papers: list[Paper] = []
        self._index = 0  # of the next entry, kept or not

    def add(self, entry: RawEntry) -> None:
        """Make the entry's paper, unless its announce type is not wanted or it has no title."""
        index = self._index
        self._index += 1
        title = html_to_line(entry.title) if entry.title_is_html else one_line(entry.title)
        announce_type = entry.announce_type
        primary = entry.primary_category
        legacy = _LEGACY_SUFFIX.search(title)
        if legacy:
            primary = primary or legacy.group("category").strip()  # the legacy listing names the primary only
            # The legacy format is "Title. (arXiv:…)": the period belongs to the suffix.
            title = title[: legacy.start()].rstrip().removesuffix(".")
            if announce_type is None:
                flag = legacy.group("flag")
                announce_type = _LEGACY_TYPES[flag.lower() if flag else None]
        abstract = _abstract(entry)
        if announce_type is None:
            listed = _ARXIV_PREFIX.match(entry.summary)
            announce_type = listed.group("type").lower() if listed else None
        if announce_type is not None and announce_type not in self.announce_types:
            return
        if not title:
            if self.warn is not None:
                self.warn(f"{self.source}: entry {index + 1} has no title; skipped")
            return
        arxiv_id = _first(parse_arxiv_id(text) for text in entry.ids)
        doi = _first(parse_doi(text) for text in entry.dois) or _first(
            parse_doi(text) for text in entry.ids if not parse_arxiv_id(text)
        )
        # arXiv categories for arXiv papers only: a blog's or a journal's tags are not arXiv's taxonomy.
        categories = arxiv_categories(entry.categories, primary) if arxiv_id else ()
        self.papers.append(
            Paper(
                title=title,
                abstract=abstract,
                url=entry.link,
                arxiv_id=arxiv_id,
                doi=doi,
                authors=_authors(entry.authors),
                source=self.source,
                position=len(self.papers),
                published=entry.published,
                categories=categories,
            )
        )



def parse_date(raw: str | None) -> dt.date | None:
    """The calendar date of an ISO 8601 / RFC 3339 or RFC 822 date string, as written (no UTC shift)."""
    if not raw:
        return None
    text = raw.strip()
    try:
        return dt.datetime.fromisoformat(text).date()
    except ValueError:
        pass
    try:
        return email.utils.parsedate_to_datetime(text).date()
    except (TypeError, ValueError, IndexError):
        return None



def sanitize_html(html: str) -> str:
    """Run feedparser's HTML sanitizer over a fragment (drops scripts, styles, unsafe markup)."""
    from feedparser.sanitizer import _sanitize_html  # imported by the first feed that has HTML

    return str(_sanitize_html(html, "utf-8", "text/html"))



def feed_error(source: str, what: str, url: str = "") -> ParseError:
    """A one-line ParseError naming the source; the URL goes into the hint."""
    return ParseError(f"{source}: {what}", hint=f"fetched from {url}" if url else None)


# --- internals -------------------------------------------------------------------------------


def _abstract(entry: RawEntry) -> str:
    listed = _ARXIV_PREFIX.match(entry.summary)
    if listed:  # an arXiv listing: plain text behind the prefix, whatever the feed type says
        return unfold(entry.summary[listed.end() :])
    if entry.summary_is_html:
        return html_to_text(sanitize_html(entry.summary))
    return unfold(entry.summary)



def _authors(raw: tuple[str, ...]) -> tuple[str, ...]:
    names = [html_to_line(name) for name in raw]
    if len(names) == 1:
        names = _split_names(names[0])
    return tuple(name for name in names if name)



def _split_names(text: str) -> list[str]:
    """Split "A, B (Univ, City), C" at the commas outside brackets."""
    names: list[str] = []
    depth = start = 0
    for i, char in enumerate(text):
        if char in "([":
            depth += 1
        elif char in ")]":
            depth = max(0, depth - 1)
        elif char == "," and depth == 0:
            names.append(text[start:i])
            start = i + 1
    names.append(text[start:])
    return [one_line(name) for name in names if name.strip()]



def _first(values: Iterable[str | None]) -> str | None:
    for value in values:
        if value:
            return value
    return None

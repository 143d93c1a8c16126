"""Papers out of any RSS 0.9x/1.0/2.0 or Atom feed body (the ``feed`` source kind).

Formats handled, besides ordinary blog and journal feeds:

- arXiv listings (``rss.arxiv.org/rss/<cat>`` and ``/atom/<cat>``): ``arxiv:announce_type``
  (new / cross / replace / replace-cross) filters entries, ``dc:creator`` holds the authors as
  one comma-separated string, the description is ``arXiv:<id> Announce Type: <t> Abstract: …``
  and is plain text (``<RET>`` in it is text, not a tag);
- legacy arXiv RSS 1.0 (RDF) listings, whose titles end in ``(arXiv:<id> [cat] UPDATED)``;
- arXiv API answers (``export.arxiv.org/api/query``).

What a paper gets:

- ``title``: one line, HTML reduced to text;
- ``abstract``: plain text, paragraphs separated by one blank line.  HTML summaries go through
  feedparser's sanitizer, then tags are dropped and entities decoded: no feed HTML is passed on;
- ``authors``: one name per item (a single comma-separated author string is split);
- ``arxiv_id`` from any id/guid/link, ``doi`` from ``arxiv:doi``/``prism:doi``/``dc:identifier``
  or a link, ``published`` from the entry's own date (the date as the feed wrote it, not UTC);
- ``position``: the index among the entries kept.

Errors (all :class:`~digest.errors.ParseError`, one line naming the source): an empty body,
invalid UTF-8 in a body that declares UTF-8, an HTML page or anything else that is not a feed,
broken or truncated XML that yields no entry, arXiv's "Feed error for query" feed and its API's
"Error" entry.  A well-formed feed with no items (an arXiv holiday) gives ``[]``.

feedparser is lenient and flags harmless things (an undefined entity, a wrong content type) as
"bozo"; a bozo feed that still yields entries is accepted, unless the document was cut short.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import io
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from xml.sax import SAXParseException

import feedparser
from feedparser.sanitizer import _sanitize_html

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
    r"\s*\(arXiv:\S+\s*\[[^\]]*\]\s*(?P<flag>UPDATED|CROSS LISTED)?\)\s*$", re.IGNORECASE
)
_LEGACY_TYPES = {None: "new", "updated": "replace", "cross listed": "cross"}
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*\bencoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_CHARSET = re.compile(r"charset\s*=\s*\"?([A-Za-z0-9._-]+)", re.IGNORECASE)
_HTML_START = re.compile(rb"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body)\b", re.I | re.S)
_HTML_TITLE = re.compile(rb"<title[^>]*>(.*?)</title", re.I | re.S)
# expat's messages for a document that ends before its last element is closed.
_TRUNCATED = ("no element found", "unclosed token", "unclosed cdata section")
_UTF8 = frozenset({"utf-8", "utf8"})


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


def parse_feed(
    body: bytes,
    *,
    source: str,
    announce_types: frozenset[str] = DEFAULT_ANNOUNCE_TYPES,
    url: str = "",
    content_type: str = "",
    warn: Callable[[str], None] | None = None,
) -> list[Paper]:
    """Parse an RSS or Atom feed body into papers, keeping arXiv entries of ``announce_types``.

    ``url`` (where the body came from) resolves relative links and goes into error hints;
    ``content_type`` is the HTTP Content-Type, whose charset wins over the document's.
    ``warn`` is told about each entry skipped for having no title.
    Raises :class:`ParseError` when the body is not a usable feed.
    """
    check_body(body, source=source, url=url, content_type=content_type)
    entries = read_entries(body, source=source, url=url, content_type=content_type)
    return build_papers(entries, source=source, announce_types=announce_types, warn=warn)


def check_body(body: bytes, *, source: str, url: str = "", content_type: str = "") -> None:
    """Reject what no feed reader could use: an empty body, an HTML page, undecodable UTF-8."""
    if not body.strip():
        raise _error(source, "the response is empty, not a feed", url)
    if _HTML_START.match(body[:4096]):
        found = _HTML_TITLE.search(body[:65536])
        title = clip(found.group(1).decode("utf-8", "replace")) if found else ""
        what = f"got an HTML page ({title!r}), not a feed" if title else "got an HTML page, not a feed"
        raise _error(source, what, url)
    if _declared_encoding(body, content_type) in _UTF8:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = body.count(b"\n", 0, exc.start) + 1
            raise _error(
                source, f"invalid UTF-8 at byte {exc.start} (line {line}) though UTF-8 is declared", url
            ) from exc


def read_entries(body: bytes, *, source: str, url: str = "", content_type: str = "") -> list[RawEntry]:
    """Read a feed with feedparser into raw entries; raise :class:`ParseError` if it is no feed."""
    headers = {"content-location": url} if url else {}
    if content_type:
        headers["content-type"] = content_type
    parsed = feedparser.parse(
        io.BytesIO(body),  # never the bytes themselves: feedparser would try them as a file name
        response_headers=headers,
        sanitize_html=False,  # abstracts of arXiv listings are text; HTML is sanitized below
        resolve_relative_uris=False,
    )
    entries: list[Any] = parsed.get("entries", [])
    feed: Mapping[str, Any] = parsed.get("feed", {})
    problem = parsed.get("bozo_exception") if parsed.get("bozo") else None
    syntax = problem if isinstance(problem, SAXParseException) else None
    where = f" at line {_line(syntax, body)}" if syntax else ""
    if syntax and syntax.getMessage().lower() in _TRUNCATED:
        raise _error(source, f"the feed ends early (truncated?): {syntax.getMessage()}{where}", url)
    if not parsed.get("version") and not entries:
        detail = f" ({clip(_describe(problem))}{where})" if problem else ""
        raise _error(source, f"not an RSS or Atom feed{detail}", url)
    if syntax and not entries:
        raise _error(source, f"malformed XML: {syntax.getMessage()}{where}", url)
    _check_arxiv_errors(feed, entries, source=source, url=url)
    return [_raw_entry(entry) for entry in entries]


def check_arxiv_error(feed_title: str, entries: Iterable[tuple[str, str, str]], *, source: str, url: str) -> None:
    """Raise :class:`ParseError` for arXiv's error answers.

    ``entries`` are (title, id, summary) triples.  arXiv's listings answer an unknown category
    with a feed titled "Feed error for query: …"; its API answers a bad query with one entry
    titled "Error" whose id is under ``arxiv.org/api/errors``.
    """
    if feed_title.strip().lower().startswith("feed error for query"):
        raise _error(source, f"arXiv answered {clip(feed_title)!r} (is the category right?)", url)
    for title, entry_id, summary in entries:
        if title.strip() == "Error" and "arxiv.org/api/errors" in entry_id:
            raise _error(source, f"arXiv API error: {clip(summary) or entry_id}", url)


def build_papers(
    entries: Iterable[RawEntry],
    *,
    source: str,
    announce_types: frozenset[str] = DEFAULT_ANNOUNCE_TYPES,
    warn: Callable[[str], None] | None = None,
) -> list[Paper]:
    """Turn raw entries into papers: filter by announce type, clean text, find identities."""
    papers: list[Paper] = []
    for index, entry in enumerate(entries):
        title = html_to_line(entry.title) if entry.title_is_html else one_line(entry.title)
        announce_type = entry.announce_type
        legacy = _LEGACY_SUFFIX.search(title)
        if legacy:
            # The legacy format is "Title. (arXiv:…)": the period belongs to the suffix.
            title = title[: legacy.start()].rstrip().removesuffix(".")
            if announce_type is None:
                flag = legacy.group("flag")
                announce_type = _LEGACY_TYPES[flag.lower() if flag else None]
        abstract = _abstract(entry)
        if announce_type is None:
            listed = _ARXIV_PREFIX.match(entry.summary)
            announce_type = listed.group("type").lower() if listed else None
        if announce_type is not None and announce_type not in announce_types:
            continue
        if not title:
            if warn is not None:
                warn(f"{source}: entry {index + 1} has no title; skipped")
            continue
        arxiv_id = _first(parse_arxiv_id(text) for text in entry.ids)
        doi = _first(parse_doi(text) for text in entry.dois) or _first(
            parse_doi(text) for text in entry.ids if not parse_arxiv_id(text)
        )
        papers.append(
            Paper(
                title=title,
                abstract=abstract,
                url=entry.link,
                arxiv_id=arxiv_id,
                doi=doi,
                authors=_authors(entry.authors),
                source=source,
                position=len(papers),
                published=entry.published,
            )
        )
    return papers


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
    return str(_sanitize_html(html, "utf-8", "text/html"))


# --- internals -------------------------------------------------------------------------------


def _error(source: str, what: str, url: str) -> ParseError:
    return ParseError(f"{source}: {what}", hint=f"fetched from {url}" if url else None)


def _line(problem: SAXParseException, body: bytes) -> int:
    # feedparser puts an XML declaration in front of a body that has none: one line more.
    line = problem.getLineNumber()
    declared = body.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<?xml")
    return line if declared else max(1, line - 1)


def _describe(problem: object) -> str:
    return problem.getMessage() if isinstance(problem, SAXParseException) else str(problem)


def _declared_encoding(body: bytes, content_type: str) -> str | None:
    if body.startswith(b"\xef\xbb\xbf"):
        return "utf-8"
    charset = _CHARSET.search(content_type)
    if charset:
        return charset.group(1).lower()
    declared = _XML_ENCODING.match(body[:512])
    return declared.group(1).decode("ascii").lower() if declared else None


def _check_arxiv_errors(feed: Mapping[str, Any], entries: list[Any], *, source: str, url: str) -> None:
    triples = (
        (str(e.get("title", "")), str(e.get("id", "")), str(e.get("summary", ""))) for e in entries[:1]
    )
    check_arxiv_error(str(feed.get("title", "")), triples, source=source, url=url)


def _is_html(detail: Mapping[str, Any] | None) -> bool:
    return detail is not None and detail.get("type") in ("text/html", "application/xhtml+xml")


def _raw_entry(entry: Mapping[str, Any]) -> RawEntry:
    link = entry.get("link") or None
    ids = [str(entry["id"])] if entry.get("id") else []
    if link:
        ids.append(str(link))
    ids.extend(str(li["href"]) for li in entry.get("links", ()) if li.get("href") and li["href"] != link)
    dois = [str(entry[k]) for k in ("arxiv_doi", "prism_doi", "dc_identifier") if entry.get(k)]
    authors = tuple(str(a["name"]) for a in entry.get("authors", ()) if a.get("name"))
    announce = entry.get("arxiv_announce_type")
    return RawEntry(
        title=str(entry.get("title", "")),
        title_is_html=_is_html(entry.get("title_detail")),
        summary=str(entry.get("summary", "")),
        summary_is_html=_is_html(entry.get("summary_detail")),
        authors=authors,
        ids=tuple(ids),
        dois=tuple(dois),
        link=str(link) if link else None,
        announce_type=one_line(str(announce)).lower() if announce else None,
        published=_entry_date(entry),
    )


def _entry_date(entry: Mapping[str, Any]) -> dt.date | None:
    for key in ("published", "updated"):
        found = parse_date(entry.get(key))
        if found:
            return found
        parsed: time.struct_time | None = entry.get(f"{key}_parsed")
        if parsed:
            return dt.date(parsed.tm_year, parsed.tm_mon, parsed.tm_mday)
    return None


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

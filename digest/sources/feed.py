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
- ``categories``: an arXiv paper's category codes, primary first: ``arxiv:primary_category``
  (the API), then each ``<category>`` (RSS text, Atom ``term``), or the ``[cat]`` of a legacy
  title.  Terms that are not arXiv codes, and every category of an entry without an arXiv id
  (a blog's tags), are dropped (:mod:`digest.categories`);
- ``position``: the index among the entries kept.

Errors (all :class:`~digest.errors.ParseError`, one line naming the source): an empty body,
invalid UTF-8 in a body that declares UTF-8, an HTML page or anything else that is not a feed,
broken or truncated XML that yields no entry, arXiv's "Feed error for query" feed and its API's
"Error" entry.  A well-formed feed with no items (an arXiv holiday) gives ``[]``.

Plain, well-formed RSS 2.0 and Atom feeds (arXiv's listings and API among them) are read by
``feed_fast`` with lxml, about ten times faster; anything else, or anything it does not model
exactly, is read by feedparser here.  Both give the same papers.

feedparser is lenient and flags harmless things (an undefined entity, a wrong content type) as
"bozo"; a bozo feed that still yields entries is accepted, unless the document was cut short.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import time
from collections.abc import Callable, Mapping
from typing import IO, Any
from xml.sax import SAXParseException

from digest.models import Paper
from digest.sources import feed_fast
from digest.sources.body import Body
from digest.sources.entries import (
    ANNOUNCE_TYPES,
    DEFAULT_ANNOUNCE_TYPES,
    RawEntry,
    build_papers,
    check_arxiv_error,
    entry_ids,
    feed_error,
    parse_date,
)
from digest.sources.text import clip, one_line

__all__ = ["ANNOUNCE_TYPES", "DEFAULT_ANNOUNCE_TYPES", "check_body", "parse_feed", "read_entries"]

ARXIV_NAMESPACE = "http://arxiv.org/schemas/atom"
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*\bencoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_CHARSET = re.compile(r"charset\s*=\s*\"?([A-Za-z0-9._-]+)", re.IGNORECASE)
_HTML_START = re.compile(
    rb"^(?:\xef\xbb\xbf)?\s*(?:<\?xml[^>]*\?>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body)\b",
    re.I | re.S,
)
_HTML_TITLE = re.compile(rb"<title[^>]*>(.*?)</title", re.I | re.S)
# expat's messages for a document that ends before its last element is closed.
_TRUNCATED = ("no element found", "unclosed token", "unclosed cdata section")
_UTF8 = frozenset({"utf-8", "utf8"})
# A general entity declared in the document's DOCTYPE (a parameter entity, "<!ENTITY %", is not).
_ENTITY_DECLARATION = re.compile(rb"<!ENTITY\s+([A-Za-z_:][\w.:-]*)")


def parse_feed(
    body: bytes | IO[bytes] | Body,
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
    ``warn`` is told about each entry skipped for having no title.  ``body`` may be a binary
    file (a spooled response): it is then read in pieces, and whole only by feedparser.
    Raises :class:`ParseError` when the body is not a usable feed.
    """
    content = Body.of(body)
    check_body(content, source=source, url=url, content_type=content_type)
    papers = feed_fast.read_papers(
        content, source=source, url=url, content_type=content_type, announce_types=announce_types, warn=warn
    )
    if papers is None:  # not a plain, well-formed RSS 2.0 / Atom feed: feedparser reads it
        entries = read_entries(content.read(), source=source, url=url, content_type=content_type)
        papers = build_papers(entries, source=source, announce_types=announce_types, warn=warn)
        papers = _without_unexpanded_entities(papers, content.head(65536), source=source, warn=warn)
    return papers


def _without_unexpanded_entities(
    papers: list[Paper], head: bytes, *, source: str, warn: Callable[[str], None] | None
) -> list[Paper]:
    """The papers, less those whose text holds a reference to an entity the feed's DOCTYPE declares.

    Such entities are never expanded (the "billion laughs" guard), so ``&lol9;`` would reach the
    digest as a title: an unexpanded entity is not text.  Each paper dropped is a warning.
    """
    names = sorted({name.decode("ascii", "replace") for name in _ENTITY_DECLARATION.findall(head)})
    if not names:
        return papers
    reference = re.compile("&(" + "|".join(map(re.escape, names)) + r")(?![\w.:-])")
    kept = []
    for paper in papers:
        found = reference.search(" ".join((paper.title, paper.abstract, *paper.authors)))
        if found is None:
            kept.append(paper)
        elif warn is not None:
            warn(
                f"{source}: entry {clip(paper.title, 60)!r} skipped: it uses the entity &{found.group(1)}; that the "
                "feed declares in its DOCTYPE, and digest does not expand entities a feed declares"
            )
    return kept


def check_body(body: bytes | IO[bytes] | Body, *, source: str, url: str = "", content_type: str = "") -> None:
    """Reject what no feed reader could use: an empty body, an HTML page, undecodable UTF-8.

    The body is read in pieces: neither a stripped copy nor the decoded text is ever made.
    """
    content = Body.of(body)
    if content.is_blank():
        raise feed_error(source, "the response is empty, not a feed", url)
    head = content.head(65536)
    if _HTML_START.match(head[:4096]):
        found = _HTML_TITLE.search(head)
        title = clip(found.group(1).decode("utf-8", "replace")) if found else ""
        what = f"got an HTML page ({title!r}), not a feed" if title else "got an HTML page, not a feed"
        raise feed_error(source, what, url)
    if _declared_encoding(head[:512], content_type) in _UTF8:
        invalid = content.invalid_utf8()
        if invalid is not None:
            line = content.count(b"\n", invalid.start) + 1
            raise feed_error(
                source, f"invalid UTF-8 at byte {invalid.start} (line {line}) though UTF-8 is declared", url
            ) from invalid


def read_entries(body: bytes, *, source: str, url: str = "", content_type: str = "") -> list[RawEntry]:
    """Read a feed with feedparser into raw entries; raise :class:`ParseError` if it is no feed."""
    headers = {"content-location": url} if url else {}
    if content_type:
        headers["content-type"] = content_type
    import feedparser  # ~85 ms: only for a feed the fast reader declines

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
        raise feed_error(source, f"the feed ends early (truncated?): {syntax.getMessage()}{where}", url)
    if not parsed.get("version") and not entries:
        detail = f" ({clip(_describe(problem))}{where})" if problem else ""
        raise feed_error(source, f"not an RSS or Atom feed{detail}", url)
    if syntax and not entries:
        raise feed_error(source, f"malformed XML: {syntax.getMessage()}{where}", url)
    _check_arxiv_errors(feed, entries, source=source, url=url)
    prefix = _prefix(parsed.get("namespaces", {}), ARXIV_NAMESPACE, "arxiv")
    return [_raw_entry(entry, prefix) for entry in entries]


# --- internals -------------------------------------------------------------------------------


def _line(problem: SAXParseException, body: bytes) -> int:
    # feedparser puts an XML declaration in front of a body that has none: one line more.
    line = problem.getLineNumber() or 1
    declared = body.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<?xml")
    return line if declared else max(1, line - 1)


def _describe(problem: object) -> str:
    return problem.getMessage() if isinstance(problem, SAXParseException) else str(problem)


def _declared_encoding(head: bytes, content_type: str) -> str | None:
    """The encoding the Content-Type or the document's first 512 bytes (``head``) declare."""
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8"
    charset = _CHARSET.search(content_type)
    if charset:
        return charset.group(1).lower()
    declared = _XML_ENCODING.match(head[:512])
    return declared.group(1).decode("ascii").lower() if declared else None


def _check_arxiv_errors(feed: Mapping[str, Any], entries: list[Any], *, source: str, url: str) -> None:
    triples = (
        (str(e.get("title", "")), str(e.get("id", "")), str(e.get("summary", ""))) for e in entries[:1]
    )
    check_arxiv_error(str(feed.get("title", "")), triples, source=source, url=url)


def _is_html(detail: Mapping[str, Any] | None) -> bool:
    return detail is not None and detail.get("type") in ("text/html", "application/xhtml+xml")


def _prefix(namespaces: Mapping[str, str], uri: str, usual: str) -> str:
    # feedparser names unknown elements after the document's prefix (arxiv:doi -> arxiv_doi).
    found = [prefix for prefix, declared in namespaces.items() if declared == uri and prefix]
    return found[0].lower() if found else usual


def _raw_entry(entry: Mapping[str, Any], arxiv: str) -> RawEntry:
    link = str(entry["link"]) if entry.get("link") else None
    hrefs = [str(li["href"]) for li in entry.get("links", ()) if li.get("href")]
    dois = [str(entry[k]) for k in (f"{arxiv}_doi", "prism_doi", "dc_identifier") if entry.get(k)]
    authors = tuple(str(a["name"]) for a in entry.get("authors", ()) if a.get("name"))
    announce = entry.get(f"{arxiv}_announce_type")
    terms = tuple(str(tag["term"]) for tag in entry.get("tags") or () if tag.get("term"))
    primary = entry.get(f"{arxiv}_primary_category")
    return RawEntry(
        title=str(entry.get("title", "")),
        title_is_html=_is_html(entry.get("title_detail")),
        summary=str(entry.get("summary", "")),
        summary_is_html=_is_html(entry.get("summary_detail")),
        authors=authors,
        ids=entry_ids(str(entry.get("id") or ""), link, hrefs),
        dois=tuple(dois),
        link=link,
        announce_type=one_line(str(announce)).lower() if announce else None,
        published=_entry_date(entry),
        categories=terms,
        primary_category=str(primary["term"]) if isinstance(primary, Mapping) and primary.get("term") else None,
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



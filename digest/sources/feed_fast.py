"""A fast reader, with lxml, for plain well-formed RSS 2.0 and Atom feeds such as arXiv's.

On a 10,000-item arXiv listing, feedparser reads about 1,500 items a second and this reader,
with the shared paper building, 12,000-16,000 (``bench/feeds.py``).
It produces the same :class:`~digest.sources.entries.RawEntry` values as the feedparser
reader (``feed.read_entries``), which tests check on every fixture, and it declines (returns
``None``, so feedparser reads the feed) on anything it does not model exactly:

- XML that lxml cannot parse, a DOCTYPE, an encoding other than UTF-8;
- a root other than ``<rss version="2.0">`` or an Atom ``<feed>``;
- an item/entry element it does not know, or markup nested inside a text element;
- permalink guids, relative links, ``xhtml`` or unknown content types, e-mail addresses in
  author names, unreadable dates, repeated single-valued elements.

Every text goes through the two fix-ups feedparser applies to all text (windows-1252 control
characters mapped, UTF-8 read as Latin-1 repaired), so the two readers agree on odd bytes too.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from typing import IO

from lxml import etree

from digest.models import Paper
from digest.sources.body import Body
from digest.sources.entries import (
    DEFAULT_ANNOUNCE_TYPES,
    PaperBuilder,
    RawEntry,
    check_arxiv_error,
    entry_ids,
    parse_date,
)
from digest.sources.text import one_line

ATOM = "{http://www.w3.org/2005/Atom}"
ARXIV = "{http://arxiv.org/schemas/atom}"
DC = "{http://purl.org/dc/elements/1.1/}"

_RSS_ITEM = frozenset(
    {
        "title", "link", "description", "guid", "category", "pubDate",
        f"{DC}creator", f"{DC}rights",
        f"{ARXIV}announce_type", f"{ARXIV}DOI", f"{ARXIV}doi",
        f"{ARXIV}journal_reference", f"{ARXIV}journal_ref", f"{ARXIV}comment",
    }
)  # fmt: skip
_ATOM_ENTRY = frozenset(
    {
        f"{ATOM}id", f"{ATOM}title", f"{ATOM}updated", f"{ATOM}published", f"{ATOM}link",
        f"{ATOM}summary", f"{ATOM}category", f"{ATOM}author", f"{ATOM}rights",
        f"{DC}creator", f"{DC}rights",
        f"{ARXIV}announce_type", f"{ARXIV}DOI", f"{ARXIV}doi", f"{ARXIV}journal_reference",
        f"{ARXIV}journal_ref", f"{ARXIV}comment", f"{ARXIV}primary_category",
    }
)  # fmt: skip
_ATOM_AUTHOR = frozenset({f"{ATOM}name", f"{ARXIV}affiliation"})
# Children that are not text: their content is never read.
_EMPTY_OK = frozenset({f"{ATOM}link", f"{ATOM}category", f"{ARXIV}primary_category", f"{ATOM}author"})
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_CONTENT_TYPES = {"text": "text/plain", "plain": "text/plain", "html": "text/html", "xhtml": "application/xhtml+xml"}
_ABSOLUTE_LINK = re.compile(r"^https?://[^\s/]+\S*$")
_NO_SPACE = re.compile(r"^\S+$")
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_XML_DECL = re.compile(rb"""^(?:\xef\xbb\xbf)?\s*<\?xml[^>]*?(?:\bencoding\s*=\s*["']([A-Za-z0-9._-]+)["'])?[^>]*\?>""")
_CHARSET = re.compile(r"charset\s*=\s*\"?([A-Za-z0-9._-]+)", re.IGNORECASE)
_UTF8 = (None, "utf-8", "utf8")
# feedparser's own first tests, so that importing it (~85 ms) waits for a text that needs it.
_HTML_HINT = re.compile(r"</(\w+)>|&#?\w+;")
_CP1252_CONTROLS = re.compile("[\x80-\x9f]")


def _looks_like_html(text: str) -> bool:
    """feedparser's test of whether a title is HTML (it needs a close tag or an entity to be)."""
    if _HTML_HINT.search(text) is None:
        return False
    from feedparser.mixin import _FeedParserMixin

    return bool(_FeedParserMixin.looks_like_html(text))


def _map_cp1252(text: str) -> str:
    """feedparser's mapping of windows-1252 control characters (C1 codes) to what they stand for."""
    if _CP1252_CONTROLS.search(text) is None:
        return text
    from feedparser.html import _cp1252

    return text.translate(_cp1252)


_CHUNK = 1 << 20  # bytes fed to the parser at a time
_HEAD = 1 << 16  # bytes of the document's start that say whether this reader applies


class _Decline(Exception):
    """The feed holds something this reader does not model: feedparser reads it instead."""


def read_entries(body: bytes | IO[bytes] | Body, *, source: str, url: str = "", content_type: str = "") -> list[RawEntry] | None:
    """Read a plain RSS 2.0 / Atom feed with lxml, or return None to leave it to feedparser.

    Raises :class:`~digest.errors.ParseError` for arXiv's error answers, like the other reader.
    """
    entries: list[RawEntry] = []
    return entries if _read(body, entries.append, source=source, url=url, content_type=content_type) else None


def read_papers(
    body: bytes | IO[bytes] | Body,
    *,
    source: str,
    url: str = "",
    content_type: str = "",
    announce_types: frozenset[str] = DEFAULT_ANNOUNCE_TYPES,
    warn: Callable[[str], None] | None = None,
) -> list[Paper] | None:
    """``build_papers(read_entries(body, ...), ...)`` in one pass, or None as :func:`read_entries`.

    Each entry becomes a paper as soon as its item is parsed and is then dropped: the entries of
    a big listing never exist all at once beside the papers.  ``warn`` hears of skipped entries
    only when this reader keeps the feed (when it declines, the feedparser reader warns instead).
    """
    warnings: list[str] = []
    builder = PaperBuilder(source=source, announce_types=announce_types, warn=warnings.append)
    if not _read(body, builder.add, source=source, url=url, content_type=content_type):
        return None
    if warn is not None:
        for warning in warnings:
            warn(warning)
    return builder.papers


def _read(body: bytes | IO[bytes] | Body, take: Callable[[RawEntry], None], *, source: str, url: str, content_type: str) -> bool:
    """Give each entry of a plain RSS 2.0 / Atom feed to ``take``; False to leave the feed to feedparser.

    What ``take`` raises is raised after the whole feed is read and checked for arXiv's error
    answers (as when the entries were read first and then taken), and ``take`` sees no entry
    after it raised.
    """
    content = Body.of(body)
    if not _applies(content.head(_HEAD), content_type):
        return False
    parser = etree.XMLPullParser(  # one per call: lxml parsers must not be shared between threads
        events=("end",), tag=("item", f"{ATOM}entry"),
        resolve_entities=False, no_network=True, load_dtd=False, remove_comments=True, remove_pis=True,
    )  # fmt: skip
    taken = _Taker(take)
    try:
        read = _read_incrementally(parser, content, taken)
    except (etree.XMLSyntaxError, _Decline):
        return False
    if read is None:
        return False
    first = [(e.title, e.ids[0] if e.ids else "", e.summary) for e in taken.first]
    check_arxiv_error(read, first, source=source, url=url)
    if taken.failure is not None:
        raise taken.failure
    return True


class _Taker:
    """Hands entries on, keeping the first one (for the arXiv error check) and what the receiver raised."""

    def __init__(self, take: Callable[[RawEntry], None]) -> None:
        self.take = take
        self.first: list[RawEntry] = []
        self.failure: Exception | None = None

    def __call__(self, entry: RawEntry) -> None:
        if not self.first:
            self.first.append(entry)
        if self.failure is None:
            try:
                self.take(entry)
            except Exception as exc:  # noqa: BLE001 - raised once the feed is known to be read here
                self.failure = exc


def _read_incrementally(parser: etree.XMLPullParser, body: Body, take: Callable[[RawEntry], None]) -> str | None:
    """The feed's title, each entry given to ``take``; None when the root is neither RSS 2.0 nor Atom.

    The body goes to the parser in chunks and each item (entry) is read as soon as it is complete,
    then emptied: the whole tree of a 10,000-item listing (~60 MB) never exists at once.  The
    outcome is what reading the finished tree would give: broken XML anywhere or a structure this
    reader does not model declines, and only then does an error from an item count.
    """
    root: etree._Element | None = None
    rss = False
    failure: Exception | None = None
    for piece in body.pieces(_CHUNK):
        parser.feed(piece)
        for _, element in parser.read_events():
            if not isinstance(element, etree._Element):
                continue
            if root is None:
                root = element.getroottree().getroot()
                rss = root.tag == "rss" and root.get("version") == "2.0"
                if not rss and root.tag != f"{ATOM}feed":
                    return None
            if not _is_entry(element, root, rss):
                continue
            if failure is None:
                try:
                    entry = _rss_item(element) if rss else _atom_entry(element)
                except _Decline:
                    raise
                except Exception as exc:  # noqa: BLE001 - raised below if the document itself is fine
                    failure = exc
                else:
                    take(entry)
            element.clear()
    closed = parser.close()
    if root is None:  # no item or entry at all
        root = closed
        rss = root.tag == "rss" and root.get("version") == "2.0"
        if not rss and root.tag != f"{ATOM}feed":
            return None
    if rss:
        channels = [child for child in root if child.tag == "channel"]
        if len(channels) != 1 or len(root) != 1:
            raise _Decline
        title = _text(channels[0].find("title"))
    else:
        title = _text(root.find(f"{ATOM}title"))
    if failure is not None:
        raise failure
    return title


def _is_entry(element: etree._Element, root: etree._Element, rss: bool) -> bool:
    """An RSS item of a channel under the root, or an Atom entry under the root."""
    parent = element.getparent()
    if rss:
        return element.tag == "item" and parent is not None and parent.tag == "channel" and parent.getparent() is root
    return element.tag == f"{ATOM}entry" and parent is root


def _applies(head: bytes, content_type: str) -> bool:
    """Whether the Content-Type and the document's start (``head``) say UTF-8 and no DOCTYPE."""
    charset = _CHARSET.search(content_type)
    if (charset.group(1).lower() if charset else None) not in _UTF8:
        return False
    declaration = _XML_DECL.match(head)
    encoding = declaration.group(1) if declaration else None
    if (encoding.decode("ascii").lower() if encoding else None) not in _UTF8:
        return False
    return not _DOCTYPE.search(head, 0, 2048)


# --- RSS 2.0 -------------------------------------------------------------------------------------


def _rss_item(item: etree._Element) -> RawEntry:
    fields: dict[str, list[etree._Element]] = {}
    for child in item:
        if child.tag not in _RSS_ITEM or len(child):
            raise _Decline
        fields.setdefault(child.tag, []).append(child)
    guid = _one(fields, "guid")
    if guid is not None and guid.get("isPermaLink") != "false":
        raise _Decline  # feedparser takes a permalink guid as the link: not modelled here
    link = _link(_text(_one(fields, "link"))) or None
    description = _one(fields, "description")
    title = _text(_one(fields, "title"))
    return RawEntry(
        title=title,
        title_is_html=_looks_like_html(title),
        summary=_text(description),
        summary_is_html=description is not None,  # RSS descriptions are HTML to feedparser
        authors=_creators(fields.get(f"{DC}creator", ())),
        ids=entry_ids(_id(_text(guid)), link, [link] if link else []),
        dois=_dois(fields),
        link=link,
        announce_type=_announce_type(fields),
        published=_date(_text(_one(fields, "pubDate"))),
        categories=tuple(term for term in map(_text, fields.get("category", ())) if term),
    )


# --- Atom ----------------------------------------------------------------------------------------


def _atom_entry(entry: etree._Element) -> RawEntry:
    fields: dict[str, list[etree._Element]] = {}
    for child in entry:
        if child.tag not in _ATOM_ENTRY or (len(child) and child.tag not in _EMPTY_OK):
            raise _Decline
        fields.setdefault(child.tag, []).append(child)
    title, title_is_html = _atom_text(_one(fields, f"{ATOM}title"))
    summary, summary_is_html = _atom_text(_one(fields, f"{ATOM}summary"))
    link, hrefs = _atom_links(fields.get(f"{ATOM}link", ()))
    authors = _atom_authors(fields.get(f"{ATOM}author", ()))
    creators = fields.get(f"{DC}creator", ())
    if authors and creators:
        raise _Decline
    published = _text(_one(fields, f"{ATOM}published"))
    updated = _text(_one(fields, f"{ATOM}updated"))
    return RawEntry(
        title=title,
        title_is_html=title_is_html,
        summary=summary,
        summary_is_html=summary_is_html,
        authors=authors or _creators(creators),
        ids=entry_ids(_id(_text(_one(fields, f"{ATOM}id"))), link, hrefs),
        dois=_dois(fields),
        link=link,
        announce_type=_announce_type(fields),
        published=_date(published) or _date(updated),
        categories=_terms(fields.get(f"{ATOM}category", ())),
        primary_category=_primary_category(_one(fields, f"{ARXIV}primary_category")),
    )


def _atom_text(element: etree._Element | None) -> tuple[str, bool]:
    if element is None:
        return "", False
    kind = (element.get("type") or "text").lower()
    kind = _CONTENT_TYPES.get(kind, kind)
    if kind not in ("text/plain", "text/html"):
        raise _Decline
    return _text(element), kind == "text/html"


def _atom_links(links: Iterable[etree._Element]) -> tuple[str | None, list[str]]:
    link: str | None = None
    hrefs: list[str] = []
    for element in links:
        href = _link(element.get("href") or "")
        if not href or len(element):
            raise _Decline
        rel = element.get("rel") or "alternate"
        kind = element.get("type") or ("application/atom+xml" if rel == "self" else "text/html")
        if rel == "alternate" and _CONTENT_TYPES.get(kind.lower(), kind.lower()) in _HTML_TYPES:
            link = href  # feedparser keeps the last alternate HTML link
        hrefs.append(href)
    return link, hrefs


def _terms(categories: Iterable[etree._Element]) -> tuple[str, ...]:
    terms: list[str] = []
    for element in categories:
        term = element.get("term")
        if term is None:
            raise _Decline  # a category named by its text or label: not modelled here
        if term.strip():
            terms.append(_fixed(term).strip())
    return tuple(terms)


def _primary_category(element: etree._Element | None) -> str | None:
    if element is None:
        return None
    term = (element.get("term") or "").strip()
    return _fixed(term) if term else None


def _atom_authors(authors: Iterable[etree._Element]) -> tuple[str, ...]:
    names: list[str] = []
    for author in authors:
        if author.text and author.text.strip():
            raise _Decline
        for child in author:
            if child.tag not in _ATOM_AUTHOR or len(child):
                raise _Decline
        name = _text(author.find(f"{ATOM}name"))
        if "@" in name:
            raise _Decline
        if name:
            names.append(name)
    return tuple(names)


# --- shared --------------------------------------------------------------------------------------


def _one(fields: dict[str, list[etree._Element]], tag: str) -> etree._Element | None:
    found = fields.get(tag)
    if not found:
        return None
    if len(found) > 1:
        raise _Decline
    return found[0]


def _text(element: etree._Element | None) -> str:
    """The element's text with feedparser's fix-ups, stripped as feedparser strips it."""
    if element is None or not element.text:
        return ""
    return _fixed(element.text).strip()


def _fixed(text: str) -> str:
    """``text`` with feedparser's fix-ups: UTF-8 read as Latin-1 repaired, windows-1252 controls mapped."""
    if not text.isascii():
        try:  # feedparser repairs UTF-8 that was read as Latin-1…
            text = text.encode("iso-8859-1").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass
        text = _map_cp1252(text)  # …and maps windows-1252 control characters
    return text


def _link(href: str) -> str:
    href = href.strip()
    if href and not _ABSOLUTE_LINK.match(href):
        raise _Decline  # feedparser would resolve it against the feed's URL
    return href


def _id(value: str) -> str:
    if value and not _NO_SPACE.match(value):
        raise _Decline
    return value


def _creators(elements: Iterable[etree._Element]) -> tuple[str, ...]:
    names = [_text(element) for element in elements]
    if any("@" in name for name in names):
        raise _Decline  # feedparser splits "name (e-mail)": not modelled here
    return tuple(name for name in names if name)


def _dois(fields: dict[str, list[etree._Element]]) -> tuple[str, ...]:
    found = [*fields.get(f"{ARXIV}DOI", ()), *fields.get(f"{ARXIV}doi", ())]
    if len(found) > 1:
        raise _Decline
    doi = _text(found[0]) if found else ""
    return (doi,) if doi else ()


def _announce_type(fields: dict[str, list[etree._Element]]) -> str | None:
    value = _text(_one(fields, f"{ARXIV}announce_type"))
    return one_line(value).lower() if value else None


def _date(raw: str) -> dt.date | None:
    if not raw:
        return None
    found = parse_date(raw)
    if found is None:
        raise _Decline  # feedparser has date parsers of its own for odd formats
    return found

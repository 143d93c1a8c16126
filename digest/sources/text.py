"""Plain text out of feed text: one-line titles, unfolded abstracts, HTML reduced to text.

Every string a source hands on is plain text.  Abstracts keep paragraph breaks as one blank
line (``"\\n\\n"``) and no other newline; titles, author names and messages are one line.

Text that displays differently from what it says is neutralised (:func:`visible`, applied to
every paper a run reads by :func:`displayable`): bidi controls (a right-to-left override shows
``exe.png`` as ``gnp.exe``) and invisible characters are removed, so every output shows the same
text: the email's HTML and text parts, the Markdown, the site, the feed and ``--json``.  Identity
keys do not change: the normalised title drops these characters anyway.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Iterator
from html.parser import HTMLParser
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from digest.models import Paper

_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v\u00a0]*\n\s*")

# Elements whose end (or start) separates paragraphs when HTML is reduced to text.
_BLOCK = frozenset(
    {
        "address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "figcaption",
        "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "ol",
        "p", "pre", "section", "table", "tr", "ul",
    }
)  # fmt: skip
# Elements that break a line (a space once whitespace is collapsed).
_LINE = frozenset({"br", "td", "th"})
# Elements whose content is never text.
_SKIP = frozenset({"script", "style", "head", "title", "template", "noscript", "iframe", "object"})


# Bidi controls (ALM, LRM, RLM, LRE/RLE/PDF/LRO/RLO, LRI/RLI/FSI/PDI), zero-width and invisible
# characters (ZWSP, word joiner and invisible operators, BOM, Mongolian vowel separator, soft
# hyphen, combining grapheme joiner, Hangul fillers), the tag characters of "ASCII smuggling", and NUL.
_INVISIBLE = re.compile(
    "[\x00\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u200b\u2060-\u2064\ufeff\u180e\u00ad\u034f"
    "\u115f\u1160\u3164\uffa0\U000e0000-\U000e007f]"
    # ZWNJ and ZWJ shape emoji sequences and some scripts: kept only between two such characters
    "|[\u200c\u200d](?![^\x00-\x7f\\s])|(?<![^\x00-\x7f\\s])[\u200c\u200d]"
)


def visible(text: str) -> str:
    """``text`` without bidi controls and invisible characters (ZWJ/ZWNJ kept inside emoji and words of other scripts).

    NUL goes too: no output shows it, and PostgreSQL's text cannot hold it.
    """
    if text.isascii():
        return text.replace("\x00", "") if "\x00" in text else text
    return _INVISIBLE.sub("", text)


def displayable(papers: Iterable[Paper]) -> Iterator[Paper]:
    """The papers with :func:`visible` title, abstract and authors (the same objects when nothing changes)."""
    for paper in papers:
        title, abstract = visible(paper.title), visible(paper.abstract)
        authors = paper.authors if all(name.isascii() for name in paper.authors) else tuple(visible(a) for a in paper.authors)
        if title is paper.title and abstract is paper.abstract and authors is paper.authors:
            yield paper
        else:
            yield dataclasses.replace(paper, title=title, abstract=abstract, authors=authors)


def one_line(text: str) -> str:
    """Collapse every run of whitespace (newlines included) to one space and trim the ends."""
    return " ".join(text.split())  # str.split() splits on exactly what str.isspace() accepts


def unfold(text: str) -> str:
    """Unfold hard-wrapped text: paragraphs joined by one blank line, each on one line."""
    if "\n" not in text and "\r" not in text:
        return one_line(text)
    paragraphs = (one_line(p) for p in _PARAGRAPH_BREAK.split(text.replace("\r\n", "\n").replace("\r", "\n")))
    return "\n\n".join(p for p in paragraphs if p)


class _TextExtractor(HTMLParser):
    """Collects the text of an HTML fragment, marking paragraph breaks with blank lines."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skipping += 1
        elif tag in _BLOCK:
            self.parts.append("\n\n")
        elif tag in _LINE:
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK:
            self.parts.append("\n\n")
        elif tag in _LINE:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _BLOCK:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Reduce an HTML fragment to plain text: tags dropped, entities decoded, whitespace unfolded.

    The content of ``script``, ``style`` and similar elements is dropped, not kept as text.
    Block elements (``p``, ``div``, ``li``…) become paragraph breaks.
    """
    if "<" not in html and "&" not in html:
        return unfold(html)
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    return unfold("".join(parser.parts))


def html_to_line(html: str) -> str:
    """Reduce an HTML fragment to one line of plain text (for titles and names)."""
    return one_line(html_to_text(html))


def clip(text: str, limit: int = 120) -> str:
    """One line of at most ``limit`` characters, for quoting outside text in a message."""
    line = one_line(text)
    return line if len(line) <= limit else line[: limit - 1] + "…"

"""Plain text out of feed text: one-line titles, unfolded abstracts, HTML reduced to text.

Every string a source hands on is plain text.  Abstracts keep paragraph breaks as one blank
line (``"\\n\\n"``) and no other newline; titles, author names and messages are one line.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

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

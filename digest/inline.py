"""CSS inlining for the HTML email, done by premailer once per template instead of once per mail.

Mail clients need the stylesheet as ``style`` attributes.  Premailer does that to a rendered
page, at a price paid on every run and every rendering (importing it, requests and cssutils is
~0.25 s; a transform ~20-60 ms).  The email template's CSS selectors depend only on the
template's own markup (classes and nesting written in it, never computed from feed data), so
premailer can inline the *template* instead: its Jinja tags are hidden behind placeholders,
premailer inlines the markup around them, the tags are put back, and the result is kept in
``$XDG_CACHE_HOME/digest/inlined/`` under a hash of the template's source.  Runs then render the
inlined template with Jinja alone.

That is only done when it is shown to give what inlining each rendering gives: a probe digest
that takes every branch of the template is rendered both ways and the two documents must be the
same HTML (elements, attributes, styles and text).  A template whose stylesheet holds Jinja
tags, or that premailer cannot keep intact, or that fails the probe, is inlined per rendering as
before (that verdict is cached too).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from digest.fileio import user_cache_dir, write_atomic

if TYPE_CHECKING:
    from lxml.html import HtmlElement

# Part of the cache key: bump it when the inlining below changes what it produces.
INLINER_VERSION = "1"

_JINJA_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_PLACEHOLDER = re.compile(r"jinjatag(\d{6})x")
_OTHER_TEMPLATE = re.compile(r"\{%-?\s*(?:extends|include|import|from)\b")
_STYLE_BLOCK = re.compile(r"<style\b.*?</style\s*>", re.DOTALL | re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")
UNSAFE = "unsafe\n"  # what the cache holds for a template that is inlined per rendering


def inline_styles(html: str) -> str:
    """Inline the CSS with premailer, keeping media queries (dark mode, phones) in a style block."""
    from premailer import Premailer

    return str(
        Premailer(
            html,
            keep_style_tags=False,
            strip_important=False,
            disable_validation=True,
            cssutils_logging_level=logging.CRITICAL,
            allow_network=False,
        ).transform(pretty_print=False)
    )


def inline_template_source(source: str) -> str | None:
    """The template ``source`` with its stylesheet inlined by premailer and its Jinja tags intact.

    None when that cannot be done to the template as written: a Jinja tag inside a ``<style>``
    block, markup from another template (``extends``, ``include``, ``import``), or premailer
    dropped, doubled or moved a tag (one inside a tag name, say).
    """
    tags: list[str] = []

    def hide(found: re.Match[str]) -> str:
        tags.append(found[0])
        return f"jinjatag{len(tags) - 1:06d}x"

    hidden = _JINJA_TAG.sub(hide, source)
    if any(_PLACEHOLDER.search(block) for block in _STYLE_BLOCK.findall(hidden)):
        return None
    if any(_OTHER_TEMPLATE.match(tag) for tag in tags):
        return None  # markup from another file: the cache, keyed by this source, would miss its edits
    inlined = inline_styles(hidden)
    if [int(n) for n in _PLACEHOLDER.findall(inlined)] != list(range(len(tags))):
        return None
    return _PLACEHOLDER.sub(lambda found: tags[int(found[1])], inlined)


def same_html(first: str, second: str) -> bool:
    """True when two documents are the same HTML: elements, attributes and text, with every run of
    whitespace counted as one space (how a browser lays text out)."""
    from lxml import html as lxml_html

    return _shape(lxml_html.document_fromstring(first)) == _shape(lxml_html.document_fromstring(second))


def _shape(root: HtmlElement) -> list[tuple[object, ...]]:
    return [
        (node.tag, sorted(node.attrib.items()), _spaced(node.text), _spaced(node.tail))
        for node in root.iter()
    ]


def _spaced(text: str | None) -> str:
    return _WHITESPACE.sub(" ", text or "")


def cached_inlined_source(source: str, proves_equal: Callable[[str], bool], cache: Path | None = None) -> str | None:
    """The inlined ``source`` (from the cache, else made and checked with ``proves_equal``), or None
    when the template must be inlined per rendering.

    ``proves_equal(inlined)`` renders the probe both ways and compares them.  A cache that cannot
    be read or written is not used: the template is then inlined (and checked) in this process.
    """
    folder = cache if cache is not None else user_cache_dir("inlined")
    key = hashlib.sha256(f"{INLINER_VERSION}\0{source}".encode()).hexdigest()
    entry = folder / f"{key}.html.j2"
    try:
        kept = entry.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        kept = None
    if kept is not None:
        return None if kept == UNSAFE else kept
    inlined = inline_template_source(source)
    if inlined is not None and not proves_equal(inlined):
        inlined = None
    try:
        write_atomic(entry, UNSAFE if inlined is None else inlined)
    except OSError:
        pass
    return inlined

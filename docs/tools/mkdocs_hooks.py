"""MkDocs hooks of digest's documentation site (mkdocs.yml ``hooks:``).

The configuration reference is made from the config schema when the site is built: the page
``configuration.md`` holds the marker below, and every table and key of ``digest.config`` (with
its type, default and description) replaces it.  The CLI reference is made the same way from the
click commands by the mkdocs-click extension.
"""

from __future__ import annotations

from typing import Any

from digest.config import SectionDoc, schema_reference

MARKER = "<!-- digest:config-reference -->"
PAGE = "configuration.md"


def section_anchor(header: str) -> str:
    """The anchor of a table's heading: ``[[email.recipients]]`` -> ``email-recipients``."""
    return header.strip("[]").replace(".", "-")


def section_markdown(section: SectionDoc) -> str:
    """One table of the config file: a heading, its description and a table of its keys."""
    lines = [f"### `{section.header}` {{#{section_anchor(section.header)}}}", "", section.doc, ""]
    lines += ["| Key | Type | Default | Description |", "| --- | --- | --- | --- |"]
    for key in section.keys:
        default = f"`{key.default}`" if key.default else "not set"
        lines.append(f"| `{key.name}` | {key.type} | {default} | {key.doc.replace('|', '&#124;')} |")
    return "\n".join(lines)


def config_reference_markdown() -> str:
    """Every table and key of the config schema, as the Markdown the reference page shows."""
    return "\n\n".join(section_markdown(section) for section in schema_reference() if section.header) + "\n"


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    """Put the generated reference where the configuration page has the marker."""
    if page.file.src_uri == PAGE:
        if MARKER not in markdown:
            raise ValueError(f"{PAGE}: the marker {MARKER} is missing; the reference has nowhere to go")
        return markdown.replace(MARKER, config_reference_markdown())
    return markdown

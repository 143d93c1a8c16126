"""MkDocs hooks of digest's documentation site (mkdocs.yml ``hooks:``).

The two reference pages are made when the site is built, so they cannot drift from the code:
``configuration.md`` holds a marker that every table and key of the config schema (with its type,
default and description, from ``digest.config``) replaces, and ``cli.md`` one that every command,
argument and option of ``digest.cli`` replaces, as ``--help`` prints them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

import click

from digest.config import SectionDoc, schema_reference

MARKER = "<!-- digest:config-reference -->"
PAGE = "configuration.md"
CLI_MARKER = "<!-- digest:cli-reference -->"
CLI_PAGE = "cli.md"


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


def _commands(command: click.Command, parent: click.Context | None = None) -> Iterator[click.Context]:
    """A context for ``command`` and for each of its subcommands, depth first, by name."""
    ctx = click.Context(command, info_name="digest" if parent is None else command.name, parent=parent)
    yield ctx
    if isinstance(command, click.Group):
        for name in sorted(command.commands):
            yield from _commands(command.commands[name], ctx)


def command_markdown(ctx: click.Context) -> str:
    """One command: a heading, its usage, its help text, its subcommands or its options."""
    command = ctx.command
    anchor = ctx.command_path.replace(" ", "-")
    usage = " ".join(command.collect_usage_pieces(ctx))
    lines = [f"## `{ctx.command_path}` {{#{anchor}}}", "", "```text", f"{ctx.command_path} {usage}", "```", ""]
    lines += [inspect.cleandoc(command.help or ""), ""]
    if isinstance(command, click.Group):
        lines += ["| Command | What it does |", "| --- | --- |"]
        for name in sorted(command.commands):
            sub = command.commands[name]
            lines.append(f"| [`{name}`](#{anchor}-{name}) | {sub.get_short_help_str(limit=200)} |")
        lines.append("")
    records = [
        param.get_help_record(ctx) for param in command.get_params(ctx)
        if isinstance(param, click.Option) and "--help" not in param.opts
    ]
    if any(records):
        lines += ["| Option | Description |", "| --- | --- |"]
        for record in filter(None, records):
            lines.append(f"| `{record[0]}` | {record[1].replace('|', '&#124;')} |")
    return "\n".join(lines).rstrip() + "\n"


def cli_reference_markdown() -> str:
    """Every command of ``digest`` with its arguments and options, as Markdown."""
    from digest.cli import main

    return "\n".join(command_markdown(ctx) for ctx in _commands(main))


_PAGES: dict[str, tuple[str, Callable[[], str]]] = {
    PAGE: (MARKER, config_reference_markdown),
    CLI_PAGE: (CLI_MARKER, cli_reference_markdown),
}


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    """Put the generated references where the configuration and CLI pages have their markers."""
    if page.file.src_uri in _PAGES:
        marker, make = _PAGES[page.file.src_uri]
        if marker not in markdown:
            raise ValueError(f"{page.file.src_uri}: the marker {marker} is missing; the reference has nowhere to go")
        return markdown.replace(marker, make())
    return markdown

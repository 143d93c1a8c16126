"""The documentation: README.md, CHANGELOG.md and the site in docs/ (built by mkdocs.yml).

The configuration reference is made from the config schema by docs/tools/mkdocs_hooks.py; these
tests check what that page gets, and that the examples users copy from the docs would load.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
import tomllib
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

import digest
from digest.config import config_from_dict, schema_reference
from digest.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
# The pages whose ```toml blocks are parts of a digest.toml (docs/topics.md shows topics files).
CONFIG_PAGES = (
    "README.md", "docs/getting-started.md", "docs/configuration.md", "docs/sources.md", "docs/snapshots.md",
    "docs/email.md",
    "docs/archive.md", "docs/deployment.md",
)


def load_hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mkdocs_hooks", DOCS / "tools" / "mkdocs_hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def page(src_uri: str) -> SimpleNamespace:
    return SimpleNamespace(file=SimpleNamespace(src_uri=src_uri))


def test_the_configuration_page_gets_every_table_and_key() -> None:
    hooks = load_hooks()
    source = (DOCS / "configuration.md").read_text(encoding="utf-8")
    built = hooks.on_page_markdown(source, page=page("configuration.md"))
    assert hooks.MARKER not in built
    for section in schema_reference():
        heading = f"### `{section.header}` {{#{hooks.section_anchor(section.header)}}}"
        assert heading in built
        body = built.split(heading, 1)[1].split("\n### ", 1)[0]
        assert section.doc in body
        for key in section.keys:
            default = f"`{key.default}`" if key.default else "not set"
            assert f"| `{key.name}` | {key.type} | {default} | {key.doc} |" in body, (section.header, key.name)
    assert "| `max_per_topic` | integer | `10` |" in built
    assert "| `security` | `none`, `starttls` or `ssl` | `\"starttls\"` |" in built
    assert "{#email-recipients}" in built


def test_other_pages_are_left_alone_and_a_lost_marker_is_an_error() -> None:
    hooks = load_hooks()
    assert hooks.on_page_markdown("# Sources\n", page=page("sources.md")) == "# Sources\n"
    with pytest.raises(ValueError, match="marker"):
        hooks.on_page_markdown("# Configuration\n", page=page("configuration.md"))
    with pytest.raises(ValueError, match="marker"):
        hooks.on_page_markdown("# Command line\n", page=page("cli.md"))


def test_the_cli_page_gets_every_command_argument_and_option() -> None:
    import click

    from digest.cli import main

    hooks = load_hooks()
    source = (DOCS / "cli.md").read_text(encoding="utf-8")
    built = hooks.on_page_markdown(source, page=page("cli.md"))
    assert hooks.CLI_MARKER not in built

    def walk(command: click.Command, path: str) -> None:
        heading = f"## `{path}` {{#{path.replace(' ', '-')}}}"
        assert heading in built, path
        body = built.split(heading, 1)[1].split("\n## ", 1)[0]
        assert inspect.cleandoc(command.help or "") in body
        for param in command.params:
            if isinstance(param, click.Argument):
                assert param.human_readable_name in body.split("```text", 1)[1].split("```", 1)[0]
            elif isinstance(param, click.Option):
                assert f"| `{', '.join(param.opts)}" in body or f"| `{', '.join(reversed(param.opts))}" in body, (path, param.opts)
                assert (param.help or "") in body
        for name, sub in getattr(command, "commands", {}).items():
            assert f"[`{name}`](#{path.replace(' ', '-')}-{name})" in body
            walk(sub, f"{path} {name}")

    walk(main, "digest")
    assert "| `--date YYYY-MM-DD` | The digest's date (default: today). |" in built
    assert "digest topics eval [OPTIONS] LABELS" in built
    assert "--help`" not in built.split("## `digest`", 1)[1]  # every command has it: said once, above


def toml_blocks(path: Path) -> list[tuple[int, str]]:
    """Each ```toml block of a Markdown file with its first line number (indented blocks too)."""
    blocks, text = [], path.read_text(encoding="utf-8")
    for found in re.finditer(r"^( *)```toml\n(.*?)^\1```", text, re.S | re.M):
        body = "\n".join(line[len(found.group(1)):] for line in found.group(2).splitlines())
        blocks.append((text.count("\n", 0, found.start()) + 1, body))
    return blocks


@pytest.mark.parametrize("name", CONFIG_PAGES)
def test_config_examples_in_the_docs_use_keys_and_values_digest_takes(name: str, tmp_path: Path) -> None:
    """A user copies these: each block loads, but for folders and recipients the example leaves out."""
    blocks = toml_blocks(ROOT / name)
    assert blocks or name == "docs/archive.md"
    for line, block in blocks:
        data = tomllib.loads(block)
        try:
            config_from_dict(data, tmp_path / "digest.toml")
        except ConfigError as exc:
            wrong = [
                e for e in exc.message.splitlines()
                if re.search(r"unknown key|unknown topic|expected |is not one of|is not an|must be", e)
            ]
            assert wrong == [], f"{name}, the block at line {line}"


def test_the_changelog_has_a_section_for_this_version() -> None:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "## [Unreleased]" in text
    assert re.search(rf"^## \[{re.escape(digest.__version__)}\] - \d{{4}}-\d\d-\d\d$", text, re.M)


def readme_sections() -> dict[str, str]:
    """The README's ## sections by their GitHub anchor."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    sections = {}
    for part in re.split(r"^(?=## )", text, flags=re.M)[1:]:
        title = part.splitlines()[0][3:].strip()
        anchor = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
        sections[anchor] = part
    return sections


def test_the_readme_first_screen_links_to_sending_the_digest_to_a_team() -> None:
    first_screen = "\n".join((ROOT / "README.md").read_text(encoding="utf-8").splitlines()[:25])
    sections = readme_sections()
    targets = [
        sections[anchor] for anchor in re.findall(r"\]\(#([\w-]+)\)", first_screen) if anchor in sections
    ]
    team = [s for s in targets if "[[email.recipients]]" in s and "enabled = true" in s]
    assert team, "the README's first screen must link to a section with a config that mails a team"
    assert "digest run" in team[0]


def test_the_readme_quick_start_is_make_demo_then_make_test() -> None:
    sections = readme_sections()
    start = next(body for anchor, body in sections.items() if anchor == "quick-start")
    commands = [line.split("#")[0].strip() for line in start.split("```sh", 1)[1].split("```", 1)[0].splitlines()]
    assert [c for c in commands if c][:2] == ["make demo", "make test"]


def test_every_relative_link_and_picture_of_the_readme_exists() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [t for t in targets if "://" not in t and not t.startswith("mailto:")]
    assert "docs/img/email.png" in local and "docs/img/site.png" in local
    missing = [t for t in local if not (ROOT / t).exists()]
    assert missing == []

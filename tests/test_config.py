from __future__ import annotations

import dataclasses
import functools
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from digest.config import find_config, load_config, schema_reference
from digest.errors import ConfigError


def errors_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.message.splitlines()


def test_defaults_and_relative_paths_resolve_against_the_config_folder(write_config: Callable[..., Path], tmp_path: Path) -> None:
    config = load_config(write_config())
    assert config.store.path == tmp_path / "var" / "digest.sqlite3"
    assert config.sources[0].path == tmp_path / "inbox"
    assert config.archive.dir == tmp_path / "archive"
    assert config.email.enabled is False
    assert config.email.max_per_topic == 10


def test_every_bad_key_is_reported_with_file_and_key_path(write_config: Callable[..., Path]) -> None:
    path = write_config(
        """
        [store]
        path = 3
        colour = "blue"

        [email]
        port = "587"
        security = "tls"

        [[email.recipients]]
        address = "not-an-address"
        """
    )
    lines = errors_of(path)
    assert f"{path}: store.path: expected a path (a non-empty string), got an integer 3" in lines
    assert any(line.startswith(f"{path}: store.colour: unknown key") for line in lines)
    assert f"{path}: email.port: expected an integer, got a string '587'" in lines
    assert f"{path}: email.security: 'tls' is not one of none, starttls, ssl" in lines
    assert f"{path}: email.recipients[0].address: 'not-an-address' is not an email address" in lines
    assert len(lines) == 5


def test_missing_folders_files_and_required_keys(write_config: Callable[..., Path]) -> None:
    path = write_config(
        """
        [[sources]]
        name = "gone"
        kind = "snapshots"
        path = "no-such-folder"

        [[sources]]
        kind = "feed"

        [topics]
        file = "missing-topics.toml"
        """
    )
    lines = errors_of(path)
    assert any("sources[1].path: folder" in line and "no-such-folder does not exist" in line for line in lines)
    assert f"{path}: sources[2].name: missing (every source needs a name)" in lines
    assert f"{path}: sources[2].url: missing (a feed source is fetched from a URL)" in lines
    assert any(line.startswith(f"{path}: topics.file: file ") for line in lines)


@pytest.mark.parametrize("url", ["ftp://example.org/feed", "http://[::1/feed", "http://127.0.0.1:99999/feed", "http:///feed"])
def test_a_feed_url_that_is_not_http_is_one_error_line(write_config: Callable[..., Path], url: str) -> None:
    path = write_config(f'[[sources]]\nname = "feed"\nkind = "feed"\nurl = "{url}"\n')
    assert errors_of(path) == [f"{path}: sources[1].url: {url!r} is not an http(s) URL"]


def test_duplicate_source_names(write_config: Callable[..., Path]) -> None:
    path = write_config('[[sources]]\nname = "inbox"\nkind = "snapshots"\npath = "inbox/"\n')
    assert f"{path}: sources[1].name: duplicate source name 'inbox'" in errors_of(path)


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[store\npath = 1\n")
    (line,) = errors_of(bad)
    assert line.startswith(f"{bad}: invalid TOML")
    (line,) = errors_of(tmp_path / "absent.toml")
    assert line == f"{tmp_path / 'absent.toml'}: config file not found"


def test_find_config_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DIGEST_CONFIG", raising=False)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "digest.toml").write_text("")
    assert find_config(None, tmp_path) == tmp_path / "config" / "digest.toml"
    (tmp_path / "digest.toml").write_text("")
    assert find_config(None, tmp_path) == tmp_path / "digest.toml"
    monkeypatch.setenv("DIGEST_CONFIG", "/elsewhere.toml")
    assert find_config(None, tmp_path) == Path("/elsewhere.toml")
    assert find_config(Path("given.toml"), tmp_path) == Path("given.toml")


def test_no_config_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DIGEST_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="no config file"):
        find_config(None, tmp_path)


def test_shipped_configs_are_valid() -> None:
    repo = Path(__file__).resolve().parents[1]
    for path in [repo / "examples" / "demo.toml", *sorted((repo / "config").glob("*.toml"))]:
        if path.name == "topics.toml":
            continue
        config = load_config(path)
        assert config.sources, path


def test_unknown_time_zone(write_config: Callable[..., Path]) -> None:
    path = write_config('[schedule]\ntimezone = "Mars/Olympus"\n')
    assert errors_of(path) == [f"{path}: schedule.timezone: unknown time zone 'Mars/Olympus' (e.g. 'UTC', 'Europe/Paris')"]


# -- the schema documents itself (the configuration reference is made from it) ---------------


def test_every_table_and_key_of_the_schema_has_a_description() -> None:
    sections = schema_reference()
    headers = [s.header for s in sections]
    assert headers[:2] == ["[store]", "[[sources]]"]  # in the order of the file
    assert headers.index("[email]") + 1 == headers.index("[[email.recipients]]")
    undocumented = [s.header for s in sections if not s.doc.strip()]
    undocumented += [f"{s.header} {k.name}" for s in sections for k in s.keys if len(k.doc.strip()) < 10]
    assert undocumented == [], "describe these keys beside them in digest/config.py"
    untyped = [f"{s.header} {k.name}" for s in sections for k in s.keys if not k.type]
    assert untyped == []
    email = next(s for s in sections if s.header == "[email]")
    assert [k.name for k in email.keys][:3] == ["enabled", "host", "port"]
    assert "from" in [k.name for k in email.keys]  # the TOML key, not the attribute's name


def test_the_reference_lists_exactly_the_keys_the_loader_knows(write_config: Callable[..., Path]) -> None:
    """An unknown key's error lists the keys a table takes: the reference shows the same ones."""
    listed = {s.header.strip("[]"): {k.name for k in s.keys} for s in schema_reference()}
    for section, keys in listed.items():
        subtables = {other.rsplit(".", 1)[-1] for other in listed if other.startswith(section + ".")}
        array = section in ("sources", "email.recipients")
        config = write_config(f"{'[[' if array else '['}{section}{']]' if array else ']'}\nnot_a_key = 1\n", inbox=False)
        with pytest.raises(ConfigError) as caught:
            load_config(config)
        (unknown,) = [line for line in caught.value.message.splitlines() if "unknown key" in line]
        known = unknown.split("(known keys here: ", 1)[1].rstrip(")").split(", ")
        assert set(known) == keys | subtables, section


def test_the_reference_gives_the_defaults_the_loader_uses(write_config: Callable[..., Path], tmp_path: Path) -> None:
    config = load_config(write_config(
        """
        [[email.recipients]]
        address = "team@example.org"
        """
    ))
    entries: dict[str, Any] = {"sources": config.sources[0], "email.recipients": config.email.recipients[0]}
    given = {("sources", "name"), ("sources", "kind"), ("sources", "path"), ("email.recipients", "address")}
    checked = 0
    for section in schema_reference():
        where = section.header.strip("[]")
        table = entries.get(where) or functools.reduce(getattr, where.split("."), config)
        attributes = {f.metadata.get("key", f.name): f.name for f in dataclasses.fields(table)}
        for key in section.keys:
            if (where, key.name) in given:
                continue
            value = getattr(table, attributes[key.name])
            if key.default == "":
                assert value is None, (where, key.name)
            elif key.type == "path":
                assert value == tmp_path / tomllib.loads(f"v = {key.default}")["v"], (where, key.name)
            else:
                expected = tomllib.loads(f"v = {key.default}")["v"]
                assert value == (tuple(expected) if isinstance(expected, list) else expected), (where, key.name)
            checked += 1
    assert checked >= 35


def test_an_address_is_printable_text_that_reads_as_it_is() -> None:
    from digest.config import is_address

    assert is_address("reader@example.org") and is_address("名前@例え.jp") and is_address("zoë@example.org")
    assert not is_address("reader@example.org\n")  # ($ matched before a final newline: a header's line break)
    assert not is_address("reader\u202e@example.org") and not is_address("rea\u200bder@example.org")
    assert not is_address("reader\x1b[2J@example.org") and not is_address("reader\x00@example.org")


def test_llm_is_off_by_default_and_every_bad_llm_key_is_named(write_config: Callable[..., Path]) -> None:
    llm = load_config(write_config()).llm
    assert llm.enabled is False and llm.batch_size == 10 and llm.api_key_env == "DIGEST_LLM_API_KEY"
    path = write_config(
        """
        [llm]
        enabled = true
        base_url = "ftp://models.example.org"
        api_key_env = "sk-live-123"
        timeout = 0
        max_papers_per_run = -1
        max_concurrency = 0
        batch_size = 51
        """
    )
    assert errors_of(path) == [
        f"{path}: llm.model: missing (name the model the endpoint serves, e.g. 'llama3.1:8b')",
        f"{path}: llm.base_url: 'ftp://models.example.org' is not an http(s) URL",
        f"{path}: llm.api_key_env: 'sk-live-123' is not an environment variable name",
        f"{path}: llm.timeout: must be positive",
        f"{path}: llm.max_papers_per_run: must be 0 or more",
        f"{path}: llm.max_concurrency: must be at least 1",
        f"{path}: llm.batch_size: must be between 1 and 50",
    ]


@pytest.mark.parametrize("base_url", ["http://[::1/v1", "http://127.0.0.1:99999/v1", "http://127.0.0.1:port/v1"])
def test_an_llm_base_url_that_cannot_be_parsed_is_one_error_line_even_when_off(
    write_config: Callable[..., Path], base_url: str
) -> None:
    path = write_config(f'[llm]\nbase_url = "{base_url}"\n')
    assert errors_of(path) == [f"{path}: llm.base_url: {base_url!r} is not an http(s) URL"]

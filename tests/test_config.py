from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from digest.config import find_config, load_config
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

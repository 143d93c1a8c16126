"""The config file: TOML read with ``tomllib`` into frozen dataclasses, checked once, up front.

Each section is a dataclass whose fields are the allowed keys; their annotations are the schema.
Validation collects *every* problem as one line ``FILE: key.path: what is wrong`` and raises a
single :class:`ConfigError` listing them all.  Nothing reads the file or the environment after
this, except the SMTP password whose variable name the file gives.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from digest.errors import ConfigError

SOURCE_KINDS = ("snapshots", "feed", "hf-daily-papers")
SECURITY_MODES = ("none", "starttls", "ssl")
MAX_CONNECTIONS = 16  # [email] connections: SMTP connections a batch may use at once
GROUP_ORDERS = ("source", "upvotes")
ENV_VAR = "DIGEST_CONFIG"


def _path(default: str | None = None, **meta: Any) -> Any:
    """A field holding a path, resolved against the config file's folder."""
    return field(default=Path(default) if default is not None else None, metadata={"path": True, **meta})


def _choice(default: str, choices: tuple[str, ...]) -> Any:
    return field(default=default, metadata={"choices": choices})


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """``[store]``: where the SQLite file lives, and how long to wait for another process's lock."""

    path: Path = _path("var/digest.sqlite3")
    busy_timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """One ``[[sources]]`` entry."""

    name: str = ""
    kind: str = _choice("snapshots", SOURCE_KINDS)
    path: Path | None = _path()
    url: str = ""
    announce_types: tuple[str, ...] = ("new", "cross")
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class FetchConfig:
    """``[fetch]``: how live sources are fetched."""

    timeout: float = 30.0
    max_bytes: int = 20_000_000
    contact: str = ""
    retries: int = 3
    concurrency: int = 4


@dataclass(frozen=True, slots=True)
class TopicsConfig:
    """``[topics]``: the taxonomy file and the order of papers inside a group."""

    file: Path | None = _path()
    order: str = _choice("source", GROUP_ORDERS)


@dataclass(frozen=True, slots=True)
class ScheduleConfig:
    """``[schedule]``: when ``digest schedule`` runs a cycle."""

    cron: str = "0 7 * * *"
    timezone: str = "UTC"
    misfire_grace: int = 3600  # no longer used (a run missed while asleep happens once on waking); old configs still load


@dataclass(frozen=True, slots=True)
class ArchiveConfig:
    """``[archive]``: the Markdown archive and the folder ``digest site`` builds the HTML site in."""

    dir: Path = _path("archive")
    site_url: str = ""
    title: str = "Daily papers digest"
    site_dir: Path | None = _path()

    @property
    def site(self) -> Path:
        """Where ``digest site`` writes: ``site_dir``, else a ``site/`` folder beside the archive."""
        return self.site_dir if self.site_dir is not None else self.dir.parent / "site"


@dataclass(frozen=True, slots=True)
class RenderConfig:
    """``[render]``: a folder of templates that override the built-in ones by name."""

    templates: Path | None = _path()
    excerpt_chars: int = 320


@dataclass(frozen=True, slots=True)
class RecipientConfig:
    """One ``[[email.recipients]]`` entry."""

    address: str = ""
    topics: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EmailConfig:
    """``[email]``: SMTP delivery."""

    enabled: bool = False
    host: str = "localhost"
    port: int = 587
    security: str = _choice("starttls", SECURITY_MODES)
    username: str = ""
    password_env: str = "DIGEST_SMTP_PASSWORD"
    sender: str = field(default="Paper digest <digest@example.org>", metadata={"key": "from"})
    send_empty: bool = False
    max_per_topic: int = 10
    rate_limit: float = 0.0
    connections: int = 1
    timeout: float = 60.0
    max_attempts: int = 8
    unsubscribe: str = ""
    recipients: tuple[RecipientConfig, ...] = ()


@dataclass(frozen=True, slots=True)
class Config:
    """The whole validated config."""

    path: Path | None = field(default=None, metadata={"internal": True})
    store: StoreConfig = StoreConfig()
    sources: tuple[SourceConfig, ...] = ()
    fetch: FetchConfig = FetchConfig()
    topics: TopicsConfig = TopicsConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    archive: ArchiveConfig = ArchiveConfig()
    render: RenderConfig = RenderConfig()
    email: EmailConfig = EmailConfig()


def find_config(explicit: Path | None, cwd: Path | None = None) -> Path:
    """Return the config path: ``--config``, then ``$DIGEST_CONFIG``, ``./digest.toml``, ``config/digest.toml``."""
    if explicit is not None:
        return explicit
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    here = cwd or Path.cwd()
    for candidate in (here / "digest.toml", here / "config" / "digest.toml"):
        if candidate.is_file():
            return candidate
    raise ConfigError(
        "no config file: none given with --config or $DIGEST_CONFIG, and neither ./digest.toml "
        "nor ./config/digest.toml exists",
        hint="pass --config PATH (see config/digest.toml in the repository for an example)",
    )


def load_config(path: Path) -> Config:
    """Read and validate the config file; raise ConfigError listing every problem."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: config file is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    return config_from_dict(data, path)


def config_from_dict(data: dict[str, Any], path: Path) -> Config:
    """Validate parsed TOML against the schema; relative paths resolve against ``path``'s folder."""
    errors: list[str] = []
    builder = _Builder(path, errors)
    config = builder.build(Config, data, "")
    if isinstance(config, Config):
        config = dataclasses.replace(config, path=path)
        _check_semantics(config, errors)
    if errors:
        raise ConfigError("\n".join(f"{path}: {e}" for e in errors))
    assert isinstance(config, Config)
    return config


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]*$")
_ADDRESS = re.compile(r"^[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+$")


def _check_semantics(config: Config, errors: list[str]) -> None:
    """Rules that span keys: required keys per source kind, unique names, address syntax."""
    seen: set[str] = set()
    for i, source in enumerate(config.sources):
        where = f"sources[{i}]"
        if not source.name:
            errors.append(f"{where}.name: missing (every source needs a name)")
        elif not _NAME.match(source.name):
            errors.append(f"{where}.name: {source.name!r} may use letters, digits, '.', '_', '-' and spaces")
        elif source.name in seen:
            errors.append(f"{where}.name: duplicate source name {source.name!r}")
        seen.add(source.name)
        if source.kind == "snapshots":
            if source.path is None:
                errors.append(f"{where}.path: missing (a snapshots source reads the files of a folder)")
            elif not source.path.is_dir():
                errors.append(f"{where}.path: folder {source.path} does not exist")
        elif not source.url:
            errors.append(f"{where}.url: missing (a {source.kind} source is fetched from a URL)")
        elif not source.url.startswith(("http://", "https://")):
            errors.append(f"{where}.url: {source.url!r} is not an http(s) URL")
    if config.topics.file is not None and not config.topics.file.is_file():
        errors.append(f"topics.file: file {config.topics.file} does not exist")
    if config.render.templates is not None and not config.render.templates.is_dir():
        errors.append(f"render.templates: folder {config.render.templates} does not exist")
    _check_email(config, errors)
    _check_schedule(config.schedule, errors)
    if config.store.busy_timeout < 0:
        errors.append("store.busy_timeout: must be 0 or more seconds")
    if config.fetch.max_bytes < 1:
        errors.append("fetch.max_bytes: must be positive")
    if config.fetch.timeout <= 0:
        errors.append("fetch.timeout: must be positive")
    if config.fetch.concurrency < 1:
        errors.append("fetch.concurrency: must be at least 1")


def _check_email(config: Config, errors: list[str]) -> None:
    """Recipient addresses and topics, the sender, and the numeric limits of ``[email]``."""
    email = config.email
    topics = _topic_codes(config) if any(r.topics for r in email.recipients) else None
    for i, recipient in enumerate(email.recipients):
        if not _ADDRESS.match(recipient.address):
            errors.append(f"email.recipients[{i}].address: {recipient.address!r} is not an email address")
        for j, code in enumerate(recipient.topics):
            if topics is not None and code not in topics:
                errors.append(
                    f"email.recipients[{i}].topics[{j}]: unknown topic {code!r} (topics: {', '.join(topics)})"
                )
    sender = email.sender.rsplit("<", 1)[-1].rstrip(">").strip()
    if not _ADDRESS.match(sender) or any(c in email.sender for c in "\r\n"):
        errors.append(f"email.from: {email.sender!r} is not an address like 'Paper digest <digest@example.org>'")
    if email.unsubscribe and not _ADDRESS.match(email.unsubscribe):
        errors.append(f"email.unsubscribe: {email.unsubscribe!r} is not an email address")
    if email.max_per_topic < 1:
        errors.append("email.max_per_topic: must be at least 1")
    if email.rate_limit < 0:
        errors.append("email.rate_limit: must be 0 (no limit) or a positive number of messages per second")
    if not 1 <= email.connections <= MAX_CONNECTIONS:
        errors.append(f"email.connections: must be between 1 and {MAX_CONNECTIONS}")
    if email.timeout <= 0:
        errors.append("email.timeout: must be positive")
    if email.max_attempts < 1:
        errors.append("email.max_attempts: must be at least 1")
    if email.enabled and not email.recipients:
        errors.append("email.recipients: email is enabled but no [[email.recipients]] are listed")


def _topic_codes(config: Config) -> tuple[str, ...] | None:
    """The topic codes recipients may name (None when the topics file is itself broken)."""
    from digest.topics import OTHER_CODE, configured_taxonomy

    try:
        return (*configured_taxonomy(config.topics.file).codes(), OTHER_CODE)
    except ConfigError:
        return None  # reported as topics.file, or when the taxonomy is loaded


def _check_schedule(schedule: ScheduleConfig, errors: list[str]) -> None:
    """The time zone and the crontab expression of ``[schedule]``."""
    try:
        zone = ZoneInfo(schedule.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        errors.append(f"schedule.timezone: unknown time zone {schedule.timezone!r} (e.g. 'UTC', 'Europe/Paris')")
        zone = None
    try:
        if not _plain_crontab(schedule.cron):  # importing apscheduler (and asyncio) costs ~45 ms a command
            from apscheduler.triggers.cron import CronTrigger

            CronTrigger.from_crontab(schedule.cron, timezone=zone or "UTC")
    except ValueError as exc:
        errors.append(f"schedule.cron: {schedule.cron!r} is not a crontab expression ({exc})")
    if schedule.misfire_grace < 1:
        errors.append("schedule.misfire_grace: must be at least 1 second")


_CRON_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12))  # minute, hour, day of month, month


def _plain_crontab(expr: str) -> bool:
    """True for a crontab valid beyond doubt: each field ``*`` or a number in its range, any weekday.

    Such an expression needs no parser to check; anything else is checked by APScheduler's.
    """
    fields = expr.split()
    if len(fields) != 5 or fields[4] != "*":
        return False
    return all(
        f == "*" or (f.isascii() and f.isdigit() and low <= int(f) <= high)
        for f, (low, high) in zip(fields[:4], _CRON_RANGES)
    )


class _Builder:
    """Turns TOML tables into the dataclasses above, collecting errors with their key paths."""

    def __init__(self, path: Path, errors: list[str]) -> None:
        self.base = path.parent
        self.errors = errors

    def build(self, cls: type, table: Any, where: str) -> Any:
        if not isinstance(table, dict):
            self.errors.append(f"{where or 'top level'}: expected a table, got {_kind(table)}")
            return cls()
        hints = typing.get_type_hints(cls)
        fields = {
            f.metadata.get("key", f.name): f for f in dataclasses.fields(cls) if not f.metadata.get("internal")
        }
        values: dict[str, Any] = {}
        for key, value in table.items():
            keypath = f"{where}.{key}" if where else key
            if key not in fields:
                known = ", ".join(sorted(fields))
                self.errors.append(f"{keypath}: unknown key (known keys here: {known})")
                continue
            f = fields[key]
            converted = self.convert(hints[f.name], value, keypath, f.metadata)
            if converted is not _INVALID:
                values[f.name] = converted
        for f in dataclasses.fields(cls):
            # Absent sections still need their default paths resolved: build them from {}.
            if f.name not in values and dataclasses.is_dataclass(hints[f.name]):
                values[f.name] = self.build(hints[f.name], {}, f"{where}.{f.name}" if where else f.name)
        instance = cls(**values)
        # Defaults that are paths resolve against the config folder too.
        for f in dataclasses.fields(cls):
            if f.metadata.get("path") and f.name not in values and getattr(instance, f.name) is not None:
                instance = dataclasses.replace(instance, **{f.name: _join(self.base, str(getattr(instance, f.name)))})
        return instance

    def convert(self, hint: Any, value: Any, where: str, meta: Any) -> Any:
        origin = get_origin(hint)
        if origin in (Union, types.UnionType):
            hint = next(a for a in get_args(hint) if a is not type(None))
            origin = get_origin(hint)
        if origin is tuple:
            item = get_args(hint)[0]
            if not isinstance(value, list):
                self.errors.append(f"{where}: expected a list, got {_kind(value)}")
                return _INVALID
            if isinstance(item, type) and dataclasses.is_dataclass(item):
                return tuple(self.build(item, v, f"{where}[{i}]") for i, v in enumerate(value))
            converted = [self.convert(item, v, f"{where}[{i}]", {}) for i, v in enumerate(value)]
            return _INVALID if _INVALID in converted else tuple(converted)
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            return self.build(hint, value, where)
        if hint is Path:
            if not isinstance(value, str) or not value:
                self.errors.append(f"{where}: expected a path (a non-empty string), got {_kind(value)}")
                return _INVALID
            return _join(self.base, value)
        if hint is bool:
            if not isinstance(value, bool):
                self.errors.append(f"{where}: expected true or false, got {_kind(value)}")
                return _INVALID
            return value
        if hint is int or hint is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (hint is int and isinstance(value, float)):
                self.errors.append(f"{where}: expected {'an integer' if hint is int else 'a number'}, got {_kind(value)}")
                return _INVALID
            return hint(value)
        if hint is str:
            if not isinstance(value, str):
                self.errors.append(f"{where}: expected a string, got {_kind(value)}")
                return _INVALID
            choices = meta.get("choices") if meta else None
            if choices and value not in choices:
                self.errors.append(f"{where}: {value!r} is not one of {', '.join(choices)}")
                return _INVALID
            return value
        raise TypeError(f"no converter for {hint!r}")  # a schema bug, not a user error


def _join(base: Path, value: str) -> Path:
    """``value`` relative to the config folder, without ``..`` segments left in it."""
    return Path(os.path.normpath(base / Path(value).expanduser()))


class _Invalid:
    pass


_INVALID = _Invalid()


def _kind(value: Any) -> str:
    names = {dict: "a table", list: "a list", str: "a string", bool: "a boolean", int: "an integer", float: "a number"}
    text = repr(value) if isinstance(value, (str, int, float, bool)) else ""
    return f"{names.get(type(value), type(value).__name__)}{' ' + text if text else ''}"

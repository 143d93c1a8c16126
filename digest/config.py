"""The config file: TOML read with ``tomllib`` into frozen dataclasses, checked once, up front.

Each section is a dataclass whose fields are the allowed keys; their annotations are the schema,
and each carries its description (``_key(default, doc)``): ``schema_reference()`` lists them
for the documentation's configuration reference, so a key cannot be added undocumented.
Validation collects *every* problem as one line ``FILE: key.path: what is wrong`` and raises a
single :class:`ConfigError` listing them all.  Nothing reads the file or the environment after
this, except the SMTP password, the link-signing secret and the model API key whose variable names the file gives.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import types
import typing
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from digest.categories import is_arxiv_category, not_a_category
from digest.errors import ConfigError

SOURCE_KINDS = ("snapshots", "feed", "hf-daily-papers")
SECURITY_MODES = ("none", "starttls", "ssl")
MAX_CONNECTIONS = 16  # [email] connections: SMTP connections a batch may use at once
GROUP_ORDERS = ("source", "upvotes")
CADENCES = ("daily", "weekly")  # how often a reader is mailed: every digest, or one roll-up a week
WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
ENV_VAR = "DIGEST_CONFIG"


def _key(default: Any, doc: str, **meta: Any) -> Any:
    """A key with its default and ``doc``, the sentence the configuration reference shows for it."""
    return field(default=default, metadata={"doc": doc, **meta})


def _path(default: str | None, doc: str, **meta: Any) -> Any:
    """A key holding a path, resolved against the config file's folder."""
    return _key(Path(default) if default is not None else None, doc, path=True, **meta)


def _choice(default: str, choices: tuple[str, ...], doc: str) -> Any:
    """A string key that takes one of ``choices``."""
    return _key(default, doc, choices=choices)


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """``[store]``: where the store lives (an SQLite file, or a PostgreSQL database), and how long
    to wait for another process's lock."""

    path: Path = _path(
        "var/digest.sqlite3",
        "The SQLite file that remembers every paper seen, the digests and the delivery outbox; created by the first run. "
        "Not used when `url` is set.",
    )
    url: str = _key(
        "", "A PostgreSQL database to keep the store in instead of `path` (`postgresql://user@host:5432/dbname`, "
        "no password), shared by several hosts; needs `pip install 'digest[postgresql]'` (docs/postgresql.md)."
    )
    password_env: str = _key(
        "DIGEST_STORE_PASSWORD",
        "The name of the environment variable holding the PostgreSQL password of `url` (never the password).",
    )
    busy_timeout: float = _key(
        30.0, "Seconds a command waits for another process that holds the store locked before it gives up with an error."
    )


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """One ``[[sources]]`` entry."""

    name: str = _key(
        "", "Required and unique: names the source in messages, the `--json` summary and `digest status` "
        "(letters, digits, '.', '_', '-' and spaces)."
    )
    kind: str = _choice(
        "snapshots", SOURCE_KINDS,
        "`snapshots`: text files of listing pages dropped into a folder; `feed`: any RSS or Atom feed; "
        "`hf-daily-papers`: the Hugging Face daily papers API.",
    )
    path: Path | None = _path(None, "`snapshots` only, required: the folder whose new files are read, each file once.")
    url: str = _key("", "`feed` and `hf-daily-papers` only, required: the http(s) URL to fetch.")
    announce_types: tuple[str, ...] = _key(
        ("new", "cross"),
        "arXiv listings only: which announcements count as new papers (`new`, `cross`, `replace`, `replace-cross`).",
    )
    enabled: bool = _key(True, "`false` leaves the source out of runs and previews without deleting its entry.")


@dataclass(frozen=True, slots=True)
class FetchConfig:
    """``[fetch]``: how live sources are fetched."""

    timeout: float = _key(30.0, "Seconds one source may take in all: connecting, reading, retries and their waits.")
    max_bytes: int = _key(20_000_000, "The largest response accepted (after decompression); a larger one fails the source.")
    contact: str = _key(
        "", "Your email address, sent in the User-Agent (`digest/<version> (+mailto:<contact>)`) so feed owners can reach you."
    )
    retries: int = _key(3, "Attempts after the first on a connection error, a timeout, HTTP 429 or 5xx (with backoff).")
    concurrency: int = _key(4, "Network sources fetched at the same time.")


@dataclass(frozen=True, slots=True)
class TopicsConfig:
    """``[topics]``: the taxonomy file and the order of papers inside a group."""

    file: Path | None = _path(None, "The taxonomy (a topics TOML file); when not set, the shipped `config/topics.toml`.")
    order: str = _choice(
        "source", GROUP_ORDERS,
        "Order of papers inside a topic: `source` keeps each source's rank; `upvotes` puts the most upvoted first.",
    )


@dataclass(frozen=True, slots=True)
class ScheduleConfig:
    """``[schedule]``: when ``digest schedule`` runs a cycle."""

    cron: str = _key("0 7 * * *", "When `digest schedule` runs a cycle, in crontab syntax: minute hour day month weekday.")
    timezone: str = _key("UTC", "The IANA time zone `cron` is read in, e.g. `Europe/Berlin`.")
    misfire_grace: int = _key(
        3600, "No longer used: a run missed while the machine slept or the clock jumped happens once when the scheduler runs again. Old configs still load."
    )


@dataclass(frozen=True, slots=True)
class ArchiveConfig:
    """``[archive]``: the Markdown archive and the folder ``digest site`` builds the HTML site in."""

    dir: Path = _path("archive", "The Markdown archive: a page per day, the index, the topic pages and the Atom feed.")
    site_url: str = _key(
        "", "Where the site is published, e.g. `https://papers.example.org`: links in emails and the feed point there."
    )
    title: str = _key("Daily papers digest", "The digest's name: in the email subject and List-Id, on the archive pages and in the feed.")
    site_dir: Path | None = _path(None, "Where `digest site` writes the HTML site; when not set, `site/` beside `dir`.")

    @property
    def site(self) -> Path:
        """Where ``digest site`` writes: ``site_dir``, else a ``site/`` folder beside the archive."""
        return self.site_dir if self.site_dir is not None else self.dir.parent / "site"


@dataclass(frozen=True, slots=True)
class RenderConfig:
    """``[render]``: a folder of templates that override the built-in ones by name."""

    templates: Path | None = _path(
        None, "A folder of templates that override the built-in ones of the same name (`email.html.j2`, ...)."
    )
    excerpt_chars: int = _key(320, "How many characters of each abstract the email shows; the Markdown day page keeps it whole.")


@dataclass(frozen=True, slots=True)
class RecipientConfig:
    """One ``[[email.recipients]]`` entry."""

    address: str = _key("", "Required: the recipient's email address.")
    topics: tuple[str, ...] = _key(
        (), "Topic codes from the topics file (`other` too) this recipient gets; empty: every topic."
    )
    categories: tuple[str, ...] = _key(
        (),
        "arXiv categories (`cs.CL`) or whole archives (`math`) this recipient gets, on top of the "
        "topics filter; empty: every paper.",
    )
    cadence: str = _choice(
        "daily", CADENCES,
        "`daily` mails every digest; `weekly` mails one roll-up a week instead, on `weekday` "
        "(see the subscribers page).",
    )
    weekday: str = _choice(
        "monday", WEEKDAY_NAMES, "The day a `weekly` recipient's roll-up goes (the week is the 7 days ending that day)."
    )


@dataclass(frozen=True, slots=True)
class EmailConfig:
    """``[email]``: SMTP delivery."""

    enabled: bool = _key(False, "`true` mails every digest to the `[[email.recipients]]`, one message each.")
    host: str = _key("localhost", "The SMTP server.")
    port: int = _key(587, "The SMTP port: usually 587 for `starttls` and 465 for `ssl`.")
    security: str = _choice(
        "starttls", SECURITY_MODES,
        "`starttls` or `ssl` encrypt the connection and verify the server's certificate; `none` sends in clear.",
    )
    username: str = _key("", "The SMTP login; when empty, digest does not log in.")
    password_env: str = _key(
        "DIGEST_SMTP_PASSWORD", "The name of the environment variable holding the SMTP password (never the password)."
    )
    sender: str = _key(
        "Paper digest <digest@example.org>", "The From address, with an optional display name.", key="from"
    )
    send_empty: bool = _key(False, "`true` also mails recipients whose topics have nothing new that day.")
    max_per_topic: int = _key(10, "Papers per topic in the email; a link to the day's archive page shows the rest.")
    rate_limit: float = _key(0.0, "Messages per second for the whole batch; 0: as fast as the server takes them.")
    connections: int = _key(1, f"SMTP connections a batch is sent over at once (1 to {MAX_CONNECTIONS}).")
    timeout: float = _key(60.0, "Seconds to wait for the SMTP server on each operation.")
    max_attempts: int = _key(
        8, "Temporary failures (4xx replies, no connection) before a delivery is given up and marked failed."
    )
    sent_by: str = _choice(
        "run", ("run", "workers"),
        "`run`: each `digest run` sends its email; `workers`: a run only queues it (the daily email and the weekly "
        "roll-ups), and `digest send --workers N` (on one or several hosts) sends it.",
    )
    claim_seconds: float = _key(
        600.0, "Seconds a `digest send` worker holds the outbox rows it took (a batch); the rows of a worker "
        "that was killed are sent by the others once this has passed."
    )
    unsubscribe: str = _key("", "The address of the List-Unsubscribe header and the footer link; when empty, `from`.")
    recipients: tuple[RecipientConfig, ...] = _key((), "Who gets the email: one `[[email.recipients]]` table each.")


@dataclass(frozen=True, slots=True)
class ServeConfig:
    """``[serve]``: the ``digest serve`` web process and the signed links of every message."""

    host: str = _key("127.0.0.1", "The address `digest serve` listens on; `--host` overrides it.")
    port: int = _key(8080, "The port `digest serve` listens on; `--port` overrides it.")
    secret_env: str = _key(
        "DIGEST_SECRET",
        "The name of the environment variable holding the secret that signs every personal link "
        "(never the secret), the same for `digest serve` and `digest run`; several secrets separated by "
        "spaces rotate it: the first signs, any verifies.",
    )
    forwarded_allow_ips: str = _key(
        "127.0.0.1", "Proxies (IPs, comma-separated, or `*`) whose X-Forwarded-For and X-Forwarded-Proto are believed."
    )
    trusted_hosts: tuple[str, ...] = _key((), "The Host header values `digest serve` answers (others get 400); empty: any.")
    subscribe: bool = _key(True, "`false` turns off the public /subscribe form; the other subscriber pages stay.")
    confirm_hours: int = _key(48, "Hours a confirmation link works.")
    client_limit: int = _key(10, "Subscribe attempts one client (IP address) may make per `limit_window`.")
    address_limit: int = _key(3, "Confirmation mails one address may be sent per `limit_window`.")
    limit_window: int = _key(3600, "The window of `client_limit` and `address_limit`, in seconds.")


@dataclass(frozen=True, slots=True)
class SubscribersConfig:
    """``[subscribers]``: what bounces do to a subscriber."""

    bounce_limit: int = _key(3, "Hard bounces (5xx replies, bounce reports) within `bounce_window_days` that disable a subscriber.")
    bounce_window_days: int = _key(30, "The days over which hard bounces are counted.")


@dataclass(frozen=True, slots=True)
class LlmConfig:
    """``[llm]``: optional language-model help from an OpenAI-compatible chat endpoint (off by default)."""

    enabled: bool = _key(
        False,
        "`true` asks the model for a one-sentence summary of each new paper and a second opinion on weak topic "
        "placements; `false`: nothing is imported or contacted.",
    )
    base_url: str = _key(
        "http://127.0.0.1:11434/v1",
        "The OpenAI-compatible API root; digest posts to `<base_url>/chat/completions` "
        "(Ollama: `http://127.0.0.1:11434/v1`, OpenAI: `https://api.openai.com/v1`).",
    )
    model: str = _key("", "Required when enabled: the model name the endpoint knows, e.g. `llama3.1:8b` or `gpt-4o-mini`.")
    api_key_env: str = _key(
        "DIGEST_LLM_API_KEY",
        "The name of the environment variable holding the API key (never the key); unset or empty: no "
        "Authorization header (a local server).",
    )
    timeout: float = _key(
        120.0,
        "Seconds the model may add to a run, in all: requests still unanswered then are abandoned and their "
        "papers keep the offline result.",
    )
    max_papers_per_run: int = _key(
        500, "The most papers a run sends to the model; the rest get no summary and keep the offline topic."
    )
    max_concurrency: int = _key(4, "Requests in flight at once.")
    batch_size: int = _key(10, "Papers per request (1 to 50): a run of N new papers makes at most N / batch_size requests.")


@dataclass(frozen=True, slots=True)
class Config:
    """The whole validated config."""

    path: Path | None = field(default=None, metadata={"internal": True})
    store: StoreConfig = _key(StoreConfig(), "Where digest keeps what it remembers.")
    sources: tuple[SourceConfig, ...] = _key((), "Where papers come from: one `[[sources]]` table per source.")
    fetch: FetchConfig = _key(FetchConfig(), "How network sources are downloaded.")
    topics: TopicsConfig = _key(TopicsConfig(), "How papers are grouped by topic.")
    schedule: ScheduleConfig = _key(ScheduleConfig(), "When `digest schedule` runs a cycle.")
    archive: ArchiveConfig = _key(ArchiveConfig(), "The Markdown archive and the HTML site built from it.")
    render: RenderConfig = _key(RenderConfig(), "How digests are rendered.")
    email: EmailConfig = _key(EmailConfig(), "Sending each digest by SMTP.")
    serve: ServeConfig = _key(ServeConfig(), "`digest serve`, the subscriber pages and the signed links in every message.")
    subscribers: SubscribersConfig = _key(SubscribersConfig(), "What bounces do to the subscribers in the store.")
    llm: LlmConfig = _key(LlmConfig(), "Optional language-model help: one-line summaries and a second opinion on topics.")


@dataclass(frozen=True, slots=True)
class KeyDoc:
    """One key of the config file as the configuration reference shows it."""

    name: str
    type: str  # "string", "integer", "list of strings", "`a`, `b` or `c`", ...
    default: str  # as written in TOML; "" when the key has none
    doc: str


@dataclass(frozen=True, slots=True)
class SectionDoc:
    """One table of the config file (``[email]``, ``[[sources]]``) with its description and keys."""

    header: str
    doc: str
    keys: tuple[KeyDoc, ...]


def schema_reference() -> tuple[SectionDoc, ...]:
    """Every table and key of the config schema, in file order, with the descriptions written beside them."""
    sections: list[SectionDoc] = []

    def walk(cls: type, header: str, doc: str, where: str) -> None:
        hints = typing.get_type_hints(cls)
        keys: list[KeyDoc] = []
        tables: list[tuple[type, str, str, str]] = []
        for f in dataclasses.fields(cls):
            if f.metadata.get("internal"):
                continue
            name = f.metadata.get("key", f.name)
            path = f"{where}.{name}" if where else name
            hint = hints[f.name]
            item = get_args(hint)[0] if get_origin(hint) is tuple else None
            if dataclasses.is_dataclass(hint) or (isinstance(item, type) and dataclasses.is_dataclass(item)):
                table = f"[{path}]" if item is None else f"[[{path}]]"
                tables.append((typing.cast(type, item or hint), table, f.metadata.get("doc", ""), path))
            else:
                keys.append(KeyDoc(name, _type_text(hint, f.metadata), _toml_text(f.default), f.metadata.get("doc", "")))
        if keys or header:
            sections.append(SectionDoc(header, doc, tuple(keys)))
        for table_cls, table, table_doc, path in tables:
            walk(table_cls, table, table_doc, path)

    walk(Config, "", "", "")
    return tuple(sections)


def _type_text(hint: Any, meta: Any) -> str:
    """A key's type in words, for the reference."""
    if meta.get("choices"):
        names = [f"`{c}`" for c in meta["choices"]]
        return f"{', '.join(names[:-1])} or {names[-1]}"
    if get_origin(hint) in (Union, types.UnionType):
        hint = next(a for a in get_args(hint) if a is not type(None))
    if get_origin(hint) is tuple:
        return f"list of {_TYPE_WORDS[get_args(hint)[0]]}s"
    return _TYPE_WORDS[hint]


_TYPE_WORDS: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean", Path: "path"}


def _toml_text(value: Any) -> str:
    """A default as it would be written in the config file ("" for a key with no default)."""
    if value is None or value == "":
        return "" if value is None else '""'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int):
        return f"{value:_}" if value >= 10_000 else str(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml_text(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def locate_config(explicit: Path | None, cwd: Path | None = None) -> Path | None:
    """The config path: ``--config``, then ``$DIGEST_CONFIG``, ``./digest.toml``, ``config/digest.toml``;
    None when none is given and neither file exists."""
    if explicit is not None:
        return explicit
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    here = cwd or Path.cwd()
    for candidate in (here / "digest.toml", here / "config" / "digest.toml"):
        if candidate.is_file():
            return candidate
    return None


def find_config(explicit: Path | None, cwd: Path | None = None) -> Path:
    """Return the config path (see :func:`locate_config`); ConfigError when there is none."""
    found = locate_config(explicit, cwd)
    if found is None:
        raise ConfigError(
            "no config file: none given with --config or $DIGEST_CONFIG, and neither ./digest.toml "
            "nor ./config/digest.toml exists",
            hint="run `digest init` to write a commented digest.toml here, or pass --config PATH",
        )
    return found


def builtin_config(folder: Path) -> Config:
    """The built-in defaults, for a preview with no config file: the shipped topics, no sources,
    and the store and archive paths inside ``folder`` (a preview never writes either)."""
    return dataclasses.replace(config_from_dict({}, folder / "digest.toml"), path=None)


def preview_config(explicit: Path | None, scratch: Path, *, given: bool, cwd: Path | None = None) -> Config:
    """The config ``digest preview`` uses: the one found (see :func:`locate_config`), else, when
    files or feeds to preview are ``given``, the :func:`builtin_config` in ``scratch``."""
    found = locate_config(explicit, cwd)
    if found is not None:
        return load_config(found)
    if not given:
        raise ConfigError(
            "nothing to preview: no config file (--config, $DIGEST_CONFIG, ./digest.toml, ./config/digest.toml) "
            "and no snapshot FILE or --url given",
            hint="digest preview LISTING.txt, digest preview --url FEED_URL, or `digest init` to write a config",
        )
    return builtin_config(scratch)


_ARXIV_LISTING = re.compile(r"^https?://(?:rss|export)\.arxiv\.org/(?:rss|atom)/([a-z-]+(?:\.[A-Za-z-]+)?(?:\+[a-z-]+(?:\.[A-Za-z-]+)?)*)/?$")
_HF_DAILY = re.compile(r"^https://huggingface\.co/api/daily_papers/?(?:\?.*)?$")


def source_for_url(url: str, taken: Collection[str] = ()) -> SourceConfig:
    """A source for a feed URL, named after what it lists (``cs.LG`` for an arXiv listing, ``hf-daily``
    for the Hugging Face daily papers API, else the host), with a suffix if ``taken`` has that name.

    ConfigError unless ``url`` is an http(s) URL.
    """
    if not is_http_url(url):
        raise ConfigError(f"{url!r} is not an http(s) URL")
    arxiv = _ARXIV_LISTING.match(url)
    if arxiv:
        kind, name = "feed", arxiv[1].replace("+", "-")  # cs.LG+stat.ML: "+" is no name character
    elif _HF_DAILY.match(url):
        kind, name = "hf-daily-papers", "hf-daily"
    else:
        kind, name = "feed", re.sub(r"[^A-Za-z0-9._-]+", "-", urlsplit(url).hostname or "").strip("-._") or "feed"
    unique, n = name, 1
    while unique in taken:
        n += 1
        unique = f"{name}-{n}"
    return SourceConfig(name=unique, kind=kind, url=url)


def is_http_url(url: str) -> bool:
    """True for an http(s) URL with a host, no spaces and, if any, a port that is a number in range
    (``http://[::1`` with its unclosed bracket, or ``http://host:port/``, is not one)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is no number or out of range
    except ValueError:  # an unclosed "[" of an IPv6 address, a bad port
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and not any(c.isspace() for c in url)


def is_address(text: str) -> bool:
    """True for a plain email address (``reader@example.org``, no spaces or brackets, at most 254
    characters), as ``[[email.recipients]] address`` and a subscriber's address take.

    Control characters (a newline, a terminal escape), bidi controls and invisible characters
    are refused: an address typed into the public subscribe form is printed by ``digest
    subscribers list`` and written into the export, pages and mails, where it must read as it is.
    """
    if not (_ADDRESS.match(text) and len(text) <= 254 and text.isprintable()):
        return False
    if text.isascii():
        return True
    from digest.sources.text import visible  # (digest.sources imports this module)

    return visible(text) == text


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
        elif not is_http_url(source.url):
            errors.append(f"{where}.url: {source.url!r} is not an http(s) URL")
    if config.topics.file is not None and not config.topics.file.is_file():
        errors.append(f"topics.file: file {config.topics.file} does not exist")
    if config.render.templates is not None and not config.render.templates.is_dir():
        errors.append(f"render.templates: folder {config.render.templates} does not exist")
    _check_email(config, errors)
    _check_serve(config, errors)
    _check_schedule(config.schedule, errors)
    _check_llm(config.llm, errors)
    if config.store.busy_timeout < 0:
        errors.append("store.busy_timeout: must be 0 or more seconds")
    _check_store_url(config.store, errors)
    if config.fetch.max_bytes < 1:
        errors.append("fetch.max_bytes: must be positive")
    if config.fetch.timeout <= 0:
        errors.append("fetch.timeout: must be positive")
    if config.fetch.concurrency < 1:
        errors.append("fetch.concurrency: must be at least 1")


def _check_variable_name(key: str, name: str, errors: list[str]) -> None:
    """A key that names an environment variable (a secret is read from it, never written in the file)."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        errors.append(f"{key}: {name!r} is not an environment variable name")


def _check_store_url(store: StoreConfig, errors: list[str]) -> None:
    """``[store] url`` and ``password_env``."""
    if store.url:
        errors.extend(f"store.url: {problem}" for problem in store_url_problems(store.url, store.password_env))
    _check_variable_name("store.password_env", store.password_env, errors)


def store_url_problems(url: str, password_env: str) -> list[str]:
    """What is wrong with ``url`` as a PostgreSQL store's URL (no password, a database named), as
    ``[store] url`` and ``digest store migrate --to`` check it; empty when nothing is."""
    from digest.postgres import SCHEMES, redact

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (a port that is not a number raises here)
    except ValueError as exc:
        return [f"not a URL ({exc})"]
    if parts.scheme not in SCHEMES:
        return [f"{redact(url)!r} is not a postgresql:// URL (an SQLite store is set with store.path)"]
    if parts.password is not None or any(key == "password" for key, _ in parse_qsl(parts.query)):
        return [f"holds a password; remove it and put it in the environment variable {password_env} (store.password_env names it)"]
    if not parts.path.strip("/"):
        return [f"{redact(url)!r} names no database (postgresql://user@host/DBNAME)"]
    return []


def _check_email(config: Config, errors: list[str]) -> None:
    """Recipient addresses, topics and categories, the sender, and the numeric limits of ``[email]``."""
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
        for j, code in enumerate(recipient.categories):
            if not is_arxiv_category(code):
                errors.append(f"email.recipients[{i}].categories[{j}]: {not_a_category(code)}")
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
    if email.claim_seconds < 1:
        errors.append("email.claim_seconds: must be at least 1 second")


def _check_serve(config: Config, errors: list[str]) -> None:
    """The web process's port, secret variable name and limits, and the bounce thresholds."""
    serve, subs = config.serve, config.subscribers
    if not 0 <= serve.port <= 65535:
        errors.append("serve.port: must be between 0 and 65535")
    _check_variable_name("serve.secret_env", serve.secret_env, errors)
    for key in ("confirm_hours", "client_limit", "address_limit", "limit_window"):
        if getattr(serve, key) < 1:
            errors.append(f"serve.{key}: must be at least 1")
    if subs.bounce_limit < 1:
        errors.append("subscribers.bounce_limit: must be at least 1")
    if subs.bounce_window_days < 1:
        errors.append("subscribers.bounce_window_days: must be at least 1")


MAX_BATCH = 50  # [llm] batch_size: papers per request


def _check_llm(llm: LlmConfig, errors: list[str]) -> None:
    """The endpoint, model, key variable name and limits of ``[llm]`` (the model only when enabled)."""
    if llm.enabled and not llm.model.strip():
        errors.append("llm.model: missing (name the model the endpoint serves, e.g. 'llama3.1:8b')")
    if not is_http_url(llm.base_url):
        errors.append(f"llm.base_url: {llm.base_url!r} is not an http(s) URL")
    _check_variable_name("llm.api_key_env", llm.api_key_env, errors)
    if llm.timeout <= 0:
        errors.append("llm.timeout: must be positive")
    if llm.max_papers_per_run < 0:
        errors.append("llm.max_papers_per_run: must be 0 or more")
    if llm.max_concurrency < 1:
        errors.append("llm.max_concurrency: must be at least 1")
    if not 1 <= llm.batch_size <= MAX_BATCH:
        errors.append(f"llm.batch_size: must be between 1 and {MAX_BATCH}")


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

            CronTrigger.from_crontab(apscheduler_crontab(schedule.cron), timezone=zone or "UTC")
    except ValueError as exc:
        errors.append(f"schedule.cron: {schedule.cron!r} is not a crontab expression ({exc})")
    if schedule.misfire_grace < 1:
        errors.append("schedule.misfire_grace: must be at least 1 second")


_CRON_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12))  # minute, hour, day of month, month
_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # crontab's weekday numbers 0-6 (and 7: Sunday)


def apscheduler_crontab(expr: str) -> str:
    """``expr`` with its weekday field in names, as APScheduler 3's ``CronTrigger.from_crontab`` must get it.

    crontab counts weekdays from 0 = Sunday (7 is Sunday too); APScheduler 3 reads the same
    numbers from 0 = Monday, so ``1-5`` would run Tuesday to Saturday (agronholm/apscheduler#286,
    not fixed in 3.x).  Numbers, names, ranges, lists and steps become the list of day names they
    mean; a field this cannot read is left as it is, for APScheduler to report.
    """
    fields = expr.split()
    if len(fields) != 5 or fields[4] == "*":
        return expr
    days = _crontab_days(fields[4])
    if days is None:
        return expr
    names = "*" if len(days) == 7 else ",".join(_CRON_DAYS[d] for d in sorted(days))
    return " ".join([*fields[:4], names])


def _crontab_days(field: str) -> set[int] | None:
    """The weekdays (0 = Sunday) a crontab weekday field means; None when it is not one."""

    def day(text: str) -> int | None:
        text = text.strip().lower()
        if text.isascii() and text.isdigit() and int(text) <= 7:
            return int(text) % 7 if int(text) == 7 else int(text)
        return _CRON_DAYS.index(text) if text in _CRON_DAYS else None

    days: set[int] = set()
    for part in field.split(","):
        base, slash, step_text = part.partition("/")
        step = int(step_text) if step_text.isascii() and step_text.isdigit() and int(step_text) > 0 else None
        if slash and step is None:
            return None
        if base == "*":
            first, last = 0, 7
        elif "-" in base:
            low, _, high = base.partition("-")
            first_day, last_day = day(low), day(high)
            if first_day is None or last_day is None:
                return None
            first = first_day
            last = 7 if high.strip() == "7" or (last_day == 0 and first_day > 0) else last_day
            if first > last:
                return None
        else:
            single = day(base)
            if single is None:
                return None
            first, last = single, (7 if slash else single)
        days.update(n % 7 for n in range(first, last + 1, step or 1))
    return days


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

"""``digest init``: a folder ready for digest, with a commented ``digest.toml`` and an ``inbox/``.

The config is rendered from ``config/digest.toml.j2``, the template the repository's example
``config/digest.toml`` is rendered from too (``python -m digest.quickstart`` prints the example),
so what ``init`` writes and the documented example cannot drift apart.  ``init`` never replaces a
file unless asked to, and then keeps the old one beside it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from digest.config import SourceConfig, is_address, load_config, source_for_url
from digest.errors import ConfigError
from digest.fileio import write_atomic

CONFIG_NAME = "digest.toml"
INBOX_NAME = "inbox"
TEMPLATE_NAME = "digest.toml.j2"
HF_DAILY_URL = "https://huggingface.co/api/daily_papers"
ARXIV_RSS_URL = "https://rss.arxiv.org/rss/{category}"
EXAMPLE_RECIPIENT = "reader@example.org"
_CATEGORY = re.compile(r"^[a-z-]+(?:\.[A-Za-z-]+)?(?:\+[a-z-]+(?:\.[A-Za-z-]+)?)*$")  # cs.LG, hep-th, cs.LG+stat.ML
_COMMENT_COLUMN = 40


@dataclass(frozen=True, slots=True)
class InitResult:
    """What ``digest init`` wrote."""

    folder: Path
    config: Path
    inbox: Path
    backup: Path | None  # the replaced config, kept (``--force``)
    sources: tuple[SourceConfig, ...]  # besides the inbox
    recipients: tuple[str, ...]


def config_template_path() -> Path:
    """The ``digest.toml`` template: inside an installed wheel, else in the source checkout."""
    here = Path(__file__).resolve().parent
    packaged = here / "_data" / "config" / TEMPLATE_NAME
    return packaged if packaged.is_file() else here.parent / "config" / TEMPLATE_NAME


def source_from_spec(spec: str, taken: Sequence[str] = ()) -> SourceConfig:
    """The source a ``--source`` value names: ``arxiv:CATEGORY`` (an arXiv RSS feed), ``hf`` (the
    Hugging Face daily papers) or any http(s) feed URL.  ConfigError for anything else."""
    if spec.lower() == "hf":
        return source_for_url(HF_DAILY_URL, taken)
    if spec.lower().startswith("arxiv:"):
        category = spec.split(":", 1)[1]
        if not _CATEGORY.match(category):
            raise ConfigError(
                f"--source {spec!r}: {category!r} is not an arXiv category",
                hint="name a category such as arxiv:cs.LG or arxiv:math.ST (several: arxiv:cs.LG+stat.ML)",
            )
        return source_for_url(ARXIV_RSS_URL.format(category=category), taken)
    try:
        return source_for_url(spec, taken)
    except ConfigError:
        raise ConfigError(
            f"--source {spec!r}: not arxiv:CATEGORY, hf, or an http(s) feed URL",
            hint="e.g. --source arxiv:cs.LG --source hf --source https://example.org/feed.xml",
        ) from None


def sources_from_specs(specs: Sequence[str]) -> list[SourceConfig]:
    """The sources ``--source`` values name, in order, each named apart from the inbox and the others."""
    chosen: list[SourceConfig] = []
    for spec in specs:
        chosen.append(source_from_spec(spec, [INBOX_NAME, *(s.name for s in chosen)]))
    return chosen


def render_config(
    sources: Sequence[SourceConfig] = (),
    recipients: Sequence[str] = (),
    *,
    root: str = "",
    email_enabled: bool | None = None,
    example: bool = False,
) -> str:
    """The text of a ``digest.toml`` with these sources (after the inbox) and email recipients.

    With no recipients the ``[email]`` section is written commented out; with some, email is
    enabled and the SMTP keys are placeholders to fill in.  ``root`` prefixes every path (the
    repository's example lives in ``config/``); ``example`` writes every key of ``[email]`` set,
    with email off unless ``email_enabled`` says otherwise.
    """
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(config_template_path().parent),
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # TOML, not HTML: every value goes through the toml filter instead
    )
    env.filters["toml"] = _toml_value
    env.filters["pad"] = lambda text: f"{text:<{_COMMENT_COLUMN - 1}} "
    email = bool(recipients) or example
    context: dict[str, Any] = {
        "root": root,
        "sources": [_source_context(s) for s in sources],
        "recipients": list(recipients) or [EXAMPLE_RECIPIENT],
        "email": email,
        "email_enabled": bool(recipients) if email_enabled is None else email_enabled,
        "smtp": example,
        "example": example,
    }
    return env.get_template(TEMPLATE_NAME).render(context)


def example_config() -> str:
    """The repository's ``config/digest.toml``: the template with every kind of source, email off."""
    specs = ("hf", "arxiv:cs.LG", "arxiv:cs.CL", "arxiv:cs.CV")
    sources: list[SourceConfig] = []
    for spec in specs:
        sources.append(source_from_spec(spec, [s.name for s in sources]))
    sources[-1] = SourceConfig(name=sources[-1].name, kind="feed", url=sources[-1].url, announce_types=("new",))
    return render_config(sources, [EXAMPLE_RECIPIENT], root="../", email_enabled=False, example=True)


def init_folder(
    folder: Path,
    *,
    sources: Sequence[str] = (),
    emails: Sequence[str] = (),
    force: bool = False,
    now: dt.datetime,
) -> InitResult:
    """Write ``digest.toml`` and make ``inbox/`` in ``folder`` (made if missing).

    ``sources`` are ``--source`` values, ``emails`` the recipients (email is enabled when there
    are some).  An existing ``digest.toml`` is an error unless ``force``, which keeps it as
    ``digest.toml.bak`` (or a timestamped name when that exists too).  The written file is loaded
    with the config validator before this returns.
    """
    chosen = sources_from_specs(sources)
    for address in emails:
        if not is_address(address):
            raise ConfigError(f"--email {address!r}: not an email address like reader@example.org")
    config, inbox = folder / CONFIG_NAME, folder / INBOX_NAME
    if config.is_dir() or (config.exists() and not force):
        raise ConfigError(
            f"{config}: already exists, not replaced",
            hint="pass --force to replace it (the old file is kept as digest.toml.bak)",
        )
    if inbox.exists() and not inbox.is_dir():
        raise ConfigError(f"{inbox}: exists and is not a folder (digest reads snapshot files from it)")
    text = render_config(chosen, list(dict.fromkeys(emails)))
    try:
        inbox.mkdir(parents=True, exist_ok=True)
        backup = _back_up(config, now) if config.exists() else None
        write_atomic(config, text)
    except OSError as exc:
        raise ConfigError(f"{exc.filename or folder}: cannot write: {exc.strerror or exc}") from None
    load_config(config)  # what init writes must load as it is
    return InitResult(folder, config, inbox, backup, tuple(chosen), tuple(dict.fromkeys(emails)))


def describe_init(result: InitResult, cwd: Path) -> str:
    """What ``digest init`` says: what it wrote and the next three commands to type."""
    where = _shown(result.folder, cwd)
    names = ", ".join(["inbox", *(s.name for s in result.sources)])
    lines = [f"Wrote {_shown(result.config, cwd)} (sources: {names}) and made {_shown(result.inbox, cwd)}/."]
    if result.backup is not None:
        lines.append(f"The replaced config is kept as {_shown(result.backup, cwd)}.")
    if result.recipients:
        lines.append(
            f"Email goes to {', '.join(result.recipients)}: fill in your SMTP server in [email] of "
            f"{CONFIG_NAME} first (its password in $DIGEST_SMTP_PASSWORD)."
        )
    lines.append("Next" + ("" if where == "." else f", in {where}") + ":")
    lines += [
        "  cp LISTING.txt inbox/   # a paper-listing page saved as text" + (" (the feeds are read too)" if result.sources else ""),
        "  digest run              # read the sources, group the new papers, write archive/",
        "  digest site             # the archive as an HTML site: open site/index.html",
    ]
    return "\n".join(lines)


def _shown(path: Path, cwd: Path) -> str:
    """``path`` relative to ``cwd`` when it is inside it, else absolute."""
    try:
        return str(path.resolve().relative_to(cwd.resolve()))
    except ValueError:
        return str(path.resolve())


def _back_up(config: Path, now: dt.datetime) -> Path:
    """Copy ``config`` to ``NAME.bak``, or ``NAME.YYYYMMDD-HHMMSS.bak`` when that exists; return the copy."""
    backup = config.with_name(config.name + ".bak")
    stamp = now.strftime("%Y%m%d-%H%M%S")
    n = 1
    while backup.exists():
        backup = config.with_name(f"{config.name}.{stamp}{'' if n == 1 else f'-{n}'}.bak")
        n += 1
    shutil.copy2(config, backup)
    return backup


def _source_context(source: SourceConfig) -> dict[str, Any]:
    """What the template reads of a source: announce types only for an arXiv listing."""
    arxiv = source.kind == "feed" and re.match(r"^https?://(rss|export)\.arxiv\.org/(rss|atom)/", source.url) is not None
    return {
        "name": source.name,
        "kind": source.kind,
        "url": source.url,
        "announce_types": list(source.announce_types) if arxiv else None,
    }


def _toml_value(value: Any) -> str:
    """A string or a list of strings as TOML (a JSON string is a valid TOML basic string)."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return "[" + ", ".join(json.dumps(v, ensure_ascii=False) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")  # a template bug, not a user error


if __name__ == "__main__":  # python -m digest.quickstart > config/digest.toml
    print(example_config(), end="")

"""Topics: the taxonomy file and the grouper that gives every new paper one topic.

First version: weighted keyword matching (a title hit counts three times an abstract hit).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from digest.errors import ConfigError
from digest.models import Paper, Placement, TopicGroup

OTHER_CODE = "other"
OTHER_TITLE = "Other"
_CODE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_TOPIC_KEYS = {"code", "title", "description", "keywords", "examples"}


@dataclass(frozen=True, slots=True)
class Topic:
    """One topic of the taxonomy."""

    code: str
    title: str
    description: str = ""
    keywords: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Taxonomy:
    """The ordered topics a digest is grouped by."""

    topics: tuple[Topic, ...]
    path: Path | None = None

    def codes(self) -> tuple[str, ...]:
        """The topic codes in configured order."""
        return tuple(t.code for t in self.topics)

    def title_of(self, code: str) -> str:
        """A topic's title ("Other" for the catch-all)."""
        return next((t.title for t in self.topics if t.code == code), OTHER_TITLE)


def default_taxonomy_path() -> Path:
    """The shipped ``config/topics.toml`` (installed package data, else the source checkout)."""
    here = Path(__file__).parent
    installed = here / "_data" / "config" / "topics.toml"
    return installed if installed.is_file() else here.parent / "config" / "topics.toml"


def load_taxonomy(path: Path) -> Taxonomy:
    """Read and check a topics file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: topics file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    raw = data.get("topics")
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{path}: topics: expected a non-empty list of [[topics]] tables")
    topics: list[Topic] = []
    for i, entry in enumerate(raw):
        where = f"{path}: topics[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: expected a table")
        unknown = set(entry) - _TOPIC_KEYS
        if unknown:
            raise ConfigError(f"{where}.{sorted(unknown)[0]}: unknown key (known: {', '.join(sorted(_TOPIC_KEYS))})")
        code = entry.get("code")
        if not isinstance(code, str) or not _CODE.match(code) or code == OTHER_CODE:
            raise ConfigError(f"{where}.code: expected a lower-case code of letters, digits, '-' or '_' (not 'other')")
        for key in ("title", "description"):
            if not isinstance(entry.get(key, ""), str):
                raise ConfigError(f"{where}.{key}: expected a string")
        for key in ("keywords", "examples"):
            value = entry.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{where}.{key}: expected a list of strings")
        topics.append(
            Topic(code, entry.get("title") or code, entry.get("description", ""),
                  tuple(entry.get("keywords", [])), tuple(entry.get("examples", [])))
        )
    codes = [t.code for t in topics]
    duplicate = next((c for c in codes if codes.count(c) > 1), None)
    if duplicate:
        raise ConfigError(f"{path}: topics: duplicate code {duplicate!r}")
    return Taxonomy(tuple(topics), path)


class Grouper:
    """Places papers in topics by weighted keyword hits."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        self.taxonomy = taxonomy
        self._patterns = [
            (t.code, [(k, re.compile(r"\b" + re.escape(k.lower()) + r"\b")) for k in t.keywords]) for t in taxonomy.topics
        ]

    def place(self, paper: Paper) -> Placement:
        """The paper's topic, with the words that decided it and the runner-up."""
        title, abstract = paper.title.lower(), paper.abstract.lower()
        scored: list[tuple[float, int, str, tuple[str, ...]]] = []
        for order, (code, patterns) in enumerate(self._patterns):
            score, hits = 0.0, []
            for word, pattern in patterns:
                n = 3 * len(pattern.findall(title)) + len(pattern.findall(abstract))
                if n:
                    score += n
                    hits.append(word)
            scored.append((score, -order, code, tuple(hits)))
        scored.sort(reverse=True)
        best, second = scored[0], scored[1] if len(scored) > 1 else (0.0, 0, None, ())
        if best[0] <= 0:
            return Placement(OTHER_CODE, 0.0)
        return Placement(best[2], best[0], best[3], second[2] if second[0] > 0 else None, second[0])


def group_papers(
    papers: Sequence[Paper], grouper: Grouper, *, order: str = "source"
) -> tuple[tuple[TopicGroup, ...], dict[str, Placement]]:
    """Group papers by topic: configured order, "Other" last, each paper exactly once."""
    placements = {p.key: grouper.place(p) for p in papers}
    groups: list[TopicGroup] = []
    taxonomy = grouper.taxonomy
    for code, title, description in [(t.code, t.title, t.description) for t in taxonomy.topics] + [(OTHER_CODE, OTHER_TITLE, "")]:
        members = [p for p in papers if placements[p.key].topic == code]
        if order == "upvotes":
            members.sort(key=lambda p: (-(p.upvotes or 0), p.position))
        if members:
            groups.append(TopicGroup(code, title, tuple(members), description))
    return tuple(groups), placements

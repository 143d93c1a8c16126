"""The taxonomy: the topics file (``config/topics.toml``) read, checked and held as plain values.

A topics file has one ``[[topics]]`` table per topic (code, title, description, examples,
arXiv categories, optional keywords and tie-break rules), an optional ``[other]`` table that
says what lies outside the taxonomy, and an optional ``examples_file``: a TSV of labelled
titles (``title<TAB>topic[<TAB>abstract]``) that teaches the grouper in bulk.
"""

from __future__ import annotations

import csv
import functools
import math
import re
import tomllib
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from digest.errors import ConfigError
from digest.identity import normalise_title

OTHER_CODE = "other"
OTHER_TITLE = "Other"

_CODE = re.compile(r"^[a-z0-9_-]+$")
_KEYWORD_TOKEN = re.compile(r"[^\W_]+\*?")
#: An arXiv category ("cs.LG", "hep-ph", "math.AP") or a whole archive ("math", "astro-ph").
_CATEGORY = re.compile(r"^[a-z][a-z-]*(\.[A-Za-z][A-Za-z-]*)?$")
_TOPIC_FIELDS = ("code", "title", "description", "keywords", "examples", "categories", "wins_over")
_OTHER_FIELDS = ("description", "examples", "categories", "except_with")
_FILE_FIELDS = ("topics", "other", "examples_file", "self_teaching")
_REQUIRED_FIELDS = ("code", "title")
#: A taxonomy with fewer examples than this per topic (inline, [other]'s and its examples file's,
#: on average) teaches itself unless its topics file says otherwise (see :meth:`Taxonomy.teaches_itself`).
SELF_TEACH_BELOW = 100


@dataclass(frozen=True, slots=True)
class Example:
    """A labelled paper that teaches the grouper: a title, its topic, maybe its abstract, and
    how much it counts in the word model beside the other examples of its topic (``weight``;
    the grouper's sense of meaning weighs every example alike).  An example that is not
    ``nearest`` is left out of the meaning's search for a paper's nearest examples (and so is
    never the example a placement's ``why`` cites); it teaches the word model, its words count
    in the IDFs, and a paper of its very title is placed in its topic like any example's."""

    title: str
    topic: str
    abstract: str = ""
    weight: float = 1.0
    nearest: bool = True


@dataclass(frozen=True, slots=True)
class Topic:
    """One topic of the taxonomy.

    ``examples`` are titles of papers that belong here; ``categories`` are arXiv categories
    (or whole archives) that point here; ``keywords`` (optional, ``"kv cache^4"``,
    ``"quantiz*"``) are phrases that count as strong evidence; ``wins_over`` lists the topics
    this one beats when both fit (the labelling guide's tie-break rules, as data).
    """

    code: str
    title: str
    description: str
    keywords: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    wins_over: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OtherSpec:
    """What lies outside the taxonomy: a description, example titles, the arXiv categories
    that mean Other unless the text clearly makes the paper one of the taxonomy's, and the
    categories (``except_with``) that, listed as well, leave the decision to the text."""

    description: str = ""
    examples: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    except_with: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Taxonomy:
    """The configured topics, in display order, what lies outside them, and their teaching."""

    topics: tuple[Topic, ...]
    path: Path | None = None
    other: OtherSpec = OtherSpec()
    #: Labelled papers from ``examples_file`` (the inline ``examples`` are not repeated here).
    extra_examples: tuple[Example, ...] = ()
    #: Whether the grouper teaches itself from its own surest placements of the background
    #: papers (see :mod:`digest.topics.grouper`); None: when the taxonomy has few examples.
    self_teaching: bool | None = None
    #: Normalised titles of papers being measured (:meth:`without_examples`): taught by no
    #: example, and left out of the papers the grouper teaches itself with.
    held_out: frozenset[str] = frozenset()

    def codes(self) -> tuple[str, ...]:
        """The topic codes in display order ("other" not included)."""
        return tuple(t.code for t in self.topics)

    def title_of(self, code: str) -> str:
        """A topic's title: "Other" for the catch-all, the code itself for a code not (or no
        longer) in the taxonomy."""
        if code == OTHER_CODE:
            return OTHER_TITLE
        return next((t.title for t in self.topics if t.code == code), code)

    def topic(self, code: str) -> Topic:
        """The topic with this code; KeyError if there is none."""
        for t in self.topics:
            if t.code == code:
                return t
        raise KeyError(code)

    def examples(self) -> tuple[Example, ...]:
        """Every labelled example: the inline ones of each topic and of [other], then the file's."""
        inline = [Example(title, t.code) for t in self.topics for title in t.examples]
        inline += [Example(title, OTHER_CODE) for title in self.other.examples]
        return tuple(inline) + self.extra_examples

    def teaches_itself(self) -> bool:
        """Whether the grouper teaches itself from the background: as the topics file says,
        else when the taxonomy has fewer than ``SELF_TEACH_BELOW`` examples per topic."""
        if self.self_teaching is not None:
            return self.self_teaching
        return len(self.examples()) < SELF_TEACH_BELOW * len(self.topics)

    def without_examples(self, titles: set[str]) -> Taxonomy:
        """This taxonomy less the examples whose normalised title is in ``titles``, which it
        will not teach itself with either (to measure the grouper on papers it was not taught
        with); it teaches itself or not as the whole taxonomy does."""
        def keep(title: str) -> bool:
            return normalise_title(title) not in titles

        topics = tuple(
            Topic(t.code, t.title, t.description, t.keywords, tuple(filter(keep, t.examples)), t.categories, t.wins_over)
            for t in self.topics
        )
        other = OtherSpec(
            self.other.description, tuple(filter(keep, self.other.examples)), self.other.categories, self.other.except_with
        )
        extra = tuple(e for e in self.extra_examples if keep(e.title))
        return Taxonomy(topics, self.path, other, extra, self.teaches_itself(), self.held_out | frozenset(titles))


def configured_taxonomy(file: Path | None) -> Taxonomy:
    """The taxonomy of ``[topics] file``, or the shipped default when none is set."""
    return load_taxonomy(file or default_taxonomy_path())


def default_taxonomy_path() -> Path:
    """The shipped ``topics.toml``: inside an installed wheel, else in the source checkout."""
    here = Path(__file__).resolve().parent.parent
    packaged = here / "_data" / "config" / "topics.toml"
    if packaged.is_file():
        return packaged
    return here.parent / "config" / "topics.toml"


def fold(text: str) -> str:
    """``text`` in NFKC, case-folded: the form every match compares."""
    return unicodedata.normalize("NFKC", text).casefold()


@functools.lru_cache(maxsize=4096)
def parse_keyword(raw: str) -> tuple[str, float]:
    """Split ``"phrase^weight"`` into the phrase and its weight (1.0 without ``^``).

    ValueError if the weight is not a non-zero number or the phrase has no word in it.
    """
    phrase, sep, weight_text = raw.rpartition("^")
    if not sep:
        phrase, weight = raw, 1.0
    else:
        try:
            weight = float(weight_text)
        except ValueError:
            raise ValueError(f"bad weight {weight_text!r} after '^'") from None
        if weight == 0 or not math.isfinite(weight):
            raise ValueError(f"bad weight {weight_text!r} after '^': use a non-zero number")
    if not _KEYWORD_TOKEN.search(fold(phrase)):
        raise ValueError(f"{raw!r} has no word in it")
    return phrase.strip(), weight


def category_matches(pattern: str, category: str) -> bool:
    """Whether an arXiv ``category`` ("math.AP") falls under ``pattern`` ("math" or "math.AP")."""
    return category == pattern or ("." not in pattern and category.split(".", 1)[0] == pattern)


def load_taxonomy(path: Path) -> Taxonomy:
    """Read and check a topics file; ConfigError naming the file and key on any problem.

    The config check, the pipeline and the evaluation all ask for it: a file unchanged since
    its last parse (same mtime and size, and the same for its examples file) is not parsed again.
    """
    try:
        stat = path.stat()
    except OSError:
        return _parse_taxonomy(path)  # reports the problem
    return _parse_taxonomy_cached(path, stat.st_mtime_ns, stat.st_size, _examples_file_stamp(path))


def _examples_file_stamp(path: Path) -> tuple[int, int]:
    """mtime and size of the examples file the topics file names (0, 0 when none or unreadable)."""
    try:
        name = tomllib.loads(path.read_text(encoding="utf-8")).get("examples_file")
        stat = (path.parent / name).stat() if isinstance(name, str) else None
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return (0, 0)
    return (stat.st_mtime_ns, stat.st_size) if stat else (0, 0)


@functools.lru_cache(maxsize=8)
def _parse_taxonomy_cached(path: Path, mtime_ns: int, size: int, examples_stamp: tuple[int, int]) -> Taxonomy:
    return _parse_taxonomy(path)


def _parse_taxonomy(path: Path) -> Taxonomy:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot read topics file: {exc.strerror or exc}",
            hint="set [topics] file in digest.toml to an existing topics.toml",
        ) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    errors: list[str] = []
    topics = _check_taxonomy(data, errors)
    other = _check_other(data.get("other", {}), errors)
    extra: tuple[Example, ...] = ()
    examples_file = data.get("examples_file")
    if examples_file is not None:
        if not isinstance(examples_file, str) or not examples_file.strip():
            errors.append("examples_file: expected the name of a TSV file")
        elif not errors:
            extra = _read_examples_file(path.parent / examples_file, {t.code for t in topics}, errors)
    self_teaching = data.get("self_teaching")
    if self_teaching is not None and not isinstance(self_teaching, bool):
        errors.append(f"self_teaching: expected true or false, got {self_teaching!r}")
        self_teaching = None
    if errors:
        more = errors[1:]
        raise ConfigError(
            f"{path}: {errors[0]}",
            hint=("also: " + "; ".join(more[:5]) + (f"; and {len(more) - 5} more" if len(more) > 5 else ""))
            if more
            else None,
        )
    return Taxonomy(topics=tuple(topics), path=path, other=other, extra_examples=extra, self_teaching=self_teaching)


def _check_taxonomy(data: Mapping[str, Any], errors: list[str]) -> list[Topic]:
    """Turn the parsed TOML into topics, appending a message for each problem to ``errors``."""
    for key in data:
        if key not in _FILE_FIELDS:
            errors.append(f"unknown key {key!r} (expected [[topics]] tables, [other], examples_file and self_teaching)")
    raw_topics = data.get("topics")
    if not isinstance(raw_topics, list) or not raw_topics:
        errors.append("topics: expected at least one [[topics]] table")
        return []
    topics: list[Topic] = []
    seen: set[str] = set()
    where_of: dict[str, str] = {}
    for i, raw in enumerate(raw_topics):
        where = f"topics[{i}]"
        if not isinstance(raw, dict):
            errors.append(f"{where}: expected a table")
            continue
        topic = _check_topic(raw, where, errors)
        if topic is None:
            continue
        if topic.code in seen:
            errors.append(f"{where}.code: duplicate code {topic.code!r}")
        seen.add(topic.code)
        where_of.setdefault(topic.code, where)
        topics.append(topic)
    example_of: dict[str, str] = {}
    for topic in topics:
        where = where_of[topic.code]
        for j, code in enumerate(topic.wins_over):
            if code not in seen:
                errors.append(f"{where}.wins_over[{j}]: unknown topic {code!r}")
        for j, title in enumerate(topic.examples):
            other = example_of.setdefault(normalise_title(title), topic.code)
            if other != topic.code:
                errors.append(f"{where}.examples[{j}]: {title!r} is already an example of {other!r}")
    return topics


def _string_list(raw: Mapping[str, Any], key: str, where: str, errors: list[str]) -> tuple[str, ...]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        errors.append(f"{where}.{key}: expected a list of strings")
        return ()
    return tuple(v.strip() for v in value if v.strip())


def _check_categories(values: tuple[str, ...], key: str, errors: list[str]) -> None:
    """Append an error for each of ``values`` (the list at ``key``) that is not an arXiv category."""
    for j, category in enumerate(values):
        if not _CATEGORY.match(category):
            errors.append(
                f"{key}[{j}]: {category!r} is not an arXiv category such as 'cs.LG' or an archive such as 'math'"
            )


def _check_topic(raw: Mapping[str, Any], where: str, errors: list[str]) -> Topic | None:
    """Check one [[topics]] table; None if it cannot become a topic."""
    before = len(errors)
    for key in raw:
        if key not in _TOPIC_FIELDS:
            errors.append(f"{where}: unknown key {key!r} (expected one of {', '.join(_TOPIC_FIELDS)})")
    for key in _REQUIRED_FIELDS:
        if key not in raw:
            errors.append(f"{where}.{key}: missing")
    strings = {}
    for key in ("code", "title", "description"):
        value = raw.get(key, "")
        if not isinstance(value, str):
            errors.append(f"{where}.{key}: expected a string")
        else:
            strings[key] = value.strip()
    code = strings.get("code", "")
    if "code" in raw and isinstance(raw["code"], str):
        if not _CODE.match(code):
            errors.append(f"{where}.code: {code!r} must be lower-case letters, digits, '-' or '_'")
        elif code == OTHER_CODE:
            errors.append(f"{where}.code: {OTHER_CODE!r} is reserved: describe it in the [other] table")
    if "title" in raw and not strings.get("title", "x"):
        errors.append(f"{where}.title: must not be empty")
    lists = {key: _string_list(raw, key, where, errors) for key in ("keywords", "examples", "categories", "wins_over")}
    for j, keyword in enumerate(lists["keywords"]):
        try:
            parse_keyword(keyword)
        except ValueError as exc:
            errors.append(f"{where}.keywords[{j}]: {exc}")
    _check_categories(lists["categories"], f"{where}.categories", errors)
    if len(errors) > before:
        return None
    return Topic(
        code=code,
        title=strings["title"],
        description=strings.get("description", ""),
        keywords=lists["keywords"],
        examples=lists["examples"],
        categories=lists["categories"],
        wins_over=lists["wins_over"],
    )


def _check_other(raw: Any, errors: list[str]) -> OtherSpec:
    """Check the [other] table."""
    if not isinstance(raw, dict):
        errors.append("other: expected a table")
        return OtherSpec()
    for key in raw:
        if key not in _OTHER_FIELDS:
            errors.append(f"other: unknown key {key!r} (expected one of {', '.join(_OTHER_FIELDS)})")
    description = raw.get("description", "")
    if not isinstance(description, str):
        errors.append("other.description: expected a string")
        description = ""
    examples = _string_list(raw, "examples", "other", errors)
    categories = _string_list(raw, "categories", "other", errors)
    _check_categories(categories, "other.categories", errors)
    except_with = _string_list(raw, "except_with", "other", errors)
    _check_categories(except_with, "other.except_with", errors)
    return OtherSpec(description.strip(), examples, categories, except_with)


#: The range of an examples-file line's weight: beyond it one line would outweigh the rest of
#: its topic, or the regularisation of every topic.
MIN_WEIGHT = 0.001
MAX_WEIGHT = 1000.0


#: What an examples-file line's ``nearest`` cell may say (empty: yes).
NEAREST_VALUES = {"": True, "yes": True, "no": False}


@dataclass(frozen=True, slots=True)
class ExampleRow:
    """One line of an examples file, as written: ``topic`` is None when the line has no
    second field."""

    line: int
    title: str
    topic: str | None
    abstract: str
    weight: str
    nearest: str


def examples_file_rows(path: Path) -> list[ExampleRow]:
    """The lines of an examples TSV after its header line, blank lines left out; OSError when it
    cannot be read.  ``title`` and ``topic`` are the first two fields; ``abstract``, ``weight``
    and ``nearest`` are the fields the header names so (``abstract`` is the third when the
    header does not name it; a line has no weight or nearest unless the header names one)."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        header, *rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)) or [[]]
    named = {name.strip().lower(): i for i, name in enumerate(header) if i >= 2}
    abstract_at = named.get("abstract", 2 if 2 not in named.values() else None)
    weight_at = named.get("weight")
    nearest_at = named.get("nearest")

    def field(row: list[str], at: int | None) -> str:
        return row[at].strip() if at is not None and at < len(row) else ""

    return [
        ExampleRow(
            line,
            row[0].strip(),
            row[1].strip() if len(row) > 1 else None,
            field(row, abstract_at),
            field(row, weight_at),
            field(row, nearest_at),
        )
        for line, row in enumerate(rows, start=2)
        if any(cell.strip() for cell in row)
    ]


def _read_examples_file(path: Path, codes: set[str], errors: list[str]) -> tuple[Example, ...]:
    """The examples of an examples TSV, each row checked (what is wrong goes to ``errors``)."""
    try:
        rows = examples_file_rows(path)
    except OSError as exc:
        errors.append(f"examples_file: cannot read {path}: {exc.strerror or exc}")
        return ()
    examples = []
    for row in rows:
        if row.topic is None or not row.title:
            errors.append(f"{path}:{row.line}: expected title<TAB>topic[<TAB>abstract][<TAB>weight][<TAB>nearest]")
            continue
        if row.topic not in codes and row.topic != OTHER_CODE:
            errors.append(f"{path}:{row.line}: unknown topic {row.topic!r}")
            continue
        weight = example_weight(row.weight)
        if weight is None:
            errors.append(
                f"{path}:{row.line}: weight {row.weight!r} is not a number from {MIN_WEIGHT:g} to {MAX_WEIGHT:g}"
            )
            continue
        nearest = NEAREST_VALUES.get(row.nearest.lower())
        if nearest is None:
            errors.append(f"{path}:{row.line}: nearest {row.nearest!r} is not yes or no")
            continue
        examples.append(Example(row.title, row.topic, row.abstract, weight, nearest))
    return tuple(examples)


def example_weight(cell: str) -> float | None:
    """The weight of an examples-file line: 1 when the cell is empty, None when it is not a
    number from ``MIN_WEIGHT`` to ``MAX_WEIGHT``."""
    if not cell:
        return 1.0
    try:
        weight = float(cell)
    except ValueError:
        return None
    return weight if MIN_WEIGHT <= weight <= MAX_WEIGHT else None

"""Topic config and the grouper: every new paper gets exactly one topic, or "Other".

The taxonomy is a TOML file (``config/topics.toml``); each topic has a code, a title, a
description, weighted keywords and example titles.  :class:`Grouper` scores a paper against
every topic with two kinds of evidence, both computed from the taxonomy alone:

* keyword hits: each keyword (a word or phrase, ``*`` for a prefix, ``^N`` for a weight)
  found in the title counts ``TITLE_WEIGHT`` times its weight, in the abstract its weight,
  damped logarithmically for repeats;
* similarity: TF-IDF cosine between the paper and a profile of each topic made of its title,
  description, keywords and examples (a term found in few topics' profiles weighs more).

A paper whose title is listed among a topic's examples goes to that topic.  A paper whose best
score stays under ``OTHER_THRESHOLD`` goes to "Other".  Each placement carries the words that
decided it and the runner-up topic.
"""

from __future__ import annotations

import csv
import math
import os
import re
import tempfile
import tomllib
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from digest.errors import ConfigError
from digest.identity import normalise_title
from digest.models import Paper, Placement, TopicGroup

OTHER_CODE = "other"
OTHER_TITLE = "Other"
ORDERS = ("source", "upvotes")

#: A keyword in the title counts this many times its weight.
TITLE_WEIGHT = 6.0
#: The cosine similarity to a topic's profile is scaled by this before it joins keyword scores.
SIMILARITY_WEIGHT = 5.0
#: A paper whose best topic scores below this goes to "Other".
OTHER_THRESHOLD = 1.5
#: A tie-break rule (``wins_over``) needs this much title evidence ...
RULE_MIN_TITLE = 18.0
#: ... and this share of the current winner's total.
RULE_RATIO = 0.3
#: How many pieces of evidence a placement lists.
MAX_EVIDENCE = 4

_CODE = re.compile(r"^[a-z0-9_-]+$")
_WORD = re.compile(r"[a-z0-9]+")
_KEYWORD_TOKEN = re.compile(r"[a-z0-9]+\*?")
_TOPIC_FIELDS = ("code", "title", "description", "keywords", "examples", "wins_over")
_REQUIRED_FIELDS = ("code", "title")

# Words that say nothing about a topic; they are left out of the similarity profiles.
_STOPWORDS = frozenset(
    """a about above across after again against all almost also although am among an and any
    are as at be been before being below between both but by can could did do doe doing down
    during each either et etc few for from further had has have having here how however i if in
    into is it its itself just least less like made make many may more most much must no nor not
    now of off often on once one only or other our out over own per rather same several should
    show shown shows since so some such than that the their them then there these they this
    those through thu to too two three under until up upon us use used using very via wa was we
    well were what when where whether which while who whom why will with within without would
    yet you your
    al approach based better competitive demonstrate different effective effectively efficient
    efficiently enable enabling existing experiment experimental extensive find first framework
    further gain general high higher improve improved improvement improving including introduce
    key large larger learning level low lower method methodology model modeling models network
    networks neural new novel number outperform paper performance popular present previous
    problem propose proposed provide recent recently result results significant significantly
    simple small specific standard state strong study task tasks technique techniques three time
    various way wide work""".split()
)


# --------------------------------------------------------------------------- the taxonomy


@dataclass(frozen=True, slots=True)
class Topic:
    """One topic of the taxonomy.

    ``keywords`` are kept as written (``"kv cache^4"``, ``"quantiz*"``); :func:`parse_keyword`
    reads one.  ``examples`` are titles of papers that belong here.
    """

    code: str
    title: str
    description: str
    keywords: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()
    wins_over: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Taxonomy:
    """The configured topics, in display order, and the file they came from."""

    topics: tuple[Topic, ...]
    path: Path | None = None

    def codes(self) -> tuple[str, ...]:
        """The topic codes in display order ("other" not included)."""
        return tuple(t.code for t in self.topics)

    def topic(self, code: str) -> Topic:
        """The topic with this code; KeyError if there is none."""
        for t in self.topics:
            if t.code == code:
                return t
        raise KeyError(code)


def default_taxonomy_path() -> Path:
    """The shipped ``topics.toml``: inside an installed wheel, else in the source checkout."""
    here = Path(__file__).resolve().parent
    packaged = here / "_data" / "config" / "topics.toml"
    if packaged.is_file():
        return packaged
    return here.parent / "config" / "topics.toml"


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
    if not _KEYWORD_TOKEN.search(_fold(phrase)):
        raise ValueError(f"{raw!r} has no word in it")
    return phrase.strip(), weight


def load_taxonomy(path: Path) -> Taxonomy:
    """Read and check a topics file; ConfigError naming the file and key on any problem."""
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
    if errors:
        more = errors[1:]
        raise ConfigError(
            f"{path}: {errors[0]}",
            hint=("also: " + "; ".join(more)) if more else None,
        )
    return Taxonomy(topics=tuple(topics), path=path)


def _check_taxonomy(data: Mapping[str, Any], errors: list[str]) -> list[Topic]:
    """Turn the parsed TOML into topics, appending a message for each problem to ``errors``."""
    for key in data:
        if key != "topics":
            errors.append(f"unknown key {key!r} (expected only [[topics]] tables)")
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
    for topic in topics:
        for j, code in enumerate(topic.wins_over):
            if code not in seen:
                errors.append(f"{where_of[topic.code]}.wins_over[{j}]: unknown topic {code!r}")
    return topics


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
            errors.append(f"{where}.code: {OTHER_CODE!r} is reserved for papers that fit no topic")
    if "title" in raw and not strings.get("title", "x"):
        errors.append(f"{where}.title: must not be empty")
    lists: dict[str, tuple[str, ...]] = {}
    for key in ("keywords", "examples", "wins_over"):
        value = raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            errors.append(f"{where}.{key}: expected a list of strings")
            continue
        lists[key] = tuple(v.strip() for v in value if v.strip())
    for j, keyword in enumerate(lists.get("keywords", ())):
        try:
            parse_keyword(keyword)
        except ValueError as exc:
            errors.append(f"{where}.keywords[{j}]: {exc}")
    if len(errors) > before:
        return None
    return Topic(
        code=code,
        title=strings["title"],
        description=strings.get("description", ""),
        keywords=lists["keywords"],
        examples=lists["examples"],
        wins_over=lists["wins_over"],
    )


# --------------------------------------------------------------------------- text


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _singular(token: str) -> str:
    """Drop a plural ending: "caches" -> "cache", "studies" -> "study"."""
    if len(token) > 3 and token.endswith("s") and not token.endswith(("ss", "us", "is")):
        if token.endswith("ies") and len(token) > 4:
            return token[:-3] + "y"
        return token[:-1]
    return token


_SUFFIXES = ("izations", "ization", "isation", "ations", "ation", "ings", "ing", "ers", "er",
             "ed", "ive", "ly", "al", "e")


def _stem(token: str) -> str:
    """A crude stem for the similarity profiles: "pruning", "pruned", "prune" -> "prun"."""
    for suffix in _SUFFIXES:
        if token.endswith(suffix) and len(token) - len(suffix) >= 4:
            return token[: -len(suffix)]
    return token


def _tokens(text: str) -> list[str]:
    """Lower-cased words of ``text`` with plural endings dropped."""
    return [_singular(w) for w in _WORD.findall(_fold(text))]


# --------------------------------------------------------------------------- the grouper


@dataclass(frozen=True, slots=True)
class _Keyword:
    """One compiled keyword: its words (a trailing '*' in a word = prefix) and weight."""

    words: tuple[str, ...]
    prefix: tuple[bool, ...]
    topic: int
    weight: float
    text: str

    def matches_at(self, tokens: Sequence[str], i: int) -> bool:
        if i + len(self.words) > len(tokens):
            return False
        for k, (word, is_prefix) in enumerate(zip(self.words, self.prefix)):
            token = tokens[i + k]
            if not (token.startswith(word) if is_prefix else token == word):
                return False
        return True


def _compile_keyword(raw: str, topic: int) -> _Keyword:
    phrase, weight = parse_keyword(raw)
    parts = _KEYWORD_TOKEN.findall(_fold(phrase))
    words = tuple(p.rstrip("*") if p.endswith("*") else _singular(p) for p in parts)
    return _Keyword(words, tuple(p.endswith("*") for p in parts), topic, weight, phrase)


def _damp(count: int) -> float:
    """Repeats count less and less: 1, 1.69, 2.10, ..."""
    return 1.0 + math.log(count) if count > 0 else 0.0


class Grouper:
    """Places papers in the topics of one taxonomy; build once per run, then call place()."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        """Compile the keywords, the example index and the similarity profiles."""
        self.taxonomy = taxonomy
        self._codes = taxonomy.codes()
        self._exact: dict[str, list[_Keyword]] = {}
        self._prefixed: dict[str, list[_Keyword]] = {}
        for t, topic in enumerate(taxonomy.topics):
            for raw in topic.keywords:
                kw = _compile_keyword(raw, t)
                index = self._prefixed if kw.prefix[0] else self._exact
                index.setdefault(kw.words[0], []).append(kw)
        self._prefix_lengths = sorted({len(w) for w in self._prefixed})
        self._examples: dict[str, int] = {}
        for t, topic in enumerate(taxonomy.topics):
            for title in topic.examples:
                self._examples.setdefault(normalise_title(title), t)
        self._stems: dict[str, str] = {}
        self._idf, self._profiles = self._build_profiles(taxonomy)

    # -- similarity profiles

    def _stem_terms(self, tokens: Iterable[str]) -> list[str]:
        out = []
        stems = self._stems
        for token in tokens:
            if token in _STOPWORDS or len(token) < 2 or token.isdigit():
                continue
            stem = stems.get(token)
            if stem is None:
                stem = stems[token] = _stem(token)
            out.append(stem)
        return out

    def _build_profiles(
        self, taxonomy: Taxonomy
    ) -> tuple[dict[str, float], list[dict[str, float]]]:
        counts: list[Counter[str]] = []
        for topic in taxonomy.topics:
            text = [topic.title, topic.description]
            text += [parse_keyword(k)[0].replace("*", "") for k in topic.keywords]
            text += list(topic.examples)
            counts.append(Counter(self._stem_terms(_tokens(" ".join(text)))))
        n = len(counts)
        df = Counter(term for c in counts for term in c)
        idf = {term: math.log(1.0 + n / d) for term, d in df.items()}
        profiles = []
        for c in counts:
            vector = {term: (1.0 + math.log(tf)) * idf[term] for term, tf in c.items()}
            norm = math.sqrt(sum(v * v for v in vector.values())) or 1.0
            profiles.append({term: v / norm for term, v in vector.items()})
        return idf, profiles

    # -- scoring

    def _keyword_hits(self, tokens: Sequence[str]) -> Counter[_Keyword]:
        hits: Counter[_Keyword] = Counter()
        exact, prefixed, lengths = self._exact, self._prefixed, self._prefix_lengths
        for i, token in enumerate(tokens):
            for kw in exact.get(token, ()):
                if kw.matches_at(tokens, i):
                    hits[kw] += 1
            for length in lengths:
                if length > len(token):
                    break
                for kw in prefixed.get(token[:length], ()):
                    if kw.matches_at(tokens, i):
                        hits[kw] += 1
        return hits

    def _similarity(self, title: list[str], abstract: list[str]) -> tuple[list[float], list[dict[str, float]]]:
        """Cosine of the paper to each profile, and per topic the terms that contributed."""
        tf: Counter[str] = Counter(self._stem_terms(abstract))
        for term in self._stem_terms(title):
            tf[term] += 2
        idf = self._idf
        vector = {t: (1.0 + math.log(c)) * idf[t] for t, c in tf.items() if t in idf}
        norm = math.sqrt(sum(v * v for v in vector.values())) or 1.0
        sims: list[float] = []
        parts: list[dict[str, float]] = []
        for profile in self._profiles:
            contrib = {t: v * profile[t] / norm for t, v in vector.items() if t in profile}
            sims.append(sum(contrib.values()))
            parts.append(contrib)
        return sims, parts

    def scores(self, paper: Paper) -> _Scores:
        """Every topic's score for ``paper``, its title evidence and its reasons."""
        n = len(self._codes)
        scored = _Scores([0.0] * n, [0.0] * n, [[] for _ in range(n)])
        title = _tokens(paper.title)
        abstract = _tokens(paper.abstract)
        in_title = self._keyword_hits(title)
        in_abstract = self._keyword_hits(abstract)
        for kw in in_title.keys() | in_abstract.keys():
            t_count, a_count = in_title[kw], in_abstract[kw]
            t_value = kw.weight * TITLE_WEIGHT if t_count else 0.0
            value = t_value + kw.weight * _damp(a_count)
            scored.totals[kw.topic] += value
            scored.title[kw.topic] += t_value
            where = ("title" if t_count else "") + ("+" if t_count and a_count else "")
            where += ("abstract" if a_count else "") + (f" ×{a_count}" if a_count > 1 else "")
            scored.reasons[kw.topic].append((value, f'"{kw.text}" ({where})'))
        sims, parts = self._similarity(title, abstract)
        for t, sim in enumerate(sims):
            value = SIMILARITY_WEIGHT * sim
            if value <= 0:
                continue
            scored.totals[t] += value
            top = sorted(parts[t].items(), key=lambda kv: -kv[1])[:3]
            words = ", ".join(term for term, _ in top)
            scored.reasons[t].append((value, f"close to the topic's description and examples ({words})"))
        return scored

    def _decide(self, s: _Scores) -> tuple[int, str | None]:
        """The winning topic index and, if a tie-break rule chose it, a note saying so.

        The highest total wins, then the taxonomy's tie-break rules apply as ordered checks:
        a topic with strong title evidence (``RULE_MIN_TITLE``) and at least ``RULE_RATIO`` of
        the winner's total takes over if it lists the winner in ``wins_over``.
        """
        ranked = sorted(range(len(s.totals)), key=lambda t: -s.totals[t])
        best = ranked[0]
        note = None
        seen = {best}
        changed = True
        while changed:
            changed = False
            for t in ranked:
                if (
                    t not in seen
                    and s.title[t] >= RULE_MIN_TITLE
                    and s.totals[t] >= RULE_RATIO * s.totals[best]
                    and self._codes[best] in self.taxonomy.topics[t].wins_over
                ):
                    note = f"tie-break: {self._codes[t]} wins over {self._codes[best]}"
                    best = t
                    seen.add(t)
                    changed = True
                    break
        return best, note

    def place(self, paper: Paper) -> Placement:
        """Choose the paper's topic, with the evidence that decided it and the runner-up."""
        s = self.scores(paper)
        if not s.totals:
            return Placement(topic=OTHER_CODE, score=0.0, evidence=("the taxonomy has no topics",))
        example = self._examples.get(normalise_title(paper.title))
        if example is not None:
            best, note = example, f"listed as an example of {self._codes[example]!r}"
        elif max(s.totals) < OTHER_THRESHOLD:
            runner = max(range(len(s.totals)), key=lambda t: s.totals[t])
            return Placement(
                topic=OTHER_CODE,
                score=0.0,
                evidence=("no topic matched strongly enough",),
                runner_up=self._codes[runner] if s.totals[runner] > 0 else None,
                runner_up_score=round(s.totals[runner], 3),
            )
        else:
            best, note = self._decide(s)
        others = [t for t in range(len(s.totals)) if t != best]
        runner = max(others, key=lambda t: s.totals[t]) if others else None
        reasons = [text for _, text in sorted(s.reasons[best], key=lambda r: -r[0])]
        evidence = ([note] if note else []) + reasons[:MAX_EVIDENCE]
        return Placement(
            topic=self._codes[best],
            score=round(s.totals[best], 3),
            evidence=tuple(evidence),
            runner_up=self._codes[runner] if runner is not None else None,
            runner_up_score=round(s.totals[runner], 3) if runner is not None else 0.0,
        )


@dataclass(slots=True)
class _Scores:
    """One paper's scores: per topic the total, the part from title keywords, the reasons."""

    totals: list[float]
    title: list[float]
    reasons: list[list[tuple[float, str]]]


# --------------------------------------------------------------------------- grouping


def _sort_key(order: str) -> Any:
    if order == "source":
        return lambda p: p.position
    return lambda p: (-(p.upvotes if p.upvotes is not None else -1), p.position)


def group_papers(
    papers: Sequence[Paper], grouper: Grouper, *, order: str = "source"
) -> tuple[tuple[TopicGroup, ...], dict[str, Placement]]:
    """Group papers by topic: taxonomy order, then "Other"; empty groups left out.

    ``order`` ranks papers inside a group: "source" (their rank in the source) or "upvotes"
    (most upvoted first, ties and papers without upvotes by source rank).
    """
    if order not in ORDERS:
        raise ConfigError(f"unknown topic order {order!r}", hint=f"use one of: {', '.join(ORDERS)}")
    placements: dict[str, Placement] = {}
    members: dict[str, list[Paper]] = {}
    for paper in papers:
        placement = grouper.place(paper)
        placements[paper.key] = placement
        members.setdefault(placement.topic, []).append(paper)
    key = _sort_key(order)
    groups = []
    sections = [(t.code, t.title, t.description) for t in grouper.taxonomy.topics]
    sections.append((OTHER_CODE, OTHER_TITLE, "Papers that fit none of the topics."))
    for code, title, description in sections:
        if members.get(code):
            ranked = tuple(sorted(members[code], key=key))
            groups.append(TopicGroup(code=code, title=title, papers=ranked, description=description))
    return tuple(groups), placements

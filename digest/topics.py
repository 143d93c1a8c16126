"""Topic config and the grouper: every new paper gets exactly one topic, or "Other".

The taxonomy is a TOML file (``config/topics.toml``); each topic has a code, a title, a
description, weighted keywords, example titles and tie-break rules.  :class:`Grouper` scores
a paper against every topic from the taxonomy alone (nothing is trained on labels):

* keyword hits: each keyword (a word or phrase, ``*`` for a prefix, ``^N`` for a weight)
  found in the title counts ``TITLE_WEIGHT`` times its weight, in the abstract its weight,
  damped logarithmically for repeats;
* similarity: TF-IDF cosine between the paper and a profile of each topic made of its title,
  description, keywords and examples.  The IDF also counts the shipped default taxonomy as
  background, so words common to all ML papers weigh little even in a custom taxonomy;
* tie-break rules: a topic named clearly in the title beats the topics it lists in
  ``wins_over`` (the labelling guide's ordered rules, as data).

A paper whose title is listed among a topic's examples goes to that topic.  A paper whose best
score stays under ``OTHER_THRESHOLD`` goes to "Other".  Each placement carries the words that
decided it and the runner-up topic.
"""

from __future__ import annotations

import csv
import functools
import math
import re
import tomllib
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from digest.errors import ConfigError
from digest.fileio import write_atomic
from digest.identity import normalise_title
from digest.models import Paper, Placement, TopicGroup

OTHER_CODE = "other"
OTHER_TITLE = "Other"
ORDERS = ("source", "upvotes")

#: A keyword in the title counts this many times its weight.
TITLE_WEIGHT = 6.0
#: The cosine similarity to a topic's profile is scaled by this before it joins keyword scores.
SIMILARITY_WEIGHT = 15.0
#: A paper whose best topic scores below this goes to "Other".
OTHER_THRESHOLD = 1.0
#: A tie-break rule (``wins_over``) needs this much title evidence ...
RULE_MIN_TITLE = 18.0
#: ... and this share of the current winner's total.
RULE_RATIO = 0.3
#: How many pieces of evidence a placement lists.
MAX_EVIDENCE = 4
_MAX_KNOWN_WORDS = 500_000

_CODE = re.compile(r"^[a-z0-9_-]+$")
_WORD = re.compile(r"[^\W_]+")
_KEYWORD_TOKEN = re.compile(r"[^\W_]+\*?")
# ASCII text splits faster with str.translate than with a regex.
_ASCII_GAPS = str.maketrans({c: " " for c in map(chr, range(128)) if not c.isalnum()})
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


def configured_taxonomy(file: Path | None) -> Taxonomy:
    """The taxonomy of ``[topics] file``, or the shipped default when none is set."""
    return load_taxonomy(file or default_taxonomy_path())


def default_taxonomy_path() -> Path:
    """The shipped ``topics.toml``: inside an installed wheel, else in the source checkout."""
    here = Path(__file__).resolve().parent
    packaged = here / "_data" / "config" / "topics.toml"
    if packaged.is_file():
        return packaged
    return here.parent / "config" / "topics.toml"


@functools.lru_cache(maxsize=4096)  # the check, the keyword index and the profiles each read every keyword
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
    """Read and check a topics file; ConfigError naming the file and key on any problem.

    The config check, the pipeline and the grouper's background vocabulary all ask for it: a
    file unchanged since its last parse (same mtime and size) is not parsed again.
    """
    try:
        stat = path.stat()
    except OSError:
        return _parse_taxonomy(path)  # reports the problem
    return _parse_taxonomy_cached(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _parse_taxonomy_cached(path: Path, mtime_ns: int, size: int) -> Taxonomy:
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


def _words(text: str) -> list[str]:
    """The words of ``text``, case-folded: runs of letters and digits."""
    if text.isascii():
        return text.lower().translate(_ASCII_GAPS).split()
    return _WORD.findall(_fold(text))


def _singular(token: str) -> str:
    """Drop a plural ending: "caches" -> "cache", "studies" -> "study"."""
    if len(token) > 3 and token.endswith("s") and not token.endswith(("ss", "us", "is")):
        if token.endswith("ies") and len(token) > 4:
            return token[:-3] + "y"
        return token[:-1]
    return token


_SUFFIXES = ("ations", "ation", "ings", "ing", "ers", "er",
             "ed", "ive", "ly", "al", "e")
_SUFFIXES_BY_LAST_LETTER: dict[str, tuple[str, ...]] = {}
for _suffix in _SUFFIXES:
    _SUFFIXES_BY_LAST_LETTER[_suffix[-1]] = _SUFFIXES_BY_LAST_LETTER.get(_suffix[-1], ()) + (_suffix,)


def _stem(token: str) -> str:
    """A crude stem for the similarity profiles: "pruning", "pruned", "prune" -> "prun"."""
    for suffix in _SUFFIXES_BY_LAST_LETTER.get(token[-1:], ()):
        if token.endswith(suffix) and len(token) - len(suffix) >= 4:
            return token[: -len(suffix)]
    return token


def _term(token: str) -> str:
    """The similarity term of a token: its stem, or "" for a stopword or a number."""
    if token in _STOPWORDS or len(token) < 2 or token.isdigit():
        return ""
    return _stem(token)


# --------------------------------------------------------------------------- the grouper


def _background_topics() -> tuple[Topic, ...]:
    """The default taxonomy's topics, which tell the similarity which words are common in
    ML papers (none if the default file is missing)."""
    try:
        return load_taxonomy(default_taxonomy_path()).topics
    except ConfigError:
        return ()


@dataclass(frozen=True, slots=True)
class _Keyword:
    """One compiled keyword: its words (``prefix[k]``: word k ends in '*') and weight."""

    words: tuple[str, ...]
    prefix: tuple[bool, ...]
    topic: int
    weight: float
    text: str

    def matches_at(self, tokens: Sequence[str], i: int) -> bool:
        """Whether the keyword's words after the first match the tokens after position ``i``."""
        if i + len(self.words) > len(tokens):
            return False
        for k in range(1, len(self.words)):
            token, word = tokens[i + k], self.words[k]
            if not (token.startswith(word) if self.prefix[k] else token == word):
                return False
        return True


def _compile_keyword(raw: str, topic: int) -> _Keyword:
    phrase, weight = parse_keyword(raw)
    parts = _KEYWORD_TOKEN.findall(_fold(phrase))
    words = tuple(p.rstrip("*") if p.endswith("*") else _singular(p) for p in parts)
    return _Keyword(words, tuple(p.endswith("*") for p in parts), topic, weight, phrase)


_DAMPED = [0.0] + [1.0 + math.log(c) for c in range(1, 64)]


def _damp(count: int) -> float:
    """Repeats count less and less: 1, 1.69, 2.10, ..."""
    return _DAMPED[count] if count < 64 else 1.0 + math.log(count)


class Grouper:
    """Places papers in the topics of one taxonomy; build once per run, then call place()."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        """Compile the keywords, the example index and the similarity profiles."""
        self.taxonomy = taxonomy
        self._codes = taxonomy.codes()
        self._keywords = [
            _compile_keyword(raw, t)
            for t, topic in enumerate(taxonomy.topics)
            for raw in topic.keywords
        ]
        # Where to look keywords up: phrases by their first two words when both are whole
        # words ("kv cache"), the others by their first word, whole or prefix ("quantiz*").
        self._bigrams: dict[tuple[str, str], list[int]] = {}
        self._exact: dict[str, list[int]] = {}
        self._prefixed: dict[str, list[int]] = {}
        for k, kw in enumerate(self._keywords):
            if len(kw.words) > 1 and not kw.prefix[0] and not kw.prefix[1]:
                self._bigrams.setdefault((kw.words[0], kw.words[1]), []).append(k)
            else:
                index = self._prefixed if kw.prefix[0] else self._exact
                index.setdefault(kw.words[0], []).append(k)
        self._prefix_lengths = sorted({len(p) for p in self._prefixed})
        self._keyword_topic = [kw.topic for kw in self._keywords]
        self._keyword_weight = [kw.weight for kw in self._keywords]
        self._examples: dict[str, int] = {}
        for t, topic in enumerate(taxonomy.topics):
            for title in topic.examples:
                self._examples.setdefault(normalise_title(title), t)
        self._idf, self._index, self._unknown_idf = self._build_profiles(taxonomy)
        self._forget_words()

    # -- words

    def _forget_words(self) -> None:
        """Empty the cache of what is known about each distinct word (filled by _learn)."""
        self._token_of: dict[str, str] = {}  # word as written -> token (plural dropped)
        self._learned: set[str] = set()  # the tokens learned so far
        # What each token means (only tokens that mean something are keys):
        self._singles_of: dict[str, tuple[int, ...]] = {}  # -> the one-word keywords it is
        self._phrases_of: dict[str, tuple[int, ...]] = {}  # -> phrases it starts, not by bigram
        self._term_of: dict[str, str] = {}  # -> its term, if some profile has it
        self._unknown: set[str] = set()  # content tokens no profile has

    def _learn(self, raw: str) -> str:
        """Work out what the word ``raw`` means for the keywords and the profiles; its token."""
        token = self._token_of[raw] = _singular(raw)
        if token in self._learned:
            return token  # another spelling ("caches") of a token already learned ("cache")
        self._learned.add(token)
        term = _term(token)
        if term in self._idf:
            self._term_of[token] = term
        elif term:
            self._unknown.add(token)
        starts = self._exact.get(token, [])
        for length in self._prefix_lengths:
            if length > len(token):
                break
            if token[:length] in self._prefixed:
                starts = starts + self._prefixed[token[:length]]
        singles = tuple(k for k in starts if len(self._keywords[k].words) == 1)
        phrases = tuple(k for k in starts if len(self._keywords[k].words) > 1)
        if singles:
            self._singles_of[token] = singles
        if phrases:
            self._phrases_of[token] = phrases
        return token

    # -- similarity profiles

    def _build_profiles(
        self, taxonomy: Taxonomy
    ) -> tuple[dict[str, float], dict[str, tuple[tuple[int, float], ...]], float]:
        """The IDF of each term, each topic's TF-IDF profile inverted (term -> [(topic,
        weight)]) and the IDF of a term no profile has."""
        def profile(topic: Topic) -> Counter[str]:
            text = [topic.title, topic.description]
            text += [parse_keyword(k)[0].replace("*", "") for k in topic.keywords]
            text += list(topic.examples)
            terms = (_term(_singular(w)) for w in _words(" ".join(text)))
            return Counter(t for t in terms if t)
        counts = [profile(t) for t in taxonomy.topics]
        # The background is the default taxonomy, often the configured one: its equal topics
        # are not profiled twice.
        known = dict(zip(taxonomy.topics, counts))
        docs = counts + [known.get(t) or profile(t) for t in _background_topics()]
        n = len(docs)
        df = Counter(term for c in docs for term in c)
        idf = {term: math.log(1.0 + n / d) for term, d in df.items()}
        index: dict[str, list[tuple[int, float]]] = {}
        for t, c in enumerate(counts):
            vector = {term: (1.0 + math.log(tf)) * idf[term] for term, tf in c.items()}
            norm = math.sqrt(sum(v * v for v in vector.values())) or 1.0
            for term, v in vector.items():
                index.setdefault(term, []).append((t, v / norm))
        return idf, {term: tuple(postings) for term, postings in index.items()}, math.log(1.0 + n)

    # -- scoring

    def _read(self, text: str, times: int = 1) -> _Text:
        """Count the keywords and the profile terms of one text (whose words count ``times``)."""
        token_of = self._token_of
        if len(token_of) > _MAX_KNOWN_WORDS:  # a long-lived grouper: start the cache afresh
            self._forget_words()
            token_of = self._token_of
        tokens = [token_of.get(raw) or self._learn(raw) for raw in _words(text)]
        counts = Counter(tokens)
        hits: dict[int, int] = {}
        singles_of = self._singles_of
        for token in counts.keys() & singles_of.keys():
            for k in singles_of[token]:
                hits[k] = hits.get(k, 0) + counts[token]
        terms: dict[str, int] = {}
        term_of = self._term_of
        for token in counts.keys() & term_of.keys():
            terms[term_of[token]] = terms.get(term_of[token], 0) + counts[token]
        # Content words no profile has lengthen the paper's vector (see _similarity).
        other = len(counts.keys() & self._unknown) * _damp(times) ** 2
        # Phrases need word order: look up each pair of neighbours, then check longer phrases;
        # phrases whose first or second word is a prefix ("generat* image") are checked where
        # their first word occurs.
        bigrams, keywords = self._bigrams, self._keywords
        for i in [i for i, pair in enumerate(zip(tokens, tokens[1:])) if pair in bigrams]:
            for k in bigrams[tokens[i], tokens[i + 1]]:
                if len(keywords[k].words) == 2 or keywords[k].matches_at(tokens, i):
                    hits[k] = hits.get(k, 0) + 1
        phrases_of = self._phrases_of
        if counts.keys() & phrases_of.keys():
            for i in [i for i, token in enumerate(tokens) if token in phrases_of]:
                for k in phrases_of[tokens[i]]:
                    if keywords[k].matches_at(tokens, i):
                        hits[k] = hits.get(k, 0) + 1
        return _Text(hits, terms, other)

    def _similarity(self, title: _Text, abstract: _Text) -> tuple[list[float], dict[str, float], float]:
        """Cosine of the paper to each topic profile; the paper's TF-IDF terms and their norm.

        Title words count three times.  The IDF comes from the topic profiles plus, as
        background, the default taxonomy's: a word every topic uses weighs little.  Words no
        profile knows still lengthen the paper's vector (as if each occurred once): a paper
        mostly about something else is close to no topic.
        """
        tf = abstract.terms.copy()
        for term, count in title.terms.items():
            tf[term] = tf.get(term, 0) + 3 * count
        idf, index = self._idf, self._index
        sims = [0.0] * len(self._codes)
        vector: dict[str, float] = {}
        norm2 = (abstract.unknown + title.unknown) * self._unknown_idf**2
        for term, count in tf.items():
            v = vector[term] = (1.0 + math.log(count)) * idf[term]
            norm2 += v * v
            for t, weight in index.get(term, ()):
                sims[t] += v * weight
        norm = math.sqrt(norm2) or 1.0
        return [x / norm for x in sims], vector, norm

    def _scores(self, paper: Paper) -> _Scores:
        """Every topic's score for ``paper``, the part of it from the title, and its parts."""
        n = len(self._codes)
        title = self._read(paper.title, times=3)
        abstract = self._read(paper.abstract)
        totals = [0.0] * n
        from_title = [0.0] * n
        topic_of, weight_of = self._keyword_topic, self._keyword_weight
        for k, count in abstract.hits.items():
            totals[topic_of[k]] += weight_of[k] * _damp(count)
        for k in title.hits:
            value = weight_of[k] * TITLE_WEIGHT
            totals[topic_of[k]] += value
            from_title[topic_of[k]] += value
        sims, vector, norm = self._similarity(title, abstract)
        for t, sim in enumerate(sims):
            totals[t] += SIMILARITY_WEIGHT * sim
        return _Scores(totals, from_title, title.hits, abstract.hits, sims, vector, norm)

    def _reasons(self, s: _Scores, t: int) -> list[str]:
        """Topic ``t``'s evidence as text, strongest first."""
        reasons: list[tuple[float, str]] = []
        for k in s.title_hits.keys() | s.abstract_hits.keys():
            if self._keyword_topic[k] != t:
                continue
            t_count, a_count = s.title_hits.get(k, 0), s.abstract_hits.get(k, 0)
            value = self._keyword_weight[k] * ((TITLE_WEIGHT if t_count else 0.0) + _damp(a_count))
            where = ("title" if t_count else "") + ("+" if t_count and a_count else "")
            where += ("abstract" if a_count else "") + (f" ×{a_count}" if a_count > 1 else "")
            reasons.append((value, f'"{self._keywords[k].text}" ({where})'))
        if s.similarity[t] > 0:
            shares = [
                (v * weight, term)
                for term, v in s.vector.items()
                for topic, weight in self._index.get(term, ())
                if topic == t
            ]
            words = ", ".join(term for _, term in sorted(shares, reverse=True)[:3])
            reasons.append(
                (SIMILARITY_WEIGHT * s.similarity[t], f"close to the topic's description and examples ({words})")
            )
        reasons.sort(key=lambda r: -r[0])
        return [text for value, text in reasons if value > 0]

    def _decide(self, s: _Scores, ranked: list[int]) -> tuple[int, str | None]:
        """The winning topic index and, if a tie-break rule chose it, a note saying so.

        The highest total wins, then the taxonomy's tie-break rules apply as ordered checks:
        a topic with strong title evidence (``RULE_MIN_TITLE``) and at least ``RULE_RATIO`` of
        the winner's total takes over if it lists the winner in ``wins_over``.
        """
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
        s = self._scores(paper)
        ranked = sorted(range(len(s.totals)), key=lambda t: -s.totals[t])
        example = self._examples.get(normalise_title(paper.title))
        note: str | None
        if example is not None:
            best, note = example, f"listed as an example of {self._codes[example]!r}"
        elif not ranked or s.totals[ranked[0]] < OTHER_THRESHOLD:
            nearest = ranked[0] if ranked and s.totals[ranked[0]] > 0 else None
            return Placement(
                topic=OTHER_CODE,
                score=0.0,
                evidence=("no topic matched strongly enough",),
                runner_up=self._codes[nearest] if nearest is not None else None,
                runner_up_score=round(s.totals[nearest], 3) if nearest is not None else 0.0,
            )
        else:
            best, note = self._decide(s, ranked)
        runner = next((t for t in ranked if t != best), None)
        evidence = ([note] if note else []) + self._reasons(s, best)[:MAX_EVIDENCE]
        return Placement(
            topic=self._codes[best],
            score=round(s.totals[best], 3),
            evidence=tuple(evidence),
            runner_up=self._codes[runner] if runner is not None else None,
            runner_up_score=round(s.totals[runner], 3) if runner is not None else 0.0,
        )


@dataclass(slots=True)
class _Text:
    """What one text (a title or an abstract) holds: keyword hits by keyword index, counts of
    profile terms, and how many other content words."""

    hits: dict[int, int]
    terms: dict[str, int]
    unknown: float  # the squared length the other content words add to the TF vector


@dataclass(slots=True)
class _Scores:
    """One paper's scores, per topic: the total, the part from title keywords, and the parts.

    ``title_hits``/``abstract_hits``: keyword index -> count; ``similarity``: the cosine to
    each topic's profile; ``vector`` and ``norm``: the paper's TF-IDF terms, to tell which
    terms made the similarity.
    """

    totals: list[float]
    title: list[float]
    title_hits: dict[int, int]
    abstract_hits: dict[int, int]
    similarity: list[float]
    vector: dict[str, float]
    norm: float


# --------------------------------------------------------------------------- grouping


def _rank_in_group(order: str) -> Callable[[Paper], tuple[int, int]]:
    """The sort key for ``order``: source rank, or upvotes (descending, none last) then rank."""
    if order == "source":
        return lambda p: (0, p.position)
    return lambda p: (-(p.upvotes if p.upvotes is not None else -1), p.position)


def explain(paper: Paper, placement: Placement, taxonomy: Taxonomy) -> str:
    """Why a paper went where it went, in three lines: the paper, its topic and runner-up, the evidence."""
    runner = f" (runner-up: {taxonomy.title_of(placement.runner_up)})" if placement.runner_up else ""
    evidence = "; ".join(placement.evidence) or "nothing matched"
    return f"{' '.join(paper.title.split())}\n  -> {taxonomy.title_of(placement.topic)}{runner}\n     {evidence}"


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
    key = _rank_in_group(order)
    groups = []
    sections = [(t.code, t.title, t.description) for t in grouper.taxonomy.topics]
    sections.append((OTHER_CODE, OTHER_TITLE, "Papers that fit none of the topics."))
    for code, title, description in sections:
        if members.get(code):
            ranked = tuple(sorted(members[code], key=key))
            groups.append(TopicGroup(code=code, title=title, papers=ranked, description=description))
    return tuple(groups), placements


# --------------------------------------------------------------------------- teaching


def add_example(path: Path, topic: str, title: str) -> None:
    """Append ``title`` to ``topic``'s examples in the topics file, keeping the rest of its text.

    The edit is checked by parsing the result before the file is replaced.  ConfigError if the
    topic is unknown, the title is an example of another topic, or the file cannot be edited.
    """
    title = " ".join(title.split())
    if not title:
        raise ConfigError(f"{path}: an example needs a title")
    taxonomy = load_taxonomy(path)
    codes = taxonomy.codes()
    if topic not in codes:
        raise ConfigError(
            f"{path}: no topic {topic!r}", hint=f"topics in this file: {', '.join(codes)}"
        )
    key = normalise_title(title)
    for other in taxonomy.topics:
        if any(normalise_title(e) == key for e in other.examples):
            if other.code == topic:
                return
            raise ConfigError(
                f"{path}: {title!r} is already an example of {other.code!r}",
                hint=f"remove it from {other.code!r} first",
            )
    text = path.read_text(encoding="utf-8")
    edited = _append_example(text, codes.index(topic), title, path)
    expected = tomllib.loads(text)
    expected["topics"][codes.index(topic)].setdefault("examples", []).append(title)
    try:
        ok = tomllib.loads(edited) == expected
    except tomllib.TOMLDecodeError:
        ok = False
    if not ok:
        raise ConfigError(
            f"{path}: topics[{codes.index(topic)}].examples: cannot add the example to this layout",
            hint="add the title to the topic's examples list by hand",
        )
    write_atomic(path, edited)


def _append_example(text: str, index: int, title: str, path: Path) -> str:
    """The text with ``title`` added to the examples of the ``index``-th [[topics]] table."""
    headers = [m.start() for m in re.finditer(r"(?m)^[ \t]*\[\[[ \t]*topics[ \t]*\]\]", text)]
    if len(headers) <= index:
        raise ConfigError(
            f"{path}: topics[{index}]: cannot edit this file's layout",
            hint="write each topic as a [[topics]] table, then add the example again",
        )
    start = headers[index]
    after_header = text.index("\n", start) + 1 if "\n" in text[start:] else len(text)
    next_table = re.compile(r"(?m)^[ \t]*\[").search(text, after_header)
    end = next_table.start() if next_table else len(text)
    item = _toml_string(title)
    found = re.compile(r"(?m)^[ \t]*examples[ \t]*=[ \t]*\[").search(text, start, end)
    if found is None:
        # No examples key yet: add one after the table's last key line.
        body = text[start:end].rstrip()
        insert_at = start + len(body)
        return f"{text[:insert_at]}\nexamples = [{item}]{text[insert_at:]}"
    open_at = found.end() - 1
    close_at = _closing_bracket(text, open_at, path)
    inside = text[open_at + 1 : close_at]
    content = "".join(_code(line) for line in inside.split("\n")).strip()
    if "\n" not in inside:
        sep = "" if not content else ", " if not content.endswith(",") else " "
        new_inside = f"{inside.rstrip()}{sep}{item}" if content else item
        return text[: open_at + 1] + new_inside + text[close_at:]
    # A multi-line array: one item per line, indented like the others, before the "]" line.
    lines = inside.split("\n")
    indent = next(
        (line[: len(line) - len(line.lstrip())] for line in lines if line.strip() and not line.strip().startswith("#")),
        "    ",
    )
    last_item = max((i for i, line in enumerate(lines) if _code(line).strip()), default=None)
    if last_item is not None:
        line = lines[last_item]
        code_part = _code(line).rstrip()
        if not code_part.endswith(","):
            lines[last_item] = code_part + "," + line[len(code_part):]
        lines.insert(last_item + 1, f"{indent}{item},")
    else:
        lines.insert(1, f"{indent}{item},")
    return text[: open_at + 1] + "\n".join(lines) + text[close_at:]


def _toml_string(value: str) -> str:
    """``value`` as a TOML basic string."""
    out = ['"']
    for ch in value:
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _skip_string(text: str, i: int) -> int:
    """The position after the TOML string that starts at ``i``."""
    quote = text[i] * 3 if text.startswith(text[i] * 3, i) else text[i]
    j = i + len(quote)
    while j < len(text) and not text.startswith(quote, j):
        j += 2 if quote[0] == '"' and text[j] == "\\" else 1
    return j + len(quote)


def _code(line: str) -> str:
    """One line of TOML without its comment."""
    i = 0
    while i < len(line):
        if line[i] in "\"'":
            i = _skip_string(line, i)
        elif line[i] == "#":
            return line[:i]
        else:
            i += 1
    return line


def _closing_bracket(text: str, open_at: int, path: Path) -> int:
    """Position of the "]" closing the array opened at ``open_at`` (strings, comments skipped)."""
    depth, i = 0, open_at
    while i < len(text):
        ch = text[i]
        if ch in "\"'":
            i = _skip_string(text, i)
            continue
        if ch == "#":
            newline = text.find("\n", i)
            i = len(text) if newline < 0 else newline
            continue
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ConfigError(f"{path}: unterminated examples array")


# --------------------------------------------------------------------------- evaluation


@dataclass(frozen=True, slots=True)
class TopicScore:
    """How well one topic's placements agree with the labels."""

    code: str
    precision: float
    recall: float
    f1: float
    support: int  # labelled papers of this topic
    placed: int  # papers the grouper put in this topic


@dataclass(frozen=True, slots=True)
class Miss:
    """A labelled paper the grouper placed elsewhere."""

    title: str
    label: str
    placed: str
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class EvalReport:
    """The grouper measured against hand labels.

    ``confusion[i][j]`` counts papers labelled ``codes[i]`` and placed in ``codes[j]``;
    ``macro_f1`` averages F1 over the topics that occur in the labels; ``other_share`` is the
    share of labelled papers placed in "Other".
    """

    n: int
    accuracy: float
    macro_f1: float
    other_share: float
    topics: tuple[TopicScore, ...]
    codes: tuple[str, ...]
    confusion: tuple[tuple[int, ...], ...]
    unmatched: tuple[str, ...]
    misses: tuple[Miss, ...]


def read_labels(path: Path) -> list[tuple[str, str, tuple[str, ...]]]:
    """The rows of a labels TSV (title<TAB>topic[<TAB>more...], with a header): (title, topic, rest)."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read labels: {exc.strerror or exc}") from None
    labels = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            raise ConfigError(f"{path}:{line}: expected title<TAB>topic")
        labels.append((row[0].strip(), row[1].strip(), tuple(row[2:])))
    return labels


def label_snapshot_files(path: Path) -> tuple[Path, ...]:
    """The snapshot files a labels TSV names in its third column, resolved against the
    ``seeds`` folder beside the labels' folder (``topics/labels.tsv`` -> ``seeds/<file>``)."""
    seeds = path.resolve().parent.parent / "seeds"
    names = dict.fromkeys(rest[0].strip() for _, _, rest in read_labels(path) if rest and rest[0].strip())
    return tuple(seeds / name for name in names)


def evaluate(labels: Path, papers: Sequence[Paper], grouper: Grouper) -> EvalReport:
    """Place the labelled papers (matched by normalised title) and compare with the labels."""
    by_title: dict[str, Paper] = {}
    for paper in papers:
        by_title.setdefault(normalise_title(paper.title), paper)
    gold: list[str] = []
    placed: list[str] = []
    misses: list[Miss] = []
    unmatched: list[str] = []
    seen: set[str] = set()
    for title, label, _ in read_labels(labels):
        key = normalise_title(title)
        if key in seen:
            continue
        seen.add(key)
        found = by_title.get(key)
        if found is None:
            unmatched.append(title)
            continue
        placement = grouper.place(found)
        gold.append(label)
        placed.append(placement.topic)
        if placement.topic != label:
            misses.append(Miss(found.title, label, placement.topic, placement.evidence))
    known = grouper.taxonomy.codes()
    extra = sorted(set(gold) - set(known) - {OTHER_CODE})
    codes = known + tuple(extra) + (OTHER_CODE,)
    position = {code: i for i, code in enumerate(codes)}
    confusion = [[0] * len(codes) for _ in codes]
    for g, p in zip(gold, placed):
        confusion[position[g]][position[p]] += 1
    scores = []
    for i, code in enumerate(codes):
        support = sum(confusion[i])
        n_placed = sum(row[i] for row in confusion)
        if not support and not n_placed:
            continue
        hit = confusion[i][i]
        precision = hit / n_placed if n_placed else 0.0
        recall = hit / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        scores.append(TopicScore(code, precision, recall, f1, support, n_placed))
    n = len(gold)
    labelled = [s for s in scores if s.support]
    return EvalReport(
        n=n,
        accuracy=sum(g == p for g, p in zip(gold, placed)) / n if n else 0.0,
        macro_f1=sum(s.f1 for s in labelled) / len(labelled) if labelled else 0.0,
        other_share=placed.count(OTHER_CODE) / n if n else 0.0,
        topics=tuple(scores),
        codes=codes,
        confusion=tuple(tuple(row) for row in confusion),
        unmatched=tuple(unmatched),
        misses=tuple(misses),
    )


def format_report(report: EvalReport, *, misses: int = 0) -> str:
    """The report as a text table: totals, per-topic scores, the confusion matrix and,
    if ``misses`` > 0, that many misplaced papers with the evidence that misled the grouper."""
    lines = [
        f"{report.n} labelled papers"
        + (f" ({len(report.unmatched)} labels matched no paper)" if report.unmatched else ""),
        f"accuracy {report.accuracy:.3f}   macro-F1 {report.macro_f1:.3f}   "
        f"Other {100 * report.other_share:.1f} %",
        "",
    ]
    width = max([len(c) for c in report.codes] + [5])
    lines.append(f"{'topic':<{width}}  precision  recall     f1  labelled  placed")
    for s in report.topics:
        lines.append(
            f"{s.code:<{width}}  {s.precision:9.3f}  {s.recall:6.3f}  {s.f1:5.3f}  {s.support:8d}  {s.placed:6d}"
        )
    used = [
        i
        for i, code in enumerate(report.codes)
        if sum(report.confusion[i]) or sum(row[i] for row in report.confusion)
    ]
    lines += ["", "confusion (rows: label, columns: placed, numbered as the rows)"]
    lines.append(" " * (width + 5) + "".join(f"{k + 1:>4}" for k in range(len(used))))
    for k, i in enumerate(used):
        cells = "".join(f"{report.confusion[i][j] or '.':>4}" for j in used)
        lines.append(f"{k + 1:>2}. {report.codes[i]:<{width}} {cells}")
    if report.unmatched:
        lines += ["", "labels that matched no paper:"] + [f"  {t}" for t in report.unmatched[:20]]
        if len(report.unmatched) > 20:
            lines.append(f"  ... and {len(report.unmatched) - 20} more")
    if misses and report.misses:
        lines += ["", f"misplaced papers (first {min(misses, len(report.misses))}):"]
        for m in report.misses[:misses]:
            lines.append(f"  {m.label} -> {m.placed}: {m.title}")
            if m.evidence:
                lines.append(f"      because: {'; '.join(m.evidence)}")
    return "\n".join(lines)

"""The grouper: every new paper gets exactly one topic of the taxonomy, or "Other".

It learns from what the topics file says: each topic's description and example titles
(inline and from ``examples_file``), the ``[other]`` table's description and examples of what
lies outside the taxonomy, the arXiv categories named per topic, optional keywords and
tie-break rules; and, unlabelled, from the papers of the shipped examples file, which say how
common each word is in the field.  Three kinds of evidence are weighed for each paper:

* **words**: a logistic regression over each topic's words and word pairs (see
  :mod:`digest.topics.model`), learned from its examples and description.  A paper's title
  is read three times with the start of its abstract: the title says what the paper
  contributes, the abstract mostly its context; the abstract's next sentences are read apart
  and count a quarter as much (they often name the setting: serving, training, a language);
* **meaning**: static word-piece vectors (see :mod:`digest.topics.embedding`) of the paper
  against the nearest examples of each topic, so a paper about "Hyena operators" finds the
  state-space examples without sharing a word with them;
* **arXiv categories**: a category a topic names (``audio``: ``eess.AS``) adds to it.

A description teaches twice: whole, and item by item.  "KV-cache management and eviction,
speculative and parallel decoding, early exit" lists three things a paper may be about, and
each phrase is an example of the topic of its own, so a taxonomy with a handful of examples
per topic is still taught every sub-area its descriptions name.  Words and word pieces are
weighed by how rare they are in the papers of the whole field (``BACKGROUND``: the shipped
examples read without their labels, beside the taxonomy's own), so a word every ML paper uses
("transformer", "efficient") decides nothing even when a few examples happen to use it for
one topic only.

"Other" is a class of its own, learned from the ``[other]`` examples, so a physics or
biology paper goes there because it looks like what lies outside, not only because no topic
is close.  Two more rules make Other an absolute answer: a paper whose primary arXiv category
is one of ``[other] categories`` is Other unless its text is clearly about the taxonomy's
subject (``ML_EVIDENCE`` or more), and a paper close to no topic at all is Other too.

Every placement carries its ``why``: the words and the nearest example that decided it, the
categories that counted, the runner-up, and how Other was decided.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from digest.errors import ConfigError
from digest.identity import normalise_title
from digest.models import Paper, Placement, TopicGroup
from digest.topics.embedding import StaticEmbeddings, shipped_embeddings
from digest.topics import cache, model
from digest.topics.model import Vectors, WordModel
from digest.topics.taxonomy import (
    OTHER_CODE,
    OTHER_TITLE,
    Example,
    Taxonomy,
    category_matches,
    default_taxonomy_path,
    examples_file_rows,
    fold,
    parse_keyword,
)

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

ORDERS = ("source", "upvotes")

#: The word model reads this many words of a paper's abstract with its title: the context.
ABSTRACT_WORDS = 80
#: ... then, apart, the title and this many words of the abstract after those: where a paper's
#: setting is often named ("a serving system", "for Indonesian", "distributed training") ...
REST_WORDS = 150
#: ... whose opinion (the word model's log-probabilities) counts this much beside the first.
REST_WEIGHT = 0.25
#: The meaning (static vectors) reads this many words of the abstract after the title.
MEANING_ABSTRACT_WORDS = 30
#: ... and this many of an example's abstract.
EXAMPLE_ABSTRACT_WORDS = 40
#: The descriptions and inline examples of the topics file weigh this many times a file example.
INLINE_WEIGHT = 3.0
#: How much the meaning (similarity to the nearest examples) adds to the word model's log-odds.
MEANING_WEIGHT = 8.0
#: The meaning of a topic: the mean similarity to its ``NEAREST`` closest examples.
NEAREST = 5
#: The example shown as nearest is chosen among this many closest in meaning.
NEAREST_SHOWN = 10
#: A category the topic names adds this much (the primary category counts in full, others half).
CATEGORY_BONUS = 1.5
#: A keyword of the topic found in the title adds this much, in the abstract a third of it.
KEYWORD_BONUS = 1.0
#: A tie-break rule (``wins_over``) applies when the rule's topic is at least this likely
#: relative to the winner (a ratio of probabilities).
RULE_RATIO = 0.5
#: The probability of "not Other" a paper filed under an Other category needs to stay in the
#: taxonomy (0.85: the invented arXiv day's papers outside computer science stay in Other as at
#: 0.9, and a clearly machine-learning text filed under physics alone stays out of it).
ML_EVIDENCE = 0.85
#: A paper of which the topics and their examples know fewer words than this share is Other.
MIN_KNOWN_WORDS = 0.15
#: A paper whose best meaning similarity is below this is close to no topic: Other.
MIN_FIT = 0.1
#: How many of the words that decided a placement it lists.
WORD_REASONS = 3
#: How many pieces of evidence a placement lists.
MAX_EVIDENCE = 4
#: Papers of the field, read without their labels, that every taxonomy's IDFs are counted over.
BACKGROUND = default_taxonomy_path().with_name("topics-examples.tsv")
#: A taxonomy that teaches itself (``Taxonomy.teaches_itself``: one with few examples) places
#: the background's papers, the ``SELF_TAUGHT`` surest of its placements in each class (largest
#: margin over the runner-up and Other, see ``_sureness``) become examples ...
SELF_TAUGHT = 300
#: ... that weigh this much each, and it learns again.
SELF_TAUGHT_WEIGHT = 1.0
#: What a row of the examples is (``_Model.example_kinds``): an example of the topics file,
#: an item of a description, a paper it taught itself with.
EXAMPLE_ROW, ITEM_ROW, SELF_TAUGHT_ROW = 0, 1, 2
#: Where a description's items end: commas, semicolons, colons, brackets, sentence ends.
_ITEM_BREAK = re.compile(r"[,;:()]|\.\s")
#: Abbreviations whose dot ends no item ("e.g. LoRA"; "etc." may end one, and is none itself),
#: and those that only introduce one.
_ABBREVIATION = re.compile(r"\b(?:e\.g|i\.e|vs|cf)\.", re.IGNORECASE)
_LEADING_ABBREVIATION = re.compile(r"^(?:e\.g|i\.e|cf)\b\s*", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class _Model:
    """What the grouper learned from a taxonomy (built once per Grouper)."""

    classes: tuple[str, ...]  # the topic codes, then "other"
    words: WordModel
    example_vectors: NDArray[np.float32]  # examples x dims, those of each class together
    members: tuple[slice, ...]  # per class: its examples' rows
    example_titles: tuple[str, ...]  # the examples the meaning sees, the descriptions' items, the self-taught
    example_kinds: NDArray[np.int8]  # per row: EXAMPLE, ITEM or SELF_TAUGHT
    description_vectors: NDArray[np.float32]  # classes x dims
    idf: NDArray[np.float32]
    listed: dict[str, str]  # normalised title of each listed example -> its topic


class Grouper:
    """Places papers in the topics of one taxonomy; build once per run, then call place()."""

    def __init__(
        self,
        taxonomy: Taxonomy,
        embeddings: StaticEmbeddings | None = None,
        background: Path | None = None,
        *,
        keep_learned: bool = True,
    ) -> None:
        """Read the taxonomy; what it teaches is learned on first use (see ``_model``), with
        the IDFs counted over ``background`` as well (``BACKGROUND`` unless given), and kept in
        the cache unless ``keep_learned`` is false."""
        self.taxonomy = taxonomy
        self._codes = taxonomy.codes()
        self._embeddings_given = embeddings
        self._background = background
        self._keep_learned = keep_learned
        self._learned: _Model | None = None
        self._title_words: dict[int, set[str]] = {}
        self._keywords = [_keyword_pattern(t.keywords) for t in taxonomy.topics]
        self._topic_categories = [t.categories for t in taxonomy.topics]

    @property
    def _model(self) -> _Model:
        """What the grouper learned: learned (or read from the cache) on first use, so a run
        with nothing new to place never pays for it."""
        if self._learned is None:
            self._learned = _model_of(self.taxonomy, self._embeddings, self._background, keep=self._keep_learned)
        return self._learned

    @property
    def _embeddings(self) -> StaticEmbeddings:
        """The vectors given, or the shipped ones (loaded once per process)."""
        return self._embeddings_given or shipped_embeddings()

    def place(self, paper: Paper) -> Placement:
        """Choose the paper's topic, with the evidence that decided it and the runner-up."""
        return self.place_all([paper])[0]

    def place_all(self, papers: Sequence[Paper]) -> list[Placement]:
        """Place many papers at once (the models read them in one pass)."""
        import numpy as np

        if not papers:
            return []
        m = self._model
        readings = [_readings(p) for p in papers]
        vectors = m.words.vectorise_words([first for _, first, _ in readings])
        rest = m.words.vectorise_words([later or [] for _, _, later in readings])
        # A paper whose abstract ends within the first reading (or has none) is read once.
        rest_weight = REST_WEIGHT * np.array([later is not None for _, _, later in readings])
        log_p = m.words.log_proba(vectors) + rest_weight[:, None] * m.words.log_proba(rest)
        meaning_vectors = self._embeddings.encode([_meaning_text(p) for p in papers], m.idf)
        sims = meaning_vectors @ m.example_vectors.T  # papers x examples
        # A class's meaning: its description, or the mean similarity to its nearest examples.
        meaning = (meaning_vectors @ m.description_vectors.T).astype(np.float64)
        for c, members in enumerate(m.members):
            # A class's rows are a slice, which numpy partitions without gathering the columns
            # first (half the time of placing the meaning).
            size = members.stop - members.start
            if size:
                k = min(NEAREST, size)
                nearest = np.partition(sims[:, members], size - k, axis=1)[:, -k:]
                meaning[:, c] = np.maximum(meaning[:, c], nearest.mean(axis=1))
        return [
            self._place_one(
                paper, _Reading(vectors, rest, float(rest_weight[i]), readings[i][0]), i, log_p[i], meaning[i], sims[i]
            )
            for i, paper in enumerate(papers)
        ]

    # -- one paper

    def _place_one(
        self,
        paper: Paper,
        read: _Reading,
        row: int,
        log_p: NDArray[np.float64],
        meaning: NDArray[np.float64],
        sims: NDArray[np.float32],
    ) -> Placement:
        import numpy as np

        m = self._model
        n_classes = len(m.classes)
        other = n_classes - 1
        totals = log_p + MEANING_WEIGHT * meaning
        notes: dict[int, list[str]] = {c: [] for c in range(n_classes)}
        for t, patterns in enumerate(self._topic_categories):
            bonus = _category_bonus(paper.categories, patterns)
            if bonus:
                totals[t] += bonus * CATEGORY_BONUS
                named = [c for c in paper.categories if any(category_matches(p, c) for p in patterns)]
                notes[t].append(f"arXiv category {', '.join(named)}")
        ml_listed = self._ml_cross_lists(paper.categories)
        if ml_listed:
            # A paper of another field that its authors also filed under an ML category says
            # it has machine learning in it: that counts against Other as much as a cross-list
            # counts for a topic.
            totals[other] -= 0.5 * CATEGORY_BONUS
            said = f"arXiv category {', '.join(ml_listed)} beside {paper.categories[0]}"
            for t, patterns in enumerate(self._topic_categories):
                if not any(category_matches(p, c) for c in ml_listed for p in patterns):
                    notes[t].append(said)
        for t, pattern in enumerate(self._keywords):
            if pattern is None:
                continue
            title_hits = pattern.findall(fold(paper.title))
            abstract_hits = pattern.findall(fold(paper.abstract))
            if title_hits or abstract_hits:
                totals[t] += KEYWORD_BONUS * (len(title_hits) + len(abstract_hits) / 3)
                found = sorted({f'"{w}"' for w in title_hits + abstract_hits})
                notes[t].append("keyword " + ", ".join(found))

        ranked = [int(c) for c in np.argsort(-totals)]
        listed = m.listed.get(normalise_title(paper.title))
        decided: str | None = None
        if listed is not None:
            best = m.classes.index(listed)
            decided = f"listed as an example of {listed!r}"
        else:
            best, decided = self._tie_break(totals, ranked)
        fit = _probability_not_other(totals, other)
        primary = paper.categories[0] if paper.categories else None
        outside = primary is not None and self._outside_by_category(paper.categories)
        if listed is None and best != other:
            nearest_fit = float(meaning[:other].max()) if other else 0.0
            if outside and fit < ML_EVIDENCE:
                decided = (
                    f"Other: primary arXiv category {primary} lies outside the topics and the text "
                    f"is not clearly within them (fit {fit:.2f} < {ML_EVIDENCE})"
                )
                best = other
            elif nearest_fit < MIN_FIT:
                decided = f"Other: close to no topic (best similarity {nearest_fit:.2f} < {MIN_FIT})"
                best = other
            elif read.first.known[row] < MIN_KNOWN_WORDS:
                decided = (
                    f"Other: shares almost no words with the topics and their examples "
                    f"({100 * read.first.known[row]:.0f} % of its words < {100 * MIN_KNOWN_WORDS:.0f} %)"
                )
                best = other
        elif best == other and listed is None:
            decided = f"Other: reads like papers outside the topics (fit to the topics {fit:.2f})"
            if outside:
                decided += f"; primary arXiv category {primary} lies outside them too"
        runner = next((c for c in ranked if c not in (best, other)), None)
        evidence = [decided] if decided else []
        evidence += notes[best]
        if runner is not None:
            evidence += self._word_reasons(read, row, best, runner)
        evidence += self._nearest_example(set(read.title), best, sims)
        return Placement(
            topic=m.classes[best],
            score=round(float(totals[best]), 3),
            evidence=tuple(evidence[: MAX_EVIDENCE + (1 if decided else 0)]),
            runner_up=m.classes[runner] if runner is not None else None,
            runner_up_score=round(float(totals[runner]), 3) if runner is not None else 0.0,
            fit=round(fit, 3),
        )

    def _nearest_example(self, title: set[str], c: int, sims: NDArray[np.float32]) -> list[str]:
        """The example of class ``c`` most like the paper (whose title has the words ``title``),
        as evidence: of the ``NEAREST_SHOWN`` closest in meaning, the one sharing most title
        words with it (none if ``c`` has none)."""
        import numpy as np

        m = self._model
        members = m.members[c]
        near = sims[members]
        if not near.size:
            return []
        if near.size > NEAREST_SHOWN:
            shown = np.argpartition(-near, NEAREST_SHOWN)[:NEAREST_SHOWN]
            closest = members.start + shown[np.argsort(-near[shown])]
        else:
            closest = members.start + np.argsort(-near)
        shared = [len(title & self._example_words(int(i))) for i in closest]
        nearest = int(closest[int(np.argmax(shared))])
        if m.example_kinds[nearest] == SELF_TAUGHT_ROW:
            return [f'near "{m.example_titles[nearest]}", a paper it placed here itself (self-taught)']
        if m.example_kinds[nearest] == ITEM_ROW:
            return [f'near "{m.example_titles[nearest]}" in the description']
        return [f'near the example "{m.example_titles[nearest]}"']

    def _example_words(self, i: int) -> set[str]:
        """The title words of example ``i`` (remembered: the same examples come up again and again)."""
        known = self._title_words.get(i)
        if known is None:
            known = self._title_words[i] = set(model.words(self._model.example_titles[i]))
        return known

    def _ml_cross_lists(self, categories: Sequence[str]) -> list[str]:
        """The ``[other] except_with`` categories a paper of an Other category is cross-listed
        to (none when its primary category, the paper's field, is not one of Other's)."""
        if not self._primary_is_other(categories):
            return []
        except_with = self.taxonomy.other.except_with
        listed = [c for c in categories[1:] if any(category_matches(p, c) for p in except_with)]
        return list(dict.fromkeys(listed))

    def _outside_by_category(self, categories: Sequence[str]) -> bool:
        """Whether the primary category is one that means Other, with no category of
        ``[other] except_with`` beside it (then the text decides)."""
        if not self._primary_is_other(categories):
            return False
        return not any(category_matches(p, c) for c in categories for p in self.taxonomy.other.except_with)

    def _primary_is_other(self, categories: Sequence[str]) -> bool:
        """Whether the paper's primary category is one of ``[other] categories``."""
        return bool(categories) and any(category_matches(p, categories[0]) for p in self.taxonomy.other.categories)

    def _word_reasons(self, read: _Reading, row: int, c: int, rival: int) -> list[str]:
        """The paper's words that speak most for class ``c`` over ``rival``, in both readings."""
        if c == rival:
            return []
        lift: dict[str, float] = {}
        for weight, vectors in ((1.0, read.first), (read.rest_weight, read.rest)):
            # A word among the first few of one reading only may lack a little of its lift
            # in the other: the reasons are what decided, not a ledger.
            for value, feature in self._model.words.contributions(vectors, row, c, rival, most=2 * WORD_REASONS):
                lift[feature] = lift.get(feature, 0.0) + weight * value
        ranked = sorted(((value, feature) for feature, value in lift.items()), reverse=True)
        words = [f'"{f}"' for _, f in ranked[:WORD_REASONS]]
        return ["words " + ", ".join(words)] if words else []

    def _tie_break(self, totals: NDArray[np.float64], ranked: list[int]) -> tuple[int, str | None]:
        """The taxonomy's tie-break rules: a runner-up nearly as likely as the winner
        (``RULE_RATIO``) that lists the winner in ``wins_over`` takes its place."""
        best = ranked[0]
        if best >= len(self._codes):
            return best, None
        for c in ranked[1:3]:
            if c >= len(self._codes):
                continue
            close = math.exp(float(totals[c] - totals[best])) >= RULE_RATIO
            if close and self._codes[best] in self.taxonomy.topics[c].wins_over:
                return c, f"tie-break: {self._codes[c]} wins over {self._codes[best]}"
        return best, None


def _probability_not_other(totals: NDArray[np.float64], other: int) -> float:
    """How sure the scores are that the paper is within the topics: the softmax mass of the
    topics against Other."""
    import numpy as np

    top = float(totals.max())
    weights = np.exp(totals - top)
    return float(1.0 - weights[other] / weights.sum())


def _category_bonus(categories: Sequence[str], patterns: Sequence[str]) -> float:
    """1 when the primary category matches one of ``patterns``, 0.5 for another category, else 0."""
    if not categories or not patterns:
        return 0.0
    if any(category_matches(p, categories[0]) for p in patterns):
        return 1.0
    if any(category_matches(p, c) for c in categories[1:] for p in patterns):
        return 0.5
    return 0.0


def _keyword_pattern(keywords: Sequence[str]) -> re.Pattern[str] | None:
    """One regex finding any of a topic's keywords as whole words ("quantiz*" as a prefix)."""
    if not keywords:
        return None
    parts = []
    for raw in keywords:
        phrase, _ = parse_keyword(raw)
        words = [re.escape(w.rstrip("*")) + (r"\w*" if w.endswith("*") else "s?") for w in fold(phrase).split()]
        parts.append(r"[\s\-]+".join(words))
    return re.compile(r"\b(" + "|".join(sorted(parts, key=len, reverse=True)) + r")\b")


class _Reading(NamedTuple):
    """The word model's two readings of the papers being placed: the title with the start of
    the abstract, and the title with the abstract's next words, which count ``rest_weight``
    (for this paper: none when its abstract ends within the first reading)."""

    first: Vectors
    rest: Vectors
    rest_weight: float
    #: The words of this paper's title.
    title: list[str]


@dataclass(frozen=True, slots=True)
class _Teaching:
    """Everything a taxonomy teaches, as the model reads it, and its fingerprint."""

    classes: tuple[str, ...]
    #: The taxonomy's examples, its descriptions' items, and (see :func:`_self_taught`) the
    #: papers of the background it taught itself with.
    examples: tuple[Example, ...]
    first_item: int  # the position of the first description item in ``examples``
    first_self_taught: int  # the position of the first self-taught example
    labels: tuple[int, ...]  # each example's class, then each description's
    weights: tuple[float, ...]
    descriptions: tuple[str, ...]
    background: Path  # the unlabelled papers the IDFs are counted over (read only to learn)
    self_teach: bool  # whether it teaches itself from the background (when first learned)
    key: str

    def texts(self) -> tuple[str, ...]:
        """What the word model reads: each example's text, then each topic's description (made
        only to learn: a run that finds the model in the cache never reads the examples)."""
        return tuple(_example_text(e) for e in self.examples) + self.descriptions


def description_items(description: str) -> tuple[str, ...]:
    """The things a description lists: its phrases between commas, semicolons, colons,
    brackets and sentence ends ("KV-cache management and eviction, early exit" gives two),
    with at least one content word each ("e.g." and "etc." end nothing and are no item)."""
    text = _ABBREVIATION.sub(lambda found: found.group(0)[:-1], description)
    parts = (_LEADING_ABBREVIATION.sub("", part.strip(" .")) for part in _ITEM_BREAK.split(text))
    return tuple(part for part in parts if model.words(part))


def background_identity(path: Path) -> str:
    """What the fingerprint of a learned model says of the background: a hash of the file."""
    try:
        stat = path.stat()
    except OSError:
        return "no background"
    return _background_identity(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def _background_identity(path: Path, mtime_ns: int, size: int) -> str:
    try:
        return f"background {cache.fingerprint([path.read_text(encoding='utf-8', errors='replace')])}"
    except OSError:
        return "no background"


def background_texts(path: Path) -> tuple[str, ...]:
    """The papers of an examples file (``taxonomy.examples_file_rows``) as the word model reads
    them, labels ignored; none when it cannot be read, since the background only refines the
    IDFs and a taxonomy is learned without it as well."""
    try:
        rows = examples_file_rows(path)
    except (OSError, UnicodeDecodeError):
        return ()
    return tuple(_example_text(Example(row.title, "", row.abstract)) for row in rows if row.title)


def teaching(
    taxonomy: Taxonomy, embeddings: StaticEmbeddings | None = None, background: Path | None = None
) -> _Teaching:
    """What ``taxonomy`` teaches the grouper (its examples, its descriptions whole and item by
    item), the background its IDFs are counted over, and the fingerprint its learned model is
    kept under.  ``background`` is ``BACKGROUND`` unless given."""
    embeddings = embeddings or shipped_embeddings()
    background = background or BACKGROUND
    classes = taxonomy.codes() + (OTHER_CODE,)
    position = {c: i for i, c in enumerate(classes)}
    listed = taxonomy.examples()
    # The topics' descriptions teach too, whole and item by item; [other]'s does not: it
    # describes by negation ("outside machine learning"), in the very words of the topics.
    # An item that is already an inline example of the topic is not taught twice.
    items: list[Example] = []
    for topic in taxonomy.topics:
        known = {normalise_title(title) for title in topic.examples}
        for item in description_items(topic.description):
            key = normalise_title(item)
            if key not in known:
                known.add(key)
                items.append(Example(item, topic.code))
    examples = listed + tuple(items)
    descriptions = tuple(f"{t.title}. {t.description}" for t in taxonomy.topics)
    labels = tuple(position[e.topic] for e in examples) + tuple(range(len(descriptions)))
    self_teach = taxonomy.teaches_itself()
    # What the topics file says weighs more than a line of its examples file.
    inline = len(listed) - len(taxonomy.extra_examples)
    weights = (
        (INLINE_WEIGHT,) * inline
        + tuple(e.weight for e in taxonomy.extra_examples)
        + (INLINE_WEIGHT,) * (len(items) + len(descriptions))
    )
    # The fingerprint reads each example as written (what the word model reads of it follows
    # from that and the settings named here), so that finding a learned model is quick.
    n = len(examples)
    key = cache.fingerprint(
        [
            f"model {model.MODEL_VERSION} C={model.C} min_df={model.MIN_DF}/{model.MIN_DF_FROM}",
            f"example abstract words {EXAMPLE_ABSTRACT_WORDS}",
            embeddings.identity,
            *classes,
        ]
        + [
            f"{label} {weight} {int(e.nearest)} {e.title}\t{e.abstract}"
            for e, label, weight in zip(examples, labels, weights)
        ]
        + [f"listed {len(listed)}"]
        + [f"{label} {weight} {text}" for text, label, weight in zip(descriptions, labels[n:], weights[n:])]
        + [background_identity(background)]
        + (_self_teaching_identity(taxonomy) if self_teach else [])
    )
    return _Teaching(classes, examples, len(listed), n, labels, weights, descriptions, background, self_teach, key)


def _self_teaching_identity(taxonomy: Taxonomy) -> list[str]:
    """What the fingerprint of a self-taught model says of the self-teaching: besides what the
    taxonomy teaches, what decides how the background's papers are placed (keywords, tie-break
    rules, the placing settings) and which are left out. A change to the placing code itself
    needs a new ``model.MODEL_VERSION``."""
    settings = (
        SELF_TAUGHT, SELF_TAUGHT_WEIGHT, ABSTRACT_WORDS, REST_WORDS, REST_WEIGHT, MEANING_ABSTRACT_WORDS,
        MEANING_WEIGHT, NEAREST, KEYWORD_BONUS, RULE_RATIO, MIN_KNOWN_WORDS, MIN_FIT,
    )
    return [
        "self-taught " + " ".join(map(str, settings)),
        *(f"{t.code} keywords {t.keywords} wins over {t.wins_over}" for t in taxonomy.topics),
        *sorted(taxonomy.held_out),
    ]


def _with_self_taught(taught: _Teaching, chosen: Sequence[Example]) -> _Teaching:
    """``taught`` and the examples it taught itself (``chosen``, after its descriptions' items)."""
    position = {c: i for i, c in enumerate(taught.classes)}
    n = len(taught.examples)
    return replace(
        taught,
        examples=taught.examples + tuple(chosen),
        labels=taught.labels[:n] + tuple(position[e.topic] for e in chosen) + taught.labels[n:],
        weights=taught.weights[:n] + tuple(e.weight for e in chosen) + taught.weights[n:],
    )


def _self_taught(taxonomy: Taxonomy, taught: _Teaching, embeddings: StaticEmbeddings) -> tuple[Example, ...]:
    """The papers of the background (less those the taxonomy lists or holds out) that a grouper
    taught only by ``taxonomy`` places most surely in each class: the ``SELF_TAUGHT`` with the
    largest margin over their runner-up (see :func:`_sureness`).

    This is self-training, the classic semi-supervised step: a handful of examples teaches the
    words a topic is named by, and its surest placements among thousands of papers of the field
    teach the words such papers share (and Other the many ways a paper can lie outside).
    """
    left_out = {normalise_title(e.title) for e in taught.examples[: taught.first_item]} | taxonomy.held_out
    try:
        rows = examples_file_rows(taught.background)
    except (OSError, UnicodeDecodeError):
        return ()
    pool: dict[str, Paper] = {}
    for row in rows:
        key = normalise_title(row.title)
        if row.title and key not in left_out:
            pool.setdefault(key, Paper(title=row.title, abstract=row.abstract))
    papers = list(pool.values())
    # What the examples alone teach is needed this once: it is not kept in the cache.
    base = Grouper(replace(taxonomy, self_teaching=False), embeddings, taught.background, keep_learned=False)
    placed = base.place_all(papers)
    chosen: list[Example] = []
    for code in taught.classes:
        mine = [i for i, p in enumerate(placed) if p.topic == code]
        mine.sort(key=lambda i: -_sureness(placed[i]))
        chosen += [Example(papers[i].title, code, papers[i].abstract, SELF_TAUGHT_WEIGHT) for i in mine[:SELF_TAUGHT]]
    return tuple(chosen)


def learn(taxonomy: Taxonomy, embeddings: StaticEmbeddings | None = None) -> dict[str, NDArray[np.generic]]:
    """Learn ``taxonomy`` (or read what was learned from the cache): the arrays of its model."""
    embeddings = embeddings or shipped_embeddings()
    return _learned(taxonomy, teaching(taxonomy, embeddings), embeddings)


def _sureness(placement: Placement) -> float:
    """How surely a paper is placed: its margin over the runner-up topic and, when it is placed
    in a topic, over Other (the log-odds of its fit to the topics), whichever is smaller."""
    margin = placement.score - placement.runner_up_score
    if placement.topic == OTHER_CODE or placement.fit is None:
        return margin
    fit = min(max(placement.fit, 1e-9), 1 - 1e-9)
    return min(margin, math.log(fit / (1 - fit)))


def _learned(
    taxonomy: Taxonomy, taught: _Teaching, embeddings: StaticEmbeddings, *, keep: bool = True
) -> dict[str, NDArray[np.generic]]:
    """The arrays of the model ``taught`` (what ``taxonomy`` teaches) describes: from the
    cache, else learned (self-taught first if ``taught.self_teach``) and cached if ``keep``."""
    import numpy as np

    arrays = cache.load(taught.key)
    if arrays is None:
        chosen = _self_taught(taxonomy, taught, embeddings) if taught.self_teach else ()
        self_taught = "\n".join(f"{e.topic}\t{e.title}" for e in chosen)
        taught = _with_self_taught(taught, chosen)
        background = background_texts(taught.background)
        words = model.train(taught.texts(), taught.labels, taught.weights, taught.classes, background)
        titles = [e.title for e in taught.examples]
        idf = embeddings.idf(titles + list(taught.descriptions) + list(background))
        arrays = {
            **words.to_arrays(),
            # Only the examples the meaning's nearest-example search sees (``Example.nearest``).
            "example_vectors": embeddings.encode([e.title for e in taught.examples if e.nearest], idf).astype(np.float16),
            # Other's meaning comes from its examples alone (a zero row: no description).
            "description_vectors": np.vstack(
                [embeddings.encode(taught.descriptions, idf), np.zeros((1, embeddings.dims), np.float32)]
            ),
            "meaning_idf": idf,
            # The listed titles, normalised (a title listed twice goes where it is listed
            # first: the inline examples, which `digest topics add-example` writes), kept so
            # that a run does not normalise thousands of titles again. A change to
            # normalise_title needs a new model.MODEL_VERSION.
            "listed": np.array("\n".join(f"{key}\t{code}" for key, code in _listed(taught).items())),
            # The examples it taught itself, kept so that a run need not place the background again.
            "self_taught": np.array(self_taught),
        }
        if keep:
            cache.save(taught.key, arrays)
    return arrays


def _model_of(
    taxonomy: Taxonomy, embeddings: StaticEmbeddings, background: Path | None = None, *, keep: bool = True
) -> _Model:
    """The grouper's model of ``taxonomy``, from what :func:`learn` gives (kept in the cache if ``keep``)."""
    import numpy as np

    taught = teaching(taxonomy, embeddings, background)
    arrays = _learned(taxonomy, taught, embeddings, keep=keep)
    examples = taught.examples
    # Only the titles and topics of the examples it taught itself are needed to place papers
    # (older caches have none).
    if "self_taught" in arrays and str(arrays["self_taught"]):
        rows = (line.split("\t", 1) for line in str(arrays["self_taught"]).split("\n"))
        examples += tuple(Example(title, code) for code, title in rows)
    classes = taught.classes
    kinds = np.full(len(examples), EXAMPLE_ROW, dtype=np.int8)
    kinds[taught.first_item : taught.first_self_taught] = ITEM_ROW
    kinds[taught.first_self_taught :] = SELF_TAUGHT_ROW
    # The rows of the meaning are the examples its nearest-example search sees.
    kinds = kinds[np.array([e.nearest for e in examples], dtype=bool)]
    examples = tuple(e for e in examples if e.nearest)
    # The examples of each class together (in their order), so a class's columns are a slice.
    position = {c: i for i, c in enumerate(classes)}
    class_of = np.array([position[e.topic] for e in examples], dtype=np.intp)
    order = np.argsort(class_of, kind="stable")
    ends = np.cumsum(np.bincount(class_of, minlength=len(classes)))
    lines = str(arrays["listed"]).split("\n") if str(arrays["listed"]) else []
    return _Model(
        classes=classes,
        words=WordModel.from_arrays(classes, arrays),
        example_vectors=np.asarray(arrays["example_vectors"], dtype=np.float32)[order],
        members=tuple(slice(int(start), int(end)) for start, end in zip((0, *ends[:-1]), ends)),
        example_titles=tuple(examples[int(i)].title for i in order),
        example_kinds=kinds[order],
        description_vectors=np.asarray(arrays["description_vectors"], dtype=np.float32),
        idf=np.asarray(arrays["meaning_idf"], dtype=np.float32),
        listed=dict(line.split("\t") for line in lines),
    )


def _listed(taught: _Teaching) -> dict[str, str]:
    """Each listed example's normalised title and its topic, the first listing winning."""
    listed: dict[str, str] = {}
    for example in taught.examples[: taught.first_item]:
        listed.setdefault(normalise_title(example.title), example.topic)
    return listed


def _example_text(example: Example) -> str:
    """What the word model reads of an example: its title and the start of its abstract."""
    if not example.abstract:
        return example.title
    return f"{example.title} {' '.join(example.abstract.split()[:EXAMPLE_ABSTRACT_WORDS])}"


def _meaning_text(paper: Paper) -> str:
    """What the meaning reads of a paper: the title and the abstract's first sentence or so."""
    return f"{paper.title} {' '.join(paper.abstract.split()[:MEANING_ABSTRACT_WORDS])}"


def _readings(paper: Paper) -> tuple[list[str], list[str], list[str] | None]:
    """The words of a paper's title, and the two readings the word model makes of it: first
    the title three times (it says what the paper contributes, and the examples it learned
    from are mostly titles) and the start of the abstract (mostly context); then, apart, the
    title and the abstract's next ``REST_WORDS`` words (None when the abstract has no more)."""
    title = model.words(paper.title)
    abstract = paper.abstract.split()
    first = title * 3 + model.words(" ".join(abstract[:ABSTRACT_WORDS]))
    if len(abstract) <= ABSTRACT_WORDS:
        return title, first, None
    return title, first, title + model.words(" ".join(abstract[ABSTRACT_WORDS : ABSTRACT_WORDS + REST_WORDS]))


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
    placements = {paper.key: placement for paper, placement in zip(papers, grouper.place_all(papers))}
    return arrange(papers, placements, grouper.taxonomy, order=order), placements


def arrange(
    papers: Sequence[Paper], placements: Mapping[str, Placement], taxonomy: Taxonomy, *, order: str = "source"
) -> tuple[TopicGroup, ...]:
    """The groups of papers already placed (``placements`` by paper key): taxonomy order, then
    "Other"; empty groups left out; papers ranked by ``order`` (see :func:`group_papers`)."""
    members: dict[str, list[Paper]] = {}
    for paper in papers:
        members.setdefault(placements[paper.key].topic, []).append(paper)
    key = _rank_in_group(order)
    groups = []
    sections = [(t.code, t.title, t.description) for t in taxonomy.topics]
    sections.append((OTHER_CODE, OTHER_TITLE, "Papers that fit none of the topics."))
    for code, title, description in sections:
        if members.get(code):
            ranked = tuple(sorted(members[code], key=key))
            groups.append(TopicGroup(code=code, title=title, papers=ranked, description=description))
    return tuple(groups)

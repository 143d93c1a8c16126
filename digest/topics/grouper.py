"""The grouper: every new paper gets exactly one topic of the taxonomy, or "Other".

It learns from what the topics file says, nothing else: each topic's description and
example titles (inline and from ``examples_file``), the ``[other]`` table's description and
examples of what lies outside the taxonomy, the arXiv categories named per topic, optional
keywords and tie-break rules.  Three kinds of evidence are weighed for each paper:

* **words**: a naive Bayes model of each topic's words and word pairs, learned from its
  examples and description.  Title words count ``TITLE_WEIGHT`` times as much as abstract
  words: the title says what the paper contributes, the abstract mostly its context;
* **meaning**: static word-piece vectors (see :mod:`digest.topics.embedding`) of the paper
  against the nearest examples of each topic, so a paper about "Hyena operators" finds the
  state-space examples without sharing a word with them;
* **arXiv categories**: a category a topic names (``audio``: ``eess.AS``) adds to it.

"Other" is a class of its own, learned from the ``[other]`` examples, so a physics or
biology paper goes there because it looks like what lies outside, not only because no topic
is close.  Two more rules make Other an absolute answer: a paper whose primary arXiv category
is one of ``[other] categories`` is Other unless its text is clearly about the taxonomy's
subject (``ML_EVIDENCE`` or more), and a paper close to no topic at all is Other too.

Every placement carries its ``why``: the words and the nearest example that decided it, the
categories that counted, the runner-up, and how Other was decided.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from digest.errors import ConfigError
from digest.identity import normalise_title
from digest.models import Paper, Placement, TopicGroup
from digest.topics.embedding import STOPWORDS, StaticEmbeddings, shipped_embeddings
from digest.topics.taxonomy import OTHER_CODE, OTHER_TITLE, Example, Taxonomy, category_matches, fold, parse_keyword

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

ORDERS = ("source", "upvotes")

#: A title word counts this many times as much as an abstract word.
TITLE_WEIGHT = 3.0
#: Only the abstract's first words are read: the rest repeats them or reports numbers.
ABSTRACT_WORDS = 120
#: Laplace smoothing of the word model.
SMOOTHING = 0.1
#: How much the word model's log-odds count against the meaning's similarity.
WORD_WEIGHT = 1.0
MEANING_WEIGHT = 8.0
#: The meaning of a topic: the mean similarity to its ``NEAREST`` closest examples.
NEAREST = 5
#: A category the topic names adds this much (the primary category counts in full, others half).
CATEGORY_BONUS = 1.5
#: A keyword of the topic found in the title adds this much, in the abstract a third of it.
KEYWORD_BONUS = 1.0
#: A tie-break rule (``wins_over``) applies when the rule's topic is this close to the winner.
RULE_MARGIN = 1.0
#: The probability of "not Other" a paper filed under an Other category needs to stay in the taxonomy.
ML_EVIDENCE = 0.9
#: A paper whose best meaning similarity is below this is close to no topic: Other.
MIN_FIT = 0.12
#: How many pieces of evidence a placement lists.
MAX_EVIDENCE = 4

_WORD = re.compile(r"[^\W_]+(?:-[^\W_]+)*")


def _singular(token: str) -> str:
    """Drop a plural ending: "caches" -> "cache", "studies" -> "study"."""
    if len(token) > 3 and token.endswith("s") and not token.endswith(("ss", "us", "is")):
        if token.endswith("ies") and len(token) > 4:
            return token[:-3] + "y"
        return token[:-1]
    return token


def features(text: str, limit: int | None = None) -> set[str]:
    """The word features of a text: content words (singular, case-folded) and neighbouring pairs."""
    words = _WORD.findall(fold(text))
    if limit is not None:
        words = words[:limit]
    tokens = [_singular(w) for w in words if w not in STOPWORDS and not w.isdigit() and len(w) > 1]
    pairs = {f"{a} {b}" for a, b in zip(tokens, tokens[1:])}
    return set(tokens) | pairs


@dataclass(frozen=True, slots=True)
class _Model:
    """What the grouper learned from a taxonomy (numpy arrays; built once per Grouper)."""

    classes: tuple[str, ...]  # the topic codes, then "other"
    feature_index: dict[str, int]
    log_prob: NDArray[np.float32]  # features x classes: log P(feature | class), centred per row
    example_vectors: NDArray[np.float32]  # examples x dims
    example_class: NDArray[np.intp]
    example_titles: tuple[str, ...]
    description_vectors: NDArray[np.float32]  # classes x dims
    idf: NDArray[np.float32]


class Grouper:
    """Places papers in the topics of one taxonomy; build once per run, then call place()."""

    def __init__(self, taxonomy: Taxonomy, embeddings: StaticEmbeddings | None = None) -> None:
        """Learn the word model and the example vectors from the taxonomy."""
        self.taxonomy = taxonomy
        self._codes = taxonomy.codes()
        self._embeddings = embeddings or shipped_embeddings()
        self._examples = {normalise_title(e.title): e.topic for e in taxonomy.examples()}
        self._model = _learn(taxonomy, self._embeddings)
        self._keywords = [_keyword_pattern(t.keywords) for t in taxonomy.topics]
        self._other_categories = taxonomy.other.categories
        self._topic_categories = [t.categories for t in taxonomy.topics]

    def place(self, paper: Paper) -> Placement:
        """Choose the paper's topic, with the evidence that decided it and the runner-up."""
        return self.place_all([paper])[0]

    def place_all(self, papers: Sequence[Paper]) -> list[Placement]:
        """Place many papers at once (the vectors are computed in one pass)."""
        import numpy as np

        if not papers:
            return []
        m = self._model
        title_vectors = self._embeddings.encode([p.title for p in papers], m.idf)
        abstract_vectors = self._embeddings.encode(
            [" ".join(p.abstract.split()[:ABSTRACT_WORDS]) for p in papers], m.idf
        )
        vectors = 0.7 * title_vectors + 0.3 * abstract_vectors
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = vectors / np.where(norms > 0, norms, 1.0)
        sims = vectors @ m.example_vectors.T  # papers x examples
        description_sims = vectors @ m.description_vectors.T
        return [
            self._place_one(paper, sims[i], description_sims[i]) for i, paper in enumerate(papers)
        ]

    # -- one paper

    def _place_one(self, paper: Paper, sims: NDArray[np.float32], description_sims: NDArray[np.float32]) -> Placement:
        import numpy as np

        m = self._model
        n_classes = len(m.classes)
        listed = self._examples.get(normalise_title(paper.title))
        words = self._word_scores(paper)
        meaning = np.array(description_sims, dtype=np.float64) * 0.5
        nearest: list[int] = [-1] * n_classes
        for c in range(n_classes):
            members = np.flatnonzero(m.example_class == c)
            if members.size:
                top = members[np.argsort(-sims[members])[:NEAREST]]
                meaning[c] = max(meaning[c], float(sims[top].mean()))
                nearest[c] = int(top[0])
        totals = WORD_WEIGHT * words + MEANING_WEIGHT * meaning
        notes: dict[int, list[str]] = {c: [] for c in range(n_classes)}
        for t, patterns in enumerate(self._topic_categories):
            bonus = _category_bonus(paper.categories, patterns)
            if bonus:
                totals[t] += bonus * CATEGORY_BONUS
                notes[t].append(f"arXiv category {', '.join(c for c in paper.categories if any(category_matches(p, c) for p in patterns))}")
        for t, pattern in enumerate(self._keywords):
            if pattern is None:
                continue
            hits = [(KEYWORD_BONUS, w) for w in pattern.findall(fold(paper.title))]
            hits += [(KEYWORD_BONUS / 3, w) for w in pattern.findall(fold(paper.abstract))]
            if hits:
                totals[t] += sum(h for h, _ in hits)
                notes[t].append("keyword " + ", ".join(sorted({f'"{w}"' for _, w in hits})))

        other = n_classes - 1
        ranked = [int(c) for c in np.argsort(-totals)]
        best = ranked[0]
        rule_note = None
        if listed is not None:
            best = m.classes.index(listed)
            rule_note = f"listed as an example of {listed!r}"
        else:
            best, rule_note = self._tie_break(totals, ranked)
        topic_ranked = [c for c in ranked if c != other]
        not_other = _probability_not_other(totals, other)
        other_note = None
        if listed is None:
            primary = paper.categories[0] if paper.categories else None
            if best != other and primary and any(category_matches(p, primary) for p in self._other_categories):
                if not_other < ML_EVIDENCE:
                    other_note = f"primary arXiv category {primary} lies outside the topics, and the text is not clearly within them (fit {not_other:.2f} < {ML_EVIDENCE})"
                    best = other
            elif best != other and float(meaning[:other].max()) < MIN_FIT:
                other_note = f"close to no topic (best similarity {float(meaning[:other].max()):.2f} < {MIN_FIT})"
                best = other
            elif best == other:
                other_note = f"reads like papers outside the topics (fit to the topics {not_other:.2f})"
        runner = next((c for c in (topic_ranked if best == other else ranked) if c != best), None)
        evidence: list[str] = []
        if rule_note:
            evidence.append(rule_note)
        if other_note:
            evidence.append(other_note)
        shown = best if best != other or other_note is None or other_note.startswith("reads") else runner
        if shown is not None:
            evidence += notes[shown]
            evidence += self._word_reasons(paper, shown, ranked)
            if nearest[shown] >= 0:
                evidence.append(f'near the example "{m.example_titles[nearest[shown]]}"')
        return Placement(
            topic=m.classes[best],
            score=round(float(totals[best]), 3),
            evidence=tuple(evidence[:MAX_EVIDENCE + (1 if other_note else 0)]),
            runner_up=m.classes[runner] if runner is not None else None,
            runner_up_score=round(float(totals[runner]), 3) if runner is not None else 0.0,
        )

    def _word_scores(self, paper: Paper) -> NDArray[np.float64]:
        """The word model's score of each class: the weighted mean log-probability of the
        paper's known features, each class's centred so only differences count."""
        import numpy as np

        m = self._model
        index = m.feature_index
        title = [index[f] for f in features(paper.title) if f in index]
        abstract = [index[f] for f in features(paper.abstract, ABSTRACT_WORDS) if f in index]
        if not title and not abstract:
            return np.zeros(len(m.classes))
        score = TITLE_WEIGHT * m.log_prob[title].sum(axis=0) + m.log_prob[abstract].sum(axis=0)
        weight = TITLE_WEIGHT * len(title) + len(abstract)
        return np.asarray(score, dtype=np.float64) / math.sqrt(weight)

    def _word_reasons(self, paper: Paper, c: int, ranked: list[int]) -> list[str]:
        """The paper's words that speak most for class ``c`` over the runner-up."""
        m = self._model
        rival = next((r for r in ranked if r != c), c)
        found = [(f, "title") for f in features(paper.title)] + [
            (f, "abstract") for f in features(paper.abstract, ABSTRACT_WORDS)
        ]
        scored = []
        for f, where in found:
            i = m.feature_index.get(f)
            if i is None:
                continue
            lift = float(m.log_prob[i, c] - m.log_prob[i, rival]) * (TITLE_WEIGHT if where == "title" else 1.0)
            if lift > 0:
                scored.append((lift, f, where))
        scored.sort(reverse=True)
        seen: set[str] = set()
        words = []
        for _, f, where in scored:
            if f not in seen:
                seen.add(f)
                words.append(f'"{f}" ({where})')
            if len(words) == 3:
                break
        return ["words " + ", ".join(words)] if words else []

    def _tie_break(self, totals: NDArray[np.float64], ranked: list[int]) -> tuple[int, str | None]:
        """The taxonomy's ordered tie-break rules: a close runner-up that lists the winner in
        ``wins_over`` takes its place."""
        best = ranked[0]
        if best >= len(self._codes):
            return best, None
        for c in ranked[1:3]:
            if c >= len(self._codes):
                continue
            if totals[best] - totals[c] <= RULE_MARGIN and self._codes[best] in self.taxonomy.topics[c].wins_over:
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


def _learn(taxonomy: Taxonomy, embeddings: StaticEmbeddings) -> _Model:
    """The word model and the example vectors of a taxonomy."""
    import numpy as np

    classes = taxonomy.codes() + (OTHER_CODE,)
    position = {c: i for i, c in enumerate(classes)}
    examples: list[Example] = list(taxonomy.examples())
    descriptions = [f"{t.title}. {t.description}" for t in taxonomy.topics]
    descriptions.append(taxonomy.other.description or OTHER_TITLE)

    # Word model: each example (title and abstract) and each description is one document;
    # a feature counts once per document.
    counts: list[Counter[str]] = [Counter() for _ in classes]
    for example in examples:
        counts[position[example.topic]].update(features(example.title) | features(example.abstract, ABSTRACT_WORDS))
    for c, text in enumerate(descriptions):
        counts[c].update(features(text))
    vocabulary = sorted(set().union(*counts))
    feature_index = {f: i for i, f in enumerate(vocabulary)}
    table = np.zeros((len(vocabulary), len(classes)), dtype=np.float64)
    for c, counter in enumerate(counts):
        for f, n in counter.items():
            table[feature_index[f], c] = n
    totals = table.sum(axis=0) + SMOOTHING * len(vocabulary)
    log_prob = np.log((table + SMOOTHING) / totals)
    log_prob -= log_prob.mean(axis=1, keepdims=True)

    texts = [e.title for e in examples]
    idf = embeddings.idf(texts + [e.abstract for e in examples if e.abstract] + descriptions)
    example_vectors = embeddings.encode(texts, idf)
    description_vectors = embeddings.encode(descriptions, idf)
    return _Model(
        classes=classes,
        feature_index=feature_index,
        log_prob=log_prob.astype(np.float32),
        example_vectors=example_vectors,
        example_class=np.array([position[e.topic] for e in examples], dtype=np.intp),
        example_titles=tuple(texts),
        description_vectors=description_vectors,
        idf=idf,
    )


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
    for paper, placement in zip(papers, grouper.place_all(papers)):
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

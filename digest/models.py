"""The plain values that flow between the stages of the pipeline.

sources -> Snapshot(papers) -> store.diff -> new papers -> topics.group -> Digest -> render -> deliver
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from digest.identity import paper_keys


@dataclass(frozen=True, slots=True)
class MachineSummary:
    """A one-sentence summary a language model wrote of a paper (see :mod:`digest.llm`).

    ``model`` and ``prompt_version`` say where the words came from; templates mark it as
    machine-written.
    """

    text: str
    model: str
    prompt_version: str = ""


@dataclass(frozen=True, slots=True)
class Paper:
    """One paper as a source listed it.

    ``key`` is the paper's strongest identity key (``arxiv:…``, ``doi:…`` or ``title:…``);
    ``keys`` lists every key it can be matched by.  ``position`` is its rank in the source
    (0 = first listed).  ``categories`` are its arXiv category codes, primary first, each once
    (``("cs.LG", "stat.ML")``); only arXiv entries have them (see :mod:`digest.categories`).
    """

    title: str
    abstract: str = ""
    url: str | None = None
    arxiv_id: str | None = None
    doi: str | None = None
    authors: tuple[str, ...] = ()
    source: str = ""
    position: int = 0
    upvotes: int | None = None
    published: dt.date | None = None
    categories: tuple[str, ...] = ()
    # What a language model wrote of it ([llm]); never part of a paper's identity.
    summary: MachineSummary | None = field(default=None, compare=False)
    # ``keys`` computed once (the diff, the merge, the commit and the renderers all ask for it).
    _keys: tuple[str, ...] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def keys(self) -> tuple[str, ...]:
        """Every identity key of this paper, strongest first."""
        keys = self._keys
        if keys is None:
            keys = paper_keys(arxiv_id=self.arxiv_id, doi=self.doi, title=self.title)
            object.__setattr__(self, "_keys", keys)
        return keys

    @property
    def key(self) -> str:
        """The strongest identity key."""
        return self.keys[0]

    def without_abstract(self) -> Paper:
        """This paper with an empty abstract, its keys kept (for reports, which never show it)."""
        light = dataclasses.replace(self, abstract="")
        object.__setattr__(light, "_keys", self._keys)
        return light


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What one source gave in one read: a file of the inbox, a feed response."""

    source: str
    origin: str
    papers: tuple[Paper, ...]
    content_hash: str
    taken_at: dt.datetime
    listing_date: dt.date | None = None


@dataclass(frozen=True, slots=True)
class Placement:
    """Why a paper went to its topic: the score, the evidence and the runner-up."""

    topic: str
    score: float
    evidence: tuple[str, ...] = ()
    runner_up: str | None = None
    runner_up_score: float = 0.0
    # How sure the grouper was that the paper lies within the topics (1 - Other's share of the
    # scores); None when not known (a placement read back from the store).
    fit: float | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class TopicGroup:
    """The new papers of one topic, ranked.

    ``papers`` is a tuple, except in a digest read back from the store (``recall``), where it
    reads its papers from the store as it is iterated or sliced.
    """

    code: str
    title: str
    papers: Sequence[Paper]
    description: str = ""


@dataclass(frozen=True, slots=True)
class DigestCounts:
    """How many entries a run read and what became of them."""

    entries: int = 0
    new: int = 0
    already_seen: int = 0
    duplicates: int = 0


@dataclass(frozen=True, slots=True)
class Digest:
    """One day's digest: the new papers grouped by topic."""

    date: dt.date
    groups: tuple[TopicGroup, ...]
    counts: DigestCounts = field(default_factory=DigestCounts)
    placements: Mapping[str, Placement] = field(default_factory=dict, compare=False, hash=False)

    @property
    def papers(self) -> tuple[Paper, ...]:
        """Every paper of the digest in group order."""
        return tuple(p for g in self.groups for p in g.papers)

    @property
    def size(self) -> int:
        """The number of papers in the digest."""
        return sum(len(g.papers) for g in self.groups)

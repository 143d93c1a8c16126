"""The model's step of a run, between topics and render: summaries and second opinions.

``assist`` takes the day's digest as the offline grouper made it and returns it with

* a one-sentence summary on each paper the model described (:class:`digest.models.MachineSummary`);
* the topic the model chose for each *weak* placement (:func:`weak_reason`), when it named a
  code of the taxonomy or ``other``; ``why`` says whether the model or the grouper decided.

A paper is asked about once: what the model said is stored (``llm_summaries``) before the
digest is committed, and a paper with a stored note is never sent again.  Whatever fails (no
server, a timeout, 429, 5xx, a malformed answer, the budget used up), the papers concerned keep
the offline result and no summary, and the run gets one warning line.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from digest.config import LlmConfig
from digest.llm.ask import Asked, ask
from digest.llm.client import LlmError, api_key
from digest.llm.prompt import PROMPT_VERSION, Answer, Item
from digest.models import Digest, MachineSummary, Paper, Placement
from digest.store import LlmNote, SeenStore
from digest.topics.grouper import arrange
from digest.topics.taxonomy import OTHER_CODE, Taxonomy

#: A placement is weak when its runner-up is at least this likely relative to it (a ratio of
#: probabilities, as the tie-break rules' ``RULE_RATIO``)...
CLOSE_RUNNER_UP = 0.5
#: ... or when the grouper's certainty that the paper lies within the topics is in this band.
OTHER_LINE = (0.3, 0.7)


@dataclass(frozen=True, slots=True)
class Assisted:
    """The digest with the model's help, one warning line (or None) and what it cost."""

    digest: Digest
    warning: str | None
    stats: dict[str, Any]


def weak_reason(placement: Placement) -> str | None:
    """Why the grouper's decision is weak enough to ask the model (None when it is not): a
    close runner-up, or a paper near the line between the topics and Other."""
    if placement.runner_up is not None and placement.topic != OTHER_CODE:
        ratio = math.exp(min(0.0, placement.runner_up_score - placement.score))
        if ratio >= CLOSE_RUNNER_UP:
            return f"runner-up {placement.runner_up} nearly as likely ({ratio:.2f})"
    low, high = OTHER_LINE
    if placement.fit is not None and low <= placement.fit <= high:
        return f"near the Other line (fit {placement.fit:.2f})"
    return None


def second_opinion(placement: Placement, answer: Answer, model: str, reason: str) -> Placement:
    """The placement after the model's second opinion on it; ``why`` says which decided."""
    if answer.topic is None:
        if answer.rejected_topic is None:
            note = f"the grouper decided: the model {model} gave no topic ({reason})"
        else:
            note = f"the grouper decided: the model {model} answered {answer.rejected_topic[:40]!r}, not a topic code ({reason})"
        return replace(placement, evidence=(note, *placement.evidence))
    if answer.topic == placement.topic:
        note = f"the grouper decided, and the model {model} agreed ({reason})"
        return replace(placement, evidence=(note, *placement.evidence))
    note = f"the model {model} decided, as a second opinion: the grouper chose {placement.topic} ({reason})"
    score = placement.runner_up_score if answer.topic == placement.runner_up else 0.0
    return Placement(
        topic=answer.topic,
        score=score,
        evidence=(note, *placement.evidence),
        runner_up=placement.topic,
        runner_up_score=placement.score,
        fit=placement.fit,
    )


def assist(
    digest: Digest,
    taxonomy: Taxonomy,
    store: SeenStore,
    settings: LlmConfig,
    *,
    now: dt.datetime,
    order: str,
    ask_model: bool = True,
    environ: Mapping[str, str] | None = None,
) -> Assisted:
    """``digest`` with the model's summaries and second opinions (see the module).

    ``ask_model`` False uses only what the store already holds (a preview, which writes nothing).
    """
    papers = list(digest.papers)
    placements = dict(digest.placements)
    notes = store.llm_notes(k for p in papers for k in p.keys)
    known: dict[str, LlmNote] = {}
    rekeyed: dict[str, LlmNote] = {}  # notes found under a weaker key than the paper's strongest
    to_ask: list[Paper] = []
    for paper in papers:
        found = next((k for k in paper.keys if k in notes), None)
        if found is not None:
            known[paper.key] = notes[found]
            if found != paper.key and ask_model:  # the outputs read it back under the paper's key
                rekeyed[paper.key] = notes[found]
        elif ask_model:
            to_ask.append(paper)
    over_budget = max(0, len(to_ask) - settings.max_papers_per_run)
    not_asked = {p.key for p in to_ask[settings.max_papers_per_run :]}
    to_ask = to_ask[: settings.max_papers_per_run]
    weak = {p.key: why for p in papers if (why := weak_reason(placements[p.key])) is not None}
    batches, ids = _batches(to_ask, weak, settings.batch_size)
    asked = _ask_safely(settings, dict(environ if environ is not None else os.environ), batches, taxonomy)
    fresh: dict[str, LlmNote] = {}
    for item_id, key in ids.items():
        answer = asked.answers.get(item_id)
        if answer is not None and (answer.summary or answer.topic or answer.rejected_topic):
            fresh[key] = LlmNote(answer.summary, answer.topic, settings.model, PROMPT_VERSION)
    if fresh or rekeyed:
        store.save_llm_notes([*rekeyed.items(), *fresh.items()], now=now)
    moved = opinions = 0
    item_of = {key: item_id for item_id, key in ids.items()}
    for paper in papers:
        key = paper.key
        note = fresh.get(key) or known.get(key)
        if key not in weak:
            continue
        if note is None:
            why = None
            if key in item_of:  # asked, but no answer came: say so
                why = f"the grouper decided: the model {settings.model} gave no second opinion ({weak[key]})"
            elif key in not_asked:
                why = (
                    f"the grouper decided: the model {settings.model} was not asked "
                    f"(over max_papers_per_run: {settings.max_papers_per_run}) ({weak[key]})"
                )
            if why is not None:
                placements[key] = replace(placements[key], evidence=(why, *placements[key].evidence))
            continue
        answer = asked.answers.get(item_of.get(key, ""))
        if answer is None:  # a stored note: its topic, if still a code
            codes = (*taxonomy.codes(), OTHER_CODE)
            answer = Answer(note.summary, note.topic if note.topic in codes else None)
            if answer.topic is None:
                continue
        revised = second_opinion(placements[key], answer, note.model, weak[key])
        opinions += answer.topic is not None
        moved += revised.topic != placements[key].topic
        placements[key] = revised
    described = [_described(p, fresh.get(p.key) or known.get(p.key)) for p in papers]
    groups = arrange(described, placements, taxonomy, order=order) if papers else ()
    unanswered = sum(1 for key in ids.values() if key not in fresh)
    stats = {
        "model": settings.model,
        "requests": asked.requests,
        "asked": len(to_ask),
        "summaries": sum(1 for p in described if p.summary is not None),
        "from_store": len(known),
        "second_opinions": opinions,
        "moved": moved,
    }
    warning = _warning(asked, unanswered, over_budget, len(papers), settings)
    return Assisted(replace(digest, groups=groups, placements=placements), warning, stats)


def _ask_safely(settings: LlmConfig, environ: dict[str, str], batches: list[list[Item]], taxonomy: Taxonomy) -> Asked:
    """:func:`ask`, and whatever it raises all the same (a bug, an odd transport) is a failed
    exchange: the model's step never breaks a run."""
    try:
        return ask(settings, api_key(settings, environ), batches, taxonomy, seconds=settings.timeout)
    except LlmError as exc:  # a key that cannot be sent: said without a word of it
        return Asked({}, 0, {i: exc.reason for i in range(len(batches))})
    except Exception as exc:  # noqa: BLE001 - the offline result stands, said in the warning line
        return Asked({}, 0, {i: f"unexpected error ({type(exc).__name__}: {exc})"[:200] for i in range(len(batches))})


def _batches(papers: Sequence[Paper], weak: Mapping[str, str], size: int) -> tuple[list[list[Item]], dict[str, str]]:
    """The papers in batches of ``size`` items, and each item id's paper key."""
    batches: list[list[Item]] = []
    ids: dict[str, str] = {}
    for start in range(0, len(papers), size):
        batch = []
        for n, paper in enumerate(papers[start : start + size], start=1):
            item_id = f"{start // size + 1}.{n}"
            ids[item_id] = paper.key
            batch.append(Item(item_id, paper.title, paper.abstract, choose_topic=paper.key in weak))
        batches.append(batch)
    return batches, ids


def _described(paper: Paper, note: LlmNote | None) -> Paper:
    """The paper with its machine summary, when the model gave one."""
    if note is None or not note.summary:
        return paper
    described = replace(paper, summary=MachineSummary(note.summary, note.model, note.prompt_version))
    object.__setattr__(described, "_keys", paper.keys)
    return described


def _warning(asked: Asked, unanswered: int, over_budget: int, total: int, settings: LlmConfig) -> str | None:
    """The run's one warning line about the model, or None when every paper asked was answered."""
    if not unanswered and not over_budget:
        return None
    reasons = Counter(asked.failed.values())
    parts = [f"{why} ({n} batches)" if n > 1 else why for why, n in reasons.most_common()]
    if unanswered and not reasons:
        parts.append("answers left some papers out")
    if over_budget:
        parts.append(f"{over_budget} over max_papers_per_run ({settings.max_papers_per_run})")
    missing = unanswered + over_budget
    return (
        f"llm: {missing} of {total} papers got no answer from {settings.model} at {settings.base_url} "
        f"and keep the offline result: {'; '.join(parts)}"
    )

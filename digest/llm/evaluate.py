"""``digest topics eval --llm``: the model's second opinion measured on hand labels.

The weak placements of the labelled papers (see :func:`digest.llm.weak_reason`) are sent to
the model in batches, topic only; its answers replace the grouper's where they name a code.
The report says how many were weak, asked and answered, and the accuracy without and with
the model, overall and on the weak papers alone.  Nothing is stored; the run's budget
(``max_papers_per_run``) does not apply, the timeout applies to the whole exchange.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from digest.config import LlmConfig
from digest.llm.ask import ask
from digest.llm.assist import second_opinion, weak_reason
from digest.llm.client import api_key
from digest.llm.prompt import Item
from digest.models import Paper, Placement
from digest.topics.taxonomy import Taxonomy


@dataclass(frozen=True, slots=True)
class SecondOpinions:
    """The placements after the model's second opinion, and what it took."""

    placements: tuple[Placement, ...]
    weak: int
    answered: int
    requests: int
    failures: tuple[str, ...]


def second_opinions(papers: Sequence[Paper], placements: Sequence[Placement], taxonomy: Taxonomy, settings: LlmConfig) -> SecondOpinions:
    """Ask the model about the weak ones of ``placements`` (one per paper) and apply its answers."""
    weak = {i: why for i, p in enumerate(placements) if (why := weak_reason(p)) is not None}
    order = list(weak)
    batches = [
        [Item(str(i), papers[i].title, papers[i].abstract, choose_topic=True) for i in order[start : start + settings.batch_size]]
        for start in range(0, len(order), settings.batch_size)
    ]
    asked = ask(settings, api_key(settings, dict(os.environ)), batches, taxonomy, seconds=settings.timeout, summaries=False)
    revised = list(placements)
    answered = 0
    for i, why in weak.items():
        answer = asked.answers.get(str(i))
        if answer is not None and (answer.topic or answer.rejected_topic):
            revised[i] = second_opinion(placements[i], answer, settings.model, why)
            answered += answer.topic is not None
    return SecondOpinions(tuple(revised), len(weak), answered, asked.requests, tuple(sorted(set(asked.failed.values()))))

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
from pathlib import Path

from digest.config import Config, LlmConfig
from digest.errors import ConfigError
from digest.identity import normalise_title
from digest.llm.ask import ask
from digest.llm.assist import second_opinion, weak_reason
from digest.llm.client import LlmError, api_key
from digest.llm.prompt import Item
from digest.models import Paper, Placement
from digest.topics.eval_command import load_papers, snapshot_files_for, without_labelled
from digest.topics.evaluate import evaluate, format_report, read_labels
from digest.topics.grouper import Grouper
from digest.topics.taxonomy import Taxonomy, configured_taxonomy


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
    try:
        key = api_key(settings, dict(os.environ))
    except LlmError as exc:
        raise ConfigError(exc.reason, hint=f"set ${settings.api_key_env} to the key alone (docs/llm.md)") from None
    asked = ask(settings, key, batches, taxonomy, seconds=settings.timeout, summaries=False)
    revised = list(placements)
    answered = 0
    for i, why in weak.items():
        answer = asked.answers.get(str(i))
        if answer is not None and (answer.topic or answer.rejected_topic):
            revised[i] = second_opinion(placements[i], answer, settings.model, why)
            answered += answer.topic is not None
    return SecondOpinions(tuple(revised), len(weak), answered, asked.requests, tuple(sorted(set(asked.failed.values()))))


def run_eval_with_llm(
    config: Config, labels: Path, paper_files: Sequence[Path], *, misses: int = 0, self_teaching: bool | None = None
) -> str:
    """``digest topics eval --llm``: the report with the model's second opinion on the weak
    placements and what it changed, then the grouper's own report."""
    if not config.llm.model.strip():
        raise ConfigError("--llm needs a model: no [llm] model in the config", hint="set [llm] base_url and model (docs/llm.md)")
    taxonomy = configured_taxonomy(config.topics.file)
    label_of = {normalise_title(title): label for title, label, _ in read_labels(labels)}
    measured, note = without_labelled(taxonomy, set(label_of), self_teaching)
    papers = load_papers(snapshot_files_for(labels, paper_files))
    grouper = Grouper(measured)
    found: list[SecondOpinions] = []
    offline: list[Placement] = []
    titles: list[str] = []

    def revise(matched: Sequence[Paper], placements: Sequence[Placement]) -> Sequence[Placement]:
        offline.extend(placements)
        titles.extend(normalise_title(p.title) for p in matched)
        found.append(second_opinions(matched, placements, grouper.taxonomy, config.llm))
        return found[0].placements

    with_model = evaluate(labels, papers, grouper, revise=revise)
    alone = evaluate(labels, papers, grouper)
    opinions = found[0]
    weak = [i for i, p in enumerate(offline) if weak_reason(p) is not None]
    changed = sum(1 for i in weak if opinions.placements[i].topic != offline[i].topic)
    right_before = sum(1 for i in weak if offline[i].topic == label_of[titles[i]])
    right_after = sum(1 for i in weak if opinions.placements[i].topic == label_of[titles[i]])
    lines = [
        f"second opinion of {config.llm.model}: {opinions.weak} of {len(offline)} placements weak, "
        f"{opinions.answered} answered with a topic code in {opinions.requests} requests, {changed} changed",
        f"on the weak placements: the grouper right {right_before}/{len(weak)}, with the model {right_after}/{len(weak)}",
    ]
    if opinions.failures:
        lines.append(f"(no answer for some: {'; '.join(opinions.failures)})")
    report = "\n".join(lines) + "\n" + format_report(with_model, misses=misses)
    report += "\n\nthe grouper alone:\n" + format_report(alone)
    return report + note

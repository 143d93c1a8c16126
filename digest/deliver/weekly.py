"""The weekly channel: one roll-up message per (week, weekly reader) outbox row, sent over SMTP.

The rows are queued by :meth:`WeeklyChannel.queue` (see :mod:`digest.weekly` for when a week's
roll-up goes and what it holds) and sent exactly as the daily email is sent
(:class:`digest.deliver.email.EmailChannel`: the same connections, pacing, marks, retries and
bounces); only the readers (those whose cadence is weekly) and the messages differ.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from digest.config import Config
from digest.deliver import DeliveryContext
from digest.deliver.email import (
    Composer,
    EmailChannel,
    ListInfo,
    MessageBody,
    Reader,
    Selection,
    assemble_body,
    message_options,
    readers,
)
from digest.models import Paper
from digest.render import RenderOptions, anchor, day_path, oneline, probe_digests, register_probes
from digest.store import Delivery, SeenStore
from digest.weekly import CHANNEL, Span, Week, WeekEntry, WeekGroup, covered_digests, full_papers, load_week, queue_rollups, received_daily

WEEKLY_HTML = "weekly.html.j2"
WEEKLY_TEXT = "weekly.txt.j2"


def rollup_subject(week: Week, title: str) -> str:
    """The roll-up's subject: the title, the week's last day and the count, on one line."""
    noun = "paper" if week.size == 1 else "papers"
    return oneline(f"{title} \u2014 week to {week.end:%a %d %b %Y}: {week.size} {noun}")


def rollup_context(week: Week, papers: dict[int, Paper], options: RenderOptions) -> dict[str, Any]:
    """The variables the weekly templates see: the week's days (each with its archive page), and
    per topic the first ``max_per_topic`` papers (each with its day) and the days of the rest."""
    site = options.site_url.rstrip("/")

    def page(date: dt.date, fragment: str = "") -> str:
        return f"{site}/{day_path(date, '.html')}{'#' + fragment if fragment else ''}" if site else ""

    groups = []
    for group in week.groups:
        shown = []
        for entry in group.entries[: options.max_per_topic]:
            paper = papers.get(entry.paper_id, entry.paper)
            shown.append({"paper": paper, "date": entry.date, "day_page": page(entry.date, anchor(paper))})
        groups.append({
            "code": group.code,
            "title": group.title,
            "count": len(group.entries),
            "papers": shown,
            "more": len(group.entries) - len(shown),
            "days": [{"date": d, "page": page(d, group.code)} for d in group.days],
        })
    top = sorted(week.groups, key=lambda g: -len(g.entries))[:4]
    return {
        "title": options.title,
        "subject": rollup_subject(week, options.title),
        "preheader": oneline(", ".join(f"{g.title} ({len(g.entries)})" for g in top)),
        "start": week.start,
        "end": week.end,
        "size": week.size,
        "days": [{"date": d, "count": n, "page": page(d)} for d, n in week.days],
        "groups": groups,
        "excerpt_chars": options.excerpt_chars,
        "site_url": site,
        "unsubscribe": options.unsubscribe,
        "preferences": options.preferences,
    }


def probe_contexts() -> list[dict[str, Any]]:
    """Contexts that take every branch of the weekly HTML template (the email's probe papers spread
    over a week: a topic over ``max_per_topic``, with and without a site, links and upvotes)."""
    digest, options = probe_digests()[0]
    entries = [
        WeekEntry(paper, n, 1, group.code, digest.date - dt.timedelta(days=n), 0.5, n)
        for group in digest.groups for n, paper in enumerate(group.papers, start=len(group.papers) * (group.code == "other"))
    ]
    groups = tuple(
        WeekGroup(group.code, group.title, tuple(e for e in entries if e.topic == group.code)) for group in digest.groups
    )
    papers = {e.paper_id: e.paper for e in entries}
    whole = Week(digest.date - dt.timedelta(days=6), digest.date, groups)
    single = Week(whole.start, whole.end, groups[1:])
    plain = RenderOptions()
    personal = RenderOptions(site_url="https://papers.example.org", unsubscribe="https://papers.example.org/unsubscribe?t=x",
                             preferences="https://papers.example.org/preferences?t=x")
    return [rollup_context(whole, papers, options), rollup_context(single, papers, plain), rollup_context(whole, papers, personal)]


register_probes(WEEKLY_HTML, probe_contexts)


@dataclass(frozen=True, slots=True)
class _Copy:
    """What one reader's copy of a weekly row holds: the digests covered, less those the reader
    already had daily, filtered to their selection."""

    span: Span
    skip: frozenset[int]
    chosen: Selection


class RollupComposer(Composer):
    """Loads each week once, and filters and renders it once per distinct selection."""

    def __init__(self, context: DeliveryContext, info: ListInfo, *, personal: bool = False) -> None:
        super().__init__(context, info, personal=personal)
        self._weeks: dict[Span, tuple[Week, dict[str, set[int]]]] = {}
        self._created: dict[int, dt.datetime] = {}
        self._last_view: tuple[_Copy, Week] | None = None
        self._last_body: tuple[_Copy, MessageBody] | None = None

    def created_at(self, delivery: Delivery) -> dt.datetime:
        """When the row's newest covered digest was stored (its Message-ID is made from it)."""
        if delivery.digest_id not in self._created:
            record = next(r for r in self.context.store.digests(on=delivery.digest_date) if r.id == delivery.digest_id)
            self._created[delivery.digest_id] = record.created_at
        return self._created[delivery.digest_id]

    def week(self, delivery: Delivery) -> tuple[Week, dict[str, set[int]]]:
        """The whole week of a row and who already had which of its digests daily."""
        assert delivery.week_end is not None
        span = Span(delivery.week_end, delivery.digest_id, delivery.week_after)
        if span not in self._weeks:
            store = self.context.store
            ids = covered_digests(store, span)
            first = store.db.execute(f"SELECT MIN(date) FROM digests WHERE id IN ({','.join(map(str, ids))})").fetchone()[0] if ids else None
            start = min(span.start, dt.date.fromisoformat(first)) if first else span.start
            self._weeks = {span: (load_week(store, ids, self.context.taxonomy, start, span.end), received_daily(store, ids))}
        return self._weeks[span]

    def copy(self, delivery: Delivery, reader: Reader) -> tuple[_Copy, Week]:
        """The reader's view of the row's week."""
        week, daily = self.week(delivery)
        assert delivery.week_end is not None
        key = _Copy(Span(delivery.week_end, delivery.digest_id, delivery.week_after),
                    frozenset(daily.get(reader.address.lower(), ())), reader.chosen)
        if self._last_view is None or self._last_view[0] != key:
            self._last_view = (key, week.only(*reader.chosen, skip=key.skip))
        return self._last_view

    def size(self, delivery: Delivery, reader: Reader) -> int:
        """How many papers the reader's roll-up holds."""
        return self.copy(delivery, reader)[1].size

    def message(self, delivery: Delivery, reader: Reader) -> MessageBody:
        """The body of the reader's roll-up (shared by every reader with the same copy)."""
        key, view = self.copy(delivery, reader)
        if self._last_body is None or self._last_body[0] != key:
            self._last_body = (key, render_rollup(view, self.context, self.info, personal=self.personal))
        return self._last_body[1]


def render_rollup(week: Week, context: DeliveryContext, info: ListInfo, *, personal: bool = False) -> MessageBody:
    """Render a (filtered) week as a text part and an inlined-HTML part, with the shared headers."""
    options = message_options(context, info, personal=personal)
    shown = [e for g in week.groups for e in g.entries[: options.max_per_topic]]
    variables = rollup_context(week, full_papers(context.store, shown), options)
    html = context.renderer.render_inlined(WEEKLY_HTML, **variables)
    text = context.renderer.render_template(WEEKLY_TEXT, **variables)
    return assemble_body(variables["subject"], week.size, text, html, context, info, personal=personal)


class WeeklyChannel(EmailChannel):
    """Sends each pending (week, weekly reader) row as one roll-up email, filtered to the reader's
    topics and arXiv categories; a roll-up with nothing for the reader is skipped."""

    name = CHANNEL
    sends_empty = False

    def rows(self, config: Config, store: SeenStore) -> list[str]:
        """No row per digest (:meth:`queue` makes the weekly rows); the secrets are checked before
        the commit all the same."""
        super().rows(config, store)
        return []

    def readers(self, config: Config, store: SeenStore) -> dict[str, Reader]:
        """The weekly readers: config recipients and subscribers whose cadence is weekly."""
        return readers(config, store, "weekly")

    def composer(self, context: DeliveryContext, info: ListInfo, *, personal: bool) -> Composer:
        """Renders each week once per distinct copy."""
        return RollupComposer(context, info, personal=personal)

    def queue(self, config: Config, store: SeenStore, day: dt.date, now: dt.datetime) -> int:
        """Decide the roll-ups due by ``day`` and queue their rows (:func:`digest.weekly.queue_rollups`).

        With email disabled the week ends are decided all the same, with no rows: enabling it later
        does not send weeks that went by.
        """
        found = self.readers(config, store) if config.email.enabled else {}
        return queue_rollups(store, {r.address: r.weekday or 0 for r in found.values()}, day, now)

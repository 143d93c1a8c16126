"""The weekly roll-up: one message a week with the week's papers, for readers whose cadence is weekly.

When a roll-up goes
    A reader's week ends on their weekday (``weekday``, 0 = Monday).  Every ``digest run`` decides
    the roll-ups of the week ends after the last decided one up to its digest date
    (:func:`queue_rollups`): the run on a Monday decides Monday's; when the machine was off on
    Monday, the next run (however many days later) decides it, once.  A run with a past ``--date``
    decides none: its digest goes in the next roll-up.  Deciding a
    week end queues one ``weekly`` outbox row for each weekly reader of that weekday whose week has
    papers, in one transaction with the ``rollups`` row that marks it decided; the rows are then
    sent like the daily email (pending -> sent/failed, retried, never sent twice).  A reader who
    turns weekly after their week end was decided waits for the next one.

What a roll-up holds
    The papers of the digests dated the 7 days ending the week end, stored when it was decided
    (nothing stored later changes a queued message).  A reader who also had last week's roll-up
    gets, instead, every digest stored since that one up to the week end: a digest stored after a
    week was decided (a second run on the weekday) goes out the next week, not never.  Per topic
    the papers are ranked by upvotes where the source gives them (Hugging Face), then by the
    grouper's score; the message shows the first ``max_per_topic`` of each and links to each day's
    archive page.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from digest.categories import matches
from digest.models import Paper
from digest.recall import topic_order
from digest.store import CATEGORIES_VERSION, SeenStore
from digest.topics import Taxonomy

WEEK = 7
CHANNEL = "weekly"


@dataclass(frozen=True, slots=True)
class WeekEntry:
    """One paper of a week, as the ranking and the filters need it (no abstract)."""

    paper: Paper
    paper_id: int
    digest_id: int
    topic: str
    date: dt.date
    score: float
    rank: int


@dataclass(frozen=True, slots=True)
class WeekGroup:
    """One topic of a week: its papers ranked, the days it had papers."""

    code: str
    title: str
    entries: tuple[WeekEntry, ...]

    @property
    def days(self) -> tuple[dt.date, ...]:
        """The days this topic had papers, oldest first."""
        return tuple(sorted({e.date for e in self.entries}))


@dataclass(frozen=True, slots=True)
class Week:
    """The papers of some stored digests between ``start`` and ``end``, by topic, ranked."""

    start: dt.date
    end: dt.date
    groups: tuple[WeekGroup, ...]

    @property
    def size(self) -> int:
        """How many papers the week holds."""
        return sum(len(g.entries) for g in self.groups)

    @property
    def days(self) -> tuple[tuple[dt.date, int], ...]:
        """(date, papers) of each day with papers, oldest first."""
        counts: dict[dt.date, int] = {}
        for group in self.groups:
            for entry in group.entries:
                counts[entry.date] = counts.get(entry.date, 0) + 1
        return tuple(sorted(counts.items()))

    def only(self, topics: Sequence[str], categories: Sequence[str] = (), *, skip: Iterable[int] = ()) -> Week:
        """This week with only ``topics`` (empty: all) and papers in ``categories`` (empty: all),
        without the papers of the digests in ``skip``."""
        wanted, left_out = set(topics), set(skip)
        groups = []
        for group in self.groups:
            if wanted and group.code not in wanted:
                continue
            entries = tuple(
                e for e in group.entries
                if e.digest_id not in left_out and (not categories or matches(e.paper.categories, categories))
            )
            if entries:
                groups.append(WeekGroup(group.code, group.title, entries))
        return Week(self.start, self.end, tuple(groups))


def ranking(entry: WeekEntry) -> tuple[bool, int, float, dt.date, int]:
    """The order of a topic's papers in a week: most upvotes first (papers with upvotes before
    those without), then the grouper's highest score, then the oldest day and its rank."""
    return entry.paper.upvotes is None, -(entry.paper.upvotes or 0), -entry.score, entry.date, entry.rank


def load_week(store: SeenStore, digest_ids: Sequence[int], taxonomy: Taxonomy, start: dt.date, end: dt.date) -> Week:
    """The papers the given digests filed, grouped by topic (taxonomy order) and ranked (:func:`ranking`).

    Reads a light row per paper (no abstract): a week of big days is not held whole.
    """
    if not digest_ids:
        return Week(start, end, ())
    ids = ",".join(str(int(i)) for i in digest_ids)
    categories = "p.categories" if store.schema_version >= CATEGORIES_VERSION else "'[]'"
    rows = store.db.execute(
        f"SELECT dp.digest_id, d.date, dp.topic, dp.rank, dp.why, p.id, p.title, p.url, p.arxiv_id, p.doi, p.upvotes, p.source,"
        f" {categories} AS categories FROM digest_papers dp JOIN digests d ON d.id = dp.digest_id"
        f" JOIN papers p ON p.id = dp.paper_id WHERE dp.digest_id IN ({ids})"
    )
    by_topic: dict[str, list[WeekEntry]] = {}
    for digest_id, date, topic, rank, why, paper_id, title, url, arxiv_id, doi, upvotes, source, cats in rows:
        paper = Paper(
            title=title, url=url, arxiv_id=arxiv_id, doi=doi, upvotes=upvotes, source=source,
            categories=tuple(json.loads(cats)) if cats and cats != "[]" else (),
        )
        score = float(json.loads(why).get("score", 0.0)) if why and why != "{}" else 0.0
        by_topic.setdefault(topic, []).append(WeekEntry(paper, paper_id, digest_id, topic, dt.date.fromisoformat(date), score, rank))
    groups = tuple(
        WeekGroup(code, title, tuple(sorted(by_topic[code], key=ranking))) for code, title in topic_order(taxonomy, by_topic)
    )
    return Week(start, end, groups)


def full_papers(store: SeenStore, entries: Iterable[WeekEntry]) -> dict[int, Paper]:
    """The stored papers (abstracts, authors) of ``entries``, by paper id: what a message shows."""
    return store.papers_by_ids(e.paper_id for e in entries)


# -- deciding and queueing -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Span:
    """Which stored digests a weekly row covers: up to digest ``upto`` and date ``end``, and either
    after digest ``after`` or (``after`` None) dated the 7 days ending ``end``."""

    end: dt.date
    upto: int
    after: int | None

    @property
    def start(self) -> dt.date:
        """The first day of the week ending ``end``."""
        return self.end - dt.timedelta(days=WEEK - 1)


def covered_digests(store: SeenStore, span: Span) -> list[int]:
    """The ids of the stored digests a span covers, oldest first."""
    if span.after is None:
        rows = store.db.execute(
            "SELECT id FROM digests WHERE id <= ? AND date <= ? AND date >= ? ORDER BY date, id",
            (span.upto, span.end.isoformat(), span.start.isoformat()),
        )
    else:
        rows = store.db.execute(
            "SELECT id FROM digests WHERE id <= ? AND id > ? AND date <= ? ORDER BY date, id",
            (span.upto, span.after, span.end.isoformat()),
        )
    return [r[0] for r in rows]


def week_end_of(day: dt.date, weekday: int) -> dt.date:
    """The last date on or before ``day`` that falls on ``weekday`` (0 = Monday)."""
    return day - dt.timedelta(days=(day.weekday() - weekday) % WEEK)


def queue_rollups(store: SeenStore, readers: Mapping[str, int], day: dt.date, now: dt.datetime) -> int:
    """Decide the roll-ups of the week ends after the last decided one up to ``day`` (the 7 days
    ending ``day`` on a store with none decided yet) and queue a
    weekly outbox row for each reader (address -> weekday) of that weekday whose week has papers.

    One transaction: the ``rollups`` rows and the outbox rows are stored together or not at all,
    so a run killed here decides them again next time, and a decided week end is never queued
    twice.  Returns how many rows were queued.
    """
    last = store.db.execute("SELECT MAX(week_end) FROM rollups").fetchone()[0]
    # the week ends after the last decided one: all of them when the machine was off past a weekday;
    # none before it (a run with a past --date: its digest goes in the next roll-up, after the last one)
    first = dt.date.fromisoformat(last) + dt.timedelta(days=1) if last is not None else day - dt.timedelta(days=WEEK - 1)
    ends = [first + dt.timedelta(days=n) for n in range((day - first).days + 1)]
    if not ends:
        return 0
    stamp = now.astimezone(dt.timezone.utc).isoformat(timespec="seconds")
    queued = 0
    with store.transaction() as db:
        for end in ends:
            # the newest digest the week can hold (one dated after it, a run that read a missed
            # weekday's listing the day after, is the next week's)
            newest = db.execute("SELECT MAX(id) FROM digests WHERE date <= ?", (end.isoformat(),)).fetchone()[0]
            db.execute("INSERT INTO rollups (week_end, digest_id, created_at) VALUES (?, ?, ?)", (end.isoformat(), newest, stamp))
            chosen = [address for address, weekday in readers.items() if weekday == end.weekday()]
            if newest is None or not chosen:
                continue
            previous = _previous_rows(store, end)
            has_papers: dict[int | None, bool] = {}
            rows = []
            for address in chosen:
                after = previous.get(address.lower())
                if after is not None and after >= newest:
                    continue  # last week's roll-up already covered every stored digest
                if after not in has_papers:
                    has_papers[after] = bool(covered_digests(store, Span(end, newest, after)))
                if has_papers[after]:
                    rows.append((newest, CHANNEL, address, stamp, end.isoformat(), after))
            db.executemany(
                "INSERT INTO deliveries (digest_id, channel, recipient, updated_at, week_end, week_after)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                rows,
            )
            queued += len(rows)
    return queued


def _previous_rows(store: SeenStore, end: dt.date) -> dict[str, int]:
    """Each reader's newest digest covered by a weekly row of the 13 days before ``end``, by lower-cased address
    (a reader who moved their weekday later, after this week's was decided, has their last one 8 to 13 days back)."""
    rows = store.db.execute(
        "SELECT recipient, digest_id FROM deliveries WHERE week_end >= ? AND week_end < ? AND channel = ?",
        ((end - dt.timedelta(days=2 * WEEK - 1)).isoformat(), end.isoformat(), CHANNEL),
    )
    found: dict[str, int] = {}
    for address, digest_id in rows:
        key = address.lower()
        found[key] = max(found.get(key, 0), digest_id)
    return found


def received_daily(store: SeenStore, digest_ids: Sequence[int]) -> dict[str, set[int]]:
    """The digests among ``digest_ids`` each address was sent as a daily email (a reader who turned
    weekly mid-week does not get those days again), by lower-cased address."""
    if not digest_ids:
        return {}
    ids = ",".join(str(int(i)) for i in digest_ids)
    rows = store.db.execute(
        f"SELECT recipient, digest_id FROM deliveries WHERE channel = 'email' AND state = 'sent'"
        f" AND last_error IS NULL AND digest_id IN ({ids})"
    )
    found: dict[str, set[int]] = {}
    for address, digest_id in rows:
        found.setdefault(address.lower(), set()).add(digest_id)
    return found

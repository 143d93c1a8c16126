"""The archive channel: the Markdown archive under ``archive/``, rebuilt from the store.

Layout (file names come only from dates and topic codes, never from feed text)::

    archive/YYYY/MM/YYYY-MM-DD.md   a day's page (YAML front matter), with .html and .txt beside it
    archive/index.md                every day, newest first, grouped by month, with its count
    archive/topics/<code>.md        a topic's landing page: its months, newest first, with their counts
    archive/topics/<code>/YYYY-MM.md  every paper filed under the topic that month, newest day first
    archive/feed.xml                Atom, one entry per day page, the newest ``FEED_ENTRIES``

Every file is written atomically (a temp file renamed over the old one), so a crash mid-write
never leaves a half-written page.  Pages are rendered from the store, so the same store always
gives byte-identical files and ``sync_archive(..., rebuild=True)`` (``digest site --rebuild``)
recreates the whole folder from the store alone.

A run's cost follows its new papers, not the history: after writing its day pages it writes
only the month pages of the (topic, month) pairs those days touch, plus the index, the topic
landing pages (a line per month) and the feed (the newest days).  It reads only the digests of
the months it shows (:func:`run_index_since`); the month counts and totals come from the store's
per-topic, per-month counts, never from the paper rows or every digest.  The index and the
month pages are not rendered whole either: the new sections are spliced in front of the older
sections already on disk (committed days never change), which gives the bytes a full render
would and is checked before it is used (:func:`splice_sections`, :class:`RunPages`).
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import Any, TypeVar

from digest import faults
from digest.config import Config
from digest.deliver import ChannelResult, DeliveryContext
from digest.fileio import AtomicBatch
from digest.models import Digest
from digest.recall import load_day, topic_order
from digest.render import Renderer, RenderOptions, anchor_for_key, day_path
from digest.store import MONTH_COUNTS_VERSION, Delivery, FiledPaper, SeenStore
from digest.deliver.weeks import iso_week, iso_week_digests, monday_of, week_path, write_week_pages
from digest.topics import Taxonomy

INDEX_MD = "archive/index.md.j2"
TOPIC_MD = "archive/topic.md.j2"
TOPIC_MONTH_MD = "archive/topic-month.md.j2"
FEED_XML = "archive/feed.xml.j2"
FEED_ENTRIES = 50

Section = TypeVar("Section")


def write_digest_files(
    digest: Digest, folder: Path, renderer: Renderer, options: RenderOptions, *, nested: bool = True, batch: AtomicBatch | None = None
) -> dict[str, Path]:
    """Render a digest and write ``YYYY-MM-DD.md/.html/.txt``; return their paths by format.

    With ``nested`` the files go to ``folder/YYYY/MM/`` (the archive layout), else to ``folder``.
    With ``batch`` the files are in place when the batch ends, else on return.
    The ``.html`` is a page for a browser: the email's HTML with its stylesheet left in a
    ``<style>`` block (inlining, which mail clients need, is the email channel's job and costs
    premailer's import and a pass over the page).
    """
    rendered = renderer.render(digest, options, inline_css=False, markdown=False)  # Markdown is streamed below
    base = folder / day_path(digest.date, "") if nested else folder / digest.date.isoformat()
    outputs = {
        "markdown": base.with_name(base.name + ".md"),
        "html": base.with_name(base.name + ".html"),
        "text": base.with_name(base.name + ".txt"),
    }
    with nullcontext(batch) if batch is not None else AtomicBatch() as files:
        files.write(outputs["markdown"], renderer.stream_markdown(digest, options))
        files.write(outputs["html"], rendered.html)
        files.write(outputs["text"], rendered.text)
    return outputs


def render_options(config: Config, now: dt.datetime | None = None) -> RenderOptions:
    """Template options from the config (no clock unless ``now`` is given: archive pages never need one)."""
    return RenderOptions(
        title=config.archive.title,
        site_url=config.archive.site_url,
        max_per_topic=config.email.max_per_topic,
        excerpt_chars=config.render.excerpt_chars,
        generated_at=now,
    )


class ArchiveChannel:
    """Writes each stored day's page (every digest of that date) under ``[archive] dir``,
    then rebuilds the index, the topic pages and the feed from the store."""

    name = "archive"

    def rows(self, config: Config, store: SeenStore) -> list[str]:
        """One archive row per digest."""
        return [""]

    def deliver(self, pending: Sequence[Delivery], context: DeliveryContext) -> ChannelResult:
        """Write the pending rows' day pages and the pages built from them; a write error leaves rows pending."""
        config, store = context.config, context.store
        outputs: dict[dt.date, dict[str, Path]] = {}
        written: list[Delivery] = []
        failed = False
        first_error: str | None = None
        try:
            with AtomicBatch() as batch:  # the run's files are made durable together, then renamed
                for delivery in pending:
                    try:
                        if delivery.digest_date not in outputs:
                            day = load_day(store, delivery.digest_date, context.taxonomy)
                            outputs[delivery.digest_date] = write_digest_files(
                                day, config.archive.dir, context.renderer, render_options(config, context.now), batch=batch
                            )
                    except OSError as exc:
                        first_error = first_error or _write_error(config, exc)
                        store.mark_delivery(delivery.id, "pending", now=context.now, error=_write_error(config, exc))
                        failed = True
                        continue
                    written.append(delivery)
                if written:  # (a day whose page failed is in the store: the index and month pages list it too)
                    days = {delivery.digest_date for delivery in pending}
                    write_archive_pages(store, config, context.taxonomy, context.renderer, dates=days, batch=batch)
                    write_week_pages(store, config, context.taxonomy, context.renderer, days, batch=batch)
        except OSError as exc:
            error = _write_error(config, exc)
            for delivery in written:
                store.mark_delivery(delivery.id, "pending", now=context.now, error=error)
            return ChannelResult("failed", True, outputs, error=error)
        if written:
            faults.crash_point("archive-written")
        for delivery in written:
            store.mark_delivery(delivery.id, "sent", now=context.now)
        if written:
            faults.crash_point("archive-marked")
        return ChannelResult("failed" if failed else "done", failed, outputs, error=first_error)


def _write_error(config: Config, exc: OSError) -> str:
    return f"{exc.filename or config.archive.dir}: {exc.strerror or exc}"


# -- the pages built from the store ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ArchiveDay:
    """One day page: its date, how many papers, per-topic counts and its newest digest's time."""

    date: dt.date
    count: int
    updated: dt.datetime
    digest_ids: tuple[int, ...]
    topics: tuple[tuple[str, int], ...]

    @property
    def month(self) -> str:
        """The month heading it goes under in the index, e.g. "March 2025"."""
        return month_label(self.date)


@dataclass(frozen=True, slots=True)
class TopicMonth:
    """One month page of a topic: the month (``YYYY-MM``), its papers and the digests they come from."""

    month: str
    label: str
    count: int
    filed: tuple[tuple[int, int], ...]

    @property
    def digest_ids(self) -> tuple[int, ...]:
        """The digests that filed papers under the topic this month."""
        return tuple(digest_id for digest_id, _ in self.filed)


@dataclass(frozen=True, slots=True)
class ArchiveTopic:
    """One topic: its landing page lists its months (newest first), each month has a page."""

    code: str
    title: str
    description: str
    count: int
    months: tuple[TopicMonth, ...]


@dataclass(frozen=True, slots=True)
class ArchiveIndex:
    """What the index, topic pages and feed are made of, read from the store without paper rows.

    A run's index (``since`` set) holds only the days from ``since`` on (whole months: those a
    run writes, the one before them and the feed's) and only their months' digests; every
    topic month's count and the archive's totals are there all the same.
    """

    days: tuple[ArchiveDay, ...]
    topics: tuple[ArchiveTopic, ...]
    papers: int
    day_count: int
    since: dt.date | None = None

    @property
    def count(self) -> int:
        """Papers in the whole archive."""
        return self.papers

    def topic_title(self, code: str) -> str:
        """The title a topic's page and headings show."""
        return next((t.title for t in self.topics if t.code == code), code)

    def touched_months(self, dates: Iterable[dt.date]) -> set[tuple[str, str]]:
        """The (topic code, ``YYYY-MM``) month pages that list papers of the days ``dates``."""
        wanted = set(dates)
        return {(code, month_key(day.date)) for day in self.days if day.date in wanted for code, _ in day.topics}


@dataclass(frozen=True, slots=True)
class DayPapers:
    """The papers of one topic page filed on one day (in day page order)."""

    date: dt.date
    papers: tuple[FiledPaper, ...]


def month_key(date: dt.date) -> str:
    """The month a date's papers are filed under on topic pages: ``YYYY-MM``."""
    return date.isoformat()[:7]  # (strftime costs ~4x as much, once per day of the archive)


def month_label(date: dt.date) -> str:
    """A month's heading, e.g. "March 2025"."""
    return f"{date:%B %Y}"


@functools.lru_cache(maxsize=1024)  # every topic repeats the archive's months
def label_of_month(month: str) -> str:
    """The heading of a ``YYYY-MM`` month, e.g. "March 2025"."""
    return month_label(dt.date.fromisoformat(month + "-01"))


def topic_path(code: str, suffix: str) -> str:
    """The archive path of a topic's landing page: ``topics/<code><suffix>``."""
    return f"topics/{code}{suffix}"


def topic_month_path(code: str, month: str, suffix: str) -> str:
    """The archive path of a topic's month page: ``topics/<code>/YYYY-MM<suffix>``."""
    return f"topics/{code}/{month}{suffix}"


def load_archive_index(store: SeenStore, taxonomy: Taxonomy, *, since: dt.date | None = None) -> ArchiveIndex:
    """The archive's days (newest first) and topics (taxonomy order) from small queries.

    They read one row per digest (and topic), never the paper rows.  With ``since`` (the first
    of a month) only the digests from that date on are read, and the topics' month counts and
    the totals come from the store's per-month aggregate: a run's cost then follows the months
    it shows, not the years of history.
    """
    per_digest: dict[int, dict[str, int]] = {}
    per_topic: dict[str, list[tuple[int, int]]] = {}
    for topic, digest_id, count in store.filed_counts(since=since):
        per_digest.setdefault(digest_id, {})[topic] = count
        per_topic.setdefault(topic, []).append((digest_id, count))
    records = store.digests(newest_first=True, since=since)
    dates = {r.id: r.date for r in records}
    if since is None:
        by_month = {code: _months_of(filed, dates) for code, filed in per_topic.items()}
    else:
        by_month = {}
        for code, month, count in store.topic_month_counts():
            by_month.setdefault(code, {})[month] = (count, ())
        for code, filed in per_topic.items():  # the months from ``since`` on, with their digests
            by_month.setdefault(code, {}).update(_months_of(filed, dates))
    order = topic_order(taxonomy, by_month)
    days = []
    for date, group in groupby(records, key=lambda r: r.date):
        day_records = list(group)
        ids = sorted(r.id for r in day_records)
        totals: dict[str, int] = {}
        for digest_id in ids:
            for topic, count in per_digest.get(digest_id, {}).items():
                totals[topic] = totals.get(topic, 0) + count
        days.append(
            ArchiveDay(
                date, sum(totals.values()), max(r.created_at for r in day_records), tuple(ids),
                tuple((c, totals[c]) for c, _ in order if c in totals),
            )
        )
    codes = set(taxonomy.codes())
    topics = tuple(
        ArchiveTopic(
            code,
            title,
            taxonomy.topic(code).description if code in codes else "",
            sum(count for count, _ in by_month[code].values()),
            tuple(
                TopicMonth(month, label_of_month(month), count, filed)
                for month, (count, filed) in sorted(by_month[code].items(), reverse=True)
            ),
        )
        for code, title in order
    )
    days_with_papers = tuple(d for d in days if d.count)
    if since is None:
        return ArchiveIndex(days_with_papers, topics, sum(d.count for d in days_with_papers), len(days_with_papers))
    return ArchiveIndex(days_with_papers, topics, sum(t.count for t in topics), store.archive_day_count(), since)


def _months_of(filed: Iterable[tuple[int, int]], dates: dict[int, dt.date]) -> dict[str, tuple[int, tuple[tuple[int, int], ...]]]:
    """A topic's (digest id, papers) rows by month: the month's papers and its rows in date order."""
    by_month: dict[str, list[tuple[dt.date, int, int]]] = {}
    for digest_id, count in filed:
        date = dates[digest_id]
        by_month.setdefault(month_key(date), []).append((date, digest_id, count))
    return {
        month: (sum(n for _, _, n in rows), tuple((i, n) for _, i, n in sorted(rows))) for month, rows in by_month.items()
    }


def papers_by_day(papers: Iterable[FiledPaper]) -> list[DayPapers]:
    """Filed papers (newest date first) grouped into one run per day."""
    return [DayPapers(date, tuple(group)) for date, group in groupby(papers, key=lambda p: p.date)]


def month_papers(store: SeenStore, topic: ArchiveTopic, month: TopicMonth) -> list[DayPapers]:
    """The papers of one topic month, newest day first: one indexed query over that month's digests."""
    return papers_by_day(store.filed_papers(topic=topic.code, digest_ids=month.digest_ids))


def feed_ids(options: RenderOptions) -> tuple[str, str]:
    """The feed's Atom id and the base entry ids are built from: stable, from the config alone."""
    base = options.site_url.rstrip("/") or f"digest:{options.title}"
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, base + '/feed.xml')}", base


def index_months(days: Iterable[ArchiveDay]) -> list[dict[str, Any]]:
    """The index page's sections: one per month, newest first, with its days."""
    return [
        {"label": label, "id": f"m-{group[0].date:%Y-%m}", "days": group}
        for label, group in ((label, list(days)) for label, days in groupby(days, key=lambda d: d.month))
    ]


def archive_context(index: ArchiveIndex, options: RenderOptions) -> dict[str, Any]:
    """The variables the archive and site templates share (made once per index: its months
    group every day of it)."""
    return {
        "index": index,
        "days": index.days,
        "months": index_months(index.days),
        "topics": index.topics,
        "title": options.title,
        "site_url": options.site_url.rstrip("/"),
        "day_path": day_path,
        "week_path": week_path,
        "anchor_for_key": anchor_for_key,
    }


def render_topic_md(context: dict[str, Any], topic: ArchiveTopic, renderer: Renderer) -> str:
    """``topics/<code>.md``: the topic's landing page, its months newest first with their counts."""
    return renderer.render_template(TOPIC_MD, **context, topic=topic)


def render_topic_month_md(store: SeenStore, context: dict[str, Any], topic: ArchiveTopic, month: TopicMonth, renderer: Renderer) -> str:
    """``topics/<code>/YYYY-MM.md``: every paper filed under the topic that month, newest day first."""
    return renderer.render_template(TOPIC_MONTH_MD, **context, topic=topic, month=month, by_day=month_papers(store, topic, month))


def splice_sections(page: Callable[[Sequence[Section]], str], fresh: Sequence[Section], older: Section, old: str) -> str | None:
    """A page of sections (newest first) with its ``fresh`` sections rendered and the older
    ones copied from ``old``, the page on disk; None when that is not shown to be safe.

    ``page(sections)`` renders the page with those sections; ``older`` is the start of the newest
    older section (its heading and first item), which must be in ``old`` verbatim.  The result is
    the bytes a full render would give when the page renders as a header then one section after
    another with nothing after the last, and the older sections never change: so that is checked
    first (on the one-item section: the fresh ones are not rendered twice, on a big day that would
    double the cost), and a template change, which changes ``older``'s text, is not found in ``old``.
    """
    header, head, start = page(()), page(fresh), page((older,))
    section = start[len(header) :]
    if not (head.startswith(header) and start.startswith(header)) or page((older, older)) != start + section:
        return None
    at = old.find(section)
    return head + old[at:] if at >= 0 else None


def splice_topic_month_md(
    store: SeenStore,
    context: dict[str, Any],
    topic: ArchiveTopic,
    month: TopicMonth,
    renderer: Renderer,
    *,
    old: str,
    fresh: Collection[dt.date],
) -> str | None:
    """The month page with its ``fresh`` days rendered and the older days' sections copied from ``old``.

    A month page is a header and then one section per day, newest first, and a committed day's
    papers never change: when a run's days are the newest of the month, the page is the new
    header, the new days' sections, and the rest of ``old`` from the section of the newest older
    day on (:func:`splice_sections`).  That costs the new papers plus the first paper of one
    older day, not the whole month.  None (render the page whole) unless the fresh days lead
    the month and the splice is shown to be safe.
    """
    dates = {digest_id: day.date for day in context["days"] for digest_id in day.digest_ids}
    days = sorted({dates[digest_id] for digest_id in month.digest_ids}, reverse=True)
    lead = 0
    while lead < len(days) and days[lead] in fresh:
        lead += 1
    if lead == 0 or lead == len(days) or any(day in fresh for day in days[lead:]):
        return None
    fresh_days = papers_by_day(
        store.filed_papers(topic=topic.code, digest_ids=[i for i in month.digest_ids if dates[i] in fresh])
    )
    # The older day's section is found by its start (its heading and first paper): reading and
    # rendering it whole would cost that day's size.
    older = papers_by_day(
        store.filed_papers(topic=topic.code, digest_ids=[i for i in month.digest_ids if dates[i] == days[lead]], per_topic=1)
    )
    if [d.date for d in fresh_days] != days[:lead] or not older:
        return None

    def page(sections: Sequence[DayPapers]) -> str:
        return renderer.render_template(TOPIC_MONTH_MD, **context, topic=topic, month=month, by_day=sections)

    return splice_sections(page, fresh_days, DayPapers(older[0].date, older[0].papers[:1]), old)


def render_feed(store: SeenStore, context: dict[str, Any], renderer: Renderer, options: RenderOptions) -> str:
    """``feed.xml``: Atom, one entry per day page, the newest ``FEED_ENTRIES``, dated by the store."""
    index: ArchiveIndex = context["index"]
    days = index.days[:FEED_ENTRIES]
    filed = store.filed_papers(digest_ids=[i for d in days for i in d.digest_ids], per_topic=options.max_per_topic)
    by_date = {d.date: d.papers for d in papers_by_day(filed)}
    feed_id, base = feed_ids(options)
    entries = [
        {
            "day": day,
            "id": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{base}/{day.date.isoformat()}')}",
            "href": f"{options.site_url.rstrip('/')}/{day_path(day.date, '.html')}" if options.site_url else day_path(day.date, ".html"),
            "groups": [
                (code, index.topic_title(code), n, [p for p in by_date.get(day.date, ()) if p.topic == code][: options.max_per_topic])
                for code, n in day.topics
            ],
        }
        for day in days
    ]
    weeks: dict[dt.date, list[ArchiveDay]] = {}
    for day in days:
        weeks.setdefault(monday_of(day.date), []).append(day)
    site = options.site_url.rstrip("/")
    week_entries = []
    for monday, its_days in weeks.items():
        counts: dict[str, int] = {}
        for day in its_days:
            for code, n in day.topics:
                counts[code] = counts.get(code, 0) + n
        if len(days) == FEED_ENTRIES and monday == monday_of(days[-1].date):
            # the oldest week may begin before the feed's days: counted whole, as its page counts it
            whole = store.topic_counts(iso_week_digests(store, monday))
            counts = {code: whole[code] for code in [*counts, *sorted(whole)] if code in whole}
        week_entries.append({
            "label": iso_week(monday),
            "id": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{base}/weeks/{iso_week(monday)}')}",
            "href": f"{site}/{week_path(monday, '.html')}" if site else week_path(monday, ".html"),
            "updated": max(d.updated for d in its_days),
            "count": sum(counts.values()),
            "groups": [(code, index.topic_title(code), n) for code, n in counts.items()],
        })
    return renderer.render_template(
        FEED_XML,
        **context,
        feed_id=feed_id,
        updated=max((d.updated for d in days), default=None),
        entries=entries,
        week_entries=week_entries,
    )


def run_index_since(store: SeenStore, fresh: Collection[dt.date]) -> dt.date | None:
    """The first day of the oldest month a run's pages show: the months of the days it wrote
    (``fresh``), the month of the newest older day (its index section is spliced after them) and
    the feed's; None when the store has no per-month counts to stand in for the rest."""
    if not fresh or store.schema_version < MONTH_COUNTS_VERSION:
        return None
    since = min(fresh).replace(day=1)
    shown = store.newest_filed_dates(1, before=since) + store.newest_filed_dates(FEED_ENTRIES)[-1:]
    return min([since, *(day.replace(day=1) for day in shown)])


class RunPages:
    """The index and month pages a run writes, from a run's index (``index.since`` set: only the
    newest months' days), spliced into the pages on disk where that can be done.

    The index page's sections for the months of the days written (``fresh``) are rendered and
    the older months' copied; month pages listing those days get their new days spliced in; any
    page missing under ``folder`` is rendered whole.  What needs more than the run's index (a
    missing older month page, an index page that cannot be spliced) is rendered from the whole
    index, loaded once when first needed.
    """

    def __init__(self, store: SeenStore, taxonomy: Taxonomy, folder: Path, index: ArchiveIndex, fresh: Iterable[dt.date]) -> None:
        self.store, self.taxonomy, self.folder, self.index = store, taxonomy, folder, index
        self.fresh = frozenset(fresh)
        self.touched = index.touched_months(self.fresh)
        self._whole: dict[str, Any] | None = None
        self._on_disk: dict[str, frozenset[str]] = {}

    def whole(self, options: RenderOptions) -> dict[str, Any]:
        """The template context of the whole archive's index (loaded once, when first needed)."""
        if self._whole is None:
            index = self.index if self.index.since is None else load_archive_index(self.store, self.taxonomy)
            self._whole = archive_context(index, options)
        return self._whole

    def _month_page_on_disk(self, topic: str, month: str) -> bool:
        """Whether the topic's month page exists (its folder listed once: a stat per page and
        run would cost a topic's months every run)."""
        if topic not in self._on_disk:
            try:
                self._on_disk[topic] = frozenset(os.listdir(self.folder / topic_path(topic, "")))
            except OSError:
                self._on_disk[topic] = frozenset()
        return f"{month}.md" in self._on_disk[topic]

    def _old(self, name: str) -> str | None:
        try:
            return (self.folder / name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    def index_md(self, context: dict[str, Any], renderer: Renderer, options: RenderOptions) -> str:
        """``index.md``: the run's months rendered, the older months' sections kept from the page on disk.

        ``context`` is the run's index's (:func:`archive_context`).
        """
        if self.index.since is not None:
            months = context["months"]
            first_fresh = month_key(min(self.fresh))
            lead = [m for m in months if month_key(m["days"][0].date) >= first_fresh]
            older = months[len(lead) :]
            if not older:  # nothing older than the run's months: the run's index holds every day
                return renderer.render_template(INDEX_MD, **context)
            old = self._old("index.md")
            if old is not None:

                def page(sections: Sequence[dict[str, Any]]) -> str:
                    return renderer.render_template(INDEX_MD, **{**context, "months": sections})

                spliced = splice_sections(page, lead, {**older[0], "days": older[0]["days"][:1]}, old)
                if spliced is not None:
                    return spliced
        return renderer.render_template(INDEX_MD, **self.whole(options))

    def month_page(
        self, context: dict[str, Any], topic: ArchiveTopic, month: TopicMonth, renderer: Renderer, options: RenderOptions
    ) -> str | None:
        """The month page's new text, or None when the run leaves it as it is."""
        name = topic_month_path(topic.code, month.month, ".md")
        if (topic.code, month.month) in self.touched:
            old = self._old(name)
            if old is not None:
                spliced = splice_topic_month_md(self.store, context, topic, month, renderer, old=old, fresh=self.fresh)
                if spliced is not None:
                    return spliced
        elif self._month_page_on_disk(topic.code, month.month):
            return None
        if not month.filed:  # a month before the run's index (its page went missing)
            context = self.whole(options)
            topic = next(t for t in context["index"].topics if t.code == topic.code)
            month = next(m for m in topic.months if m.month == month.month)
        return render_topic_month_md(self.store, context, topic, month, renderer)


def archive_pages(
    store: SeenStore,
    index: ArchiveIndex,
    renderer: Renderer,
    options: RenderOptions,
    run: RunPages | None = None,
) -> Iterator[tuple[str, str]]:
    """The pages built from the store, by path relative to the archive, rendered one at a time:
    the index, each topic's landing page and month pages, the feed.

    ``run`` picks and writes the index and month pages of a run (all of them are rendered whole
    from ``index`` when None).  The others are small (a line per topic month, the newest days):
    their cost does not follow the number of papers or days stored.
    """
    context = archive_context(index, options)
    yield "index.md", run.index_md(context, renderer, options) if run else renderer.render_template(INDEX_MD, **context)
    for topic in index.topics:
        yield topic_path(topic.code, ".md"), render_topic_md(context, topic, renderer)
        for month in topic.months:
            text = (
                render_topic_month_md(store, context, topic, month, renderer)
                if run is None
                else run.month_page(context, topic, month, renderer, options)
            )
            if text is not None:
                yield topic_month_path(topic.code, month.month, ".md"), text
    yield "feed.xml", render_feed(store, context, renderer, options)


def write_archive_pages(
    store: SeenStore,
    config: Config,
    taxonomy: Taxonomy,
    renderer: Renderer,
    *,
    dates: Iterable[dt.date] | None = None,
    batch: AtomicBatch | None = None,
) -> list[Path]:
    """Write the index, topic pages and feed from the store (those that changed); return them.

    With ``dates`` (the days a run just wrote) the run's index is read (:func:`run_index_since`),
    the index page and the month pages listing those days are spliced into the pages on disk
    (:class:`RunPages`), and any month page missing on disk is written (an archive from before
    month pages, a deleted file); without, the whole index is read and every page rendered
    whole.  With ``batch`` the files are in place when the batch ends, else on return.
    """
    folder = config.archive.dir
    if dates is None:
        index, run = load_archive_index(store, taxonomy), None
    else:
        fresh = frozenset(dates)
        index = load_archive_index(store, taxonomy, since=run_index_since(store, fresh))
        run = RunPages(store, taxonomy, folder, index, fresh)
    with nullcontext(batch) if batch is not None else AtomicBatch() as files:
        return [
            folder / name
            for name, text in archive_pages(store, index, renderer, render_options(config), run)
            if files.write_if_changed(folder / name, text)
        ]


def write_day_pages(store: SeenStore, config: Config, taxonomy: Taxonomy, renderer: Renderer, days: Iterable[dt.date]) -> None:
    """Write the day pages (``.md``, ``.html``, ``.txt``) of ``days`` from the store."""
    options = render_options(config)
    for date in days:
        write_digest_files(load_day(store, date, taxonomy), config.archive.dir, renderer, options)


def sync_archive(store: SeenStore, config: Config, taxonomy: Taxonomy, renderer: Renderer, *, rebuild: bool = False) -> int:
    """Bring ``archive/`` in line with the store; return how many day pages were written.

    With ``rebuild`` every file is rewritten from the store alone (every month page of every
    topic); else only day pages that are missing are written, and the index, topic landing pages
    and feed are rebuilt when a day page was written or the index or feed is missing, with the
    month pages of the days written and those missing (``digest run`` keeps them current otherwise).
    """
    folder = config.archive.dir
    dates = sorted({r.date for r in store.digests(newest_first=False)})
    todo = dates if rebuild else [d for d in dates if not (folder / day_path(d, ".md")).is_file()]
    write_day_pages(store, config, taxonomy, renderer, todo)
    if rebuild or todo or not (folder / "index.md").is_file() or not (folder / "feed.xml").is_file():
        write_archive_pages(store, config, taxonomy, renderer, dates=None if rebuild else todo)
    weeks = dates if rebuild else [d for d in dates if d in todo or not (folder / week_path(d, ".md")).is_file()]
    write_week_pages(store, config, taxonomy, renderer, weeks)
    return len(todo)

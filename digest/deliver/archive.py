"""The archive channel: the Markdown archive under ``archive/``, rebuilt from the store.

Layout (file names come only from dates and topic codes, never from feed text)::

    archive/YYYY/MM/YYYY-MM-DD.md   a day's page (YAML front matter), with .html and .txt beside it
    archive/index.md                every day, newest first, grouped by month, with its count
    archive/topics/<code>.md        every paper ever filed under a topic, newest first
    archive/feed.xml                Atom, one entry per day page, the newest ``FEED_ENTRIES``

Every file is written atomically (a temp file renamed over the old one), so a crash mid-write
never leaves a half-written page.  The index, topic pages and feed are rendered from the store
each time (never appended to), so the same store always gives byte-identical files and
``sync_archive(..., rebuild=True)`` (``digest site --rebuild``) recreates the whole folder from the store alone.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import Any

from digest.config import Config
from digest.deliver import ChannelResult, DeliveryContext
from digest.fileio import write_atomic, write_if_changed
from digest.models import Digest
from digest.recall import load_day, topic_order
from digest.render import Renderer, RenderOptions, anchor_for_key, day_path
from digest.store import Delivery, FiledPaper, SeenStore
from digest.topics import Taxonomy

INDEX_MD = "archive/index.md.j2"
TOPIC_MD = "archive/topic.md.j2"
FEED_XML = "archive/feed.xml.j2"
FEED_ENTRIES = 50


def write_digest_files(digest: Digest, folder: Path, renderer: Renderer, options: RenderOptions, *, nested: bool = True) -> dict[str, Path]:
    """Render a digest and write ``YYYY-MM-DD.md/.html/.txt``; return their paths by format.

    With ``nested`` the files go to ``folder/YYYY/MM/`` (the archive layout), else to ``folder``.
    """
    rendered = renderer.render(digest, options, markdown=False)  # the Markdown page is streamed to its file
    base = folder / day_path(digest.date, "") if nested else folder / digest.date.isoformat()
    outputs = {
        "markdown": base.with_name(base.name + ".md"),
        "html": base.with_name(base.name + ".html"),
        "text": base.with_name(base.name + ".txt"),
    }
    write_atomic(outputs["markdown"], renderer.stream_markdown(digest, options))
    write_atomic(outputs["html"], rendered.html)
    write_atomic(outputs["text"], rendered.text)
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

    def rows(self, config: Config) -> list[str]:
        """One archive row per digest."""
        return [""]

    def deliver(self, pending: Sequence[Delivery], context: DeliveryContext) -> ChannelResult:
        """Write the pending rows' day pages and the pages built from them; a write error leaves rows pending."""
        config, store = context.config, context.store
        outputs: dict[dt.date, dict[str, Path]] = {}
        written: list[Delivery] = []
        failed = False
        for delivery in pending:
            try:
                if delivery.digest_date not in outputs:
                    day = load_day(store, delivery.digest_date, context.taxonomy)
                    outputs[delivery.digest_date] = write_digest_files(
                        day, config.archive.dir, context.renderer, render_options(config, context.now)
                    )
            except OSError as exc:
                store.mark_delivery(delivery.id, "pending", now=context.now, error=_write_error(config, exc))
                failed = True
                continue
            written.append(delivery)
        if written:
            try:
                write_archive_pages(store, config, context.taxonomy, context.renderer)
            except OSError as exc:
                for delivery in written:
                    store.mark_delivery(delivery.id, "pending", now=context.now, error=_write_error(config, exc))
                return ChannelResult("failed", True, outputs)
        for delivery in written:
            store.mark_delivery(delivery.id, "sent", now=context.now)
        return ChannelResult("failed" if failed else "done", failed, outputs)


def _write_error(config: Config, exc: OSError) -> str:
    return f"{exc.filename or config.archive.dir}: {exc.strerror or exc}"


# -- the pages built from the whole store ------------------------------------------------------


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
        return f"{self.date:%B %Y}"


@dataclass(frozen=True, slots=True)
class ArchiveTopic:
    """One topic page: every digest that filed papers under the topic, with how many."""

    code: str
    title: str
    count: int
    filed: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class ArchiveIndex:
    """What the index, topic pages and feed are made of, read from the store without paper rows."""

    days: tuple[ArchiveDay, ...]
    topics: tuple[ArchiveTopic, ...]

    @property
    def count(self) -> int:
        """Papers in the whole archive."""
        return sum(d.count for d in self.days)

    def topic_title(self, code: str) -> str:
        """The title a topic's page and headings show."""
        return next((t.title for t in self.topics if t.code == code), code)


@dataclass(frozen=True, slots=True)
class DayPapers:
    """The papers of one topic page filed on one day (in day page order)."""

    date: dt.date
    papers: tuple[FiledPaper, ...]


def load_archive_index(store: SeenStore, taxonomy: Taxonomy) -> ArchiveIndex:
    """The archive's days (newest first) and topics (taxonomy order) from two small queries."""
    per_digest: dict[int, dict[str, int]] = {}
    per_topic: dict[str, list[tuple[int, int]]] = {}
    for topic, digest_id, count in store.filed_counts():
        per_digest.setdefault(digest_id, {})[topic] = count
        per_topic.setdefault(topic, []).append((digest_id, count))
    order = topic_order(taxonomy, per_topic)
    days = []
    for date, group in groupby(store.digests(newest_first=True), key=lambda r: r.date):
        records = list(group)
        ids = sorted(r.id for r in records)
        totals: dict[str, int] = {}
        for digest_id in ids:
            for topic, count in per_digest.get(digest_id, {}).items():
                totals[topic] = totals.get(topic, 0) + count
        days.append(
            ArchiveDay(date, sum(totals.values()), max(r.created_at for r in records), tuple(ids), tuple((c, totals[c]) for c, _ in order if c in totals))
        )
    topics = tuple(
        ArchiveTopic(code, title, sum(n for _, n in per_topic[code]), tuple(per_topic[code])) for code, title in order
    )
    return ArchiveIndex(tuple(d for d in days if d.count), topics)


def papers_by_day(papers: Iterable[FiledPaper]) -> list[DayPapers]:
    """Filed papers (newest date first) grouped into one run per day."""
    return [DayPapers(date, tuple(group)) for date, group in groupby(papers, key=lambda p: p.date)]


def feed_ids(options: RenderOptions) -> tuple[str, str]:
    """The feed's Atom id and the base entry ids are built from: stable, from the config alone."""
    base = options.site_url.rstrip("/") or f"digest:{options.title}"
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, base + '/feed.xml')}", base


def archive_context(index: ArchiveIndex, options: RenderOptions) -> dict[str, Any]:
    """The variables the archive and site templates share."""
    months = [
        {"label": label, "id": f"m-{group[0].date:%Y-%m}", "days": group}
        for label, group in ((label, list(days)) for label, days in groupby(index.days, key=lambda d: d.month))
    ]
    return {
        "index": index,
        "days": index.days,
        "months": months,
        "topics": index.topics,
        "title": options.title,
        "site_url": options.site_url.rstrip("/"),
        "day_path": day_path,
        "anchor_for_key": anchor_for_key,
    }


def render_topic_md(store: SeenStore, index: ArchiveIndex, topic: ArchiveTopic, renderer: Renderer, options: RenderOptions) -> str:
    """``topics/<code>.md``: every paper filed under the topic, newest day first."""
    return renderer.render_template(
        TOPIC_MD,
        **archive_context(index, options),
        topic=topic,
        by_day=papers_by_day(store.filed_papers(topic=topic.code)),
    )


def render_feed(store: SeenStore, index: ArchiveIndex, renderer: Renderer, options: RenderOptions) -> str:
    """``feed.xml``: Atom, one entry per day page, the newest ``FEED_ENTRIES``, dated by the store."""
    days = index.days[:FEED_ENTRIES]
    filed = store.filed_papers(digest_ids=[i for d in days for i in d.digest_ids])
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
    return renderer.render_template(
        FEED_XML,
        **archive_context(index, options),
        feed_id=feed_id,
        updated=max((d.updated for d in days), default=None),
        entries=entries,
    )


def archive_pages(store: SeenStore, taxonomy: Taxonomy, renderer: Renderer, options: RenderOptions) -> dict[str, str]:
    """Every page built from the whole store, by path relative to the archive: index, topics, feed."""
    index = load_archive_index(store, taxonomy)
    pages = {"index.md": renderer.render_template(INDEX_MD, **archive_context(index, options))}
    for topic in index.topics:
        pages[f"topics/{topic.code}.md"] = render_topic_md(store, index, topic, renderer, options)
    pages["feed.xml"] = render_feed(store, index, renderer, options)
    return pages


def write_archive_pages(store: SeenStore, config: Config, taxonomy: Taxonomy, renderer: Renderer) -> list[Path]:
    """Rebuild the index, topic pages and feed from the store; write those that changed; return them."""
    folder = config.archive.dir
    options = render_options(config)
    return [
        folder / name
        for name, text in archive_pages(store, taxonomy, renderer, options).items()
        if write_if_changed(folder / name, text)
    ]


def write_day_pages(store: SeenStore, config: Config, taxonomy: Taxonomy, renderer: Renderer, days: Iterable[dt.date]) -> None:
    """Write the day pages (``.md``, ``.html``, ``.txt``) of ``days`` from the store."""
    options = render_options(config)
    for date in days:
        write_digest_files(load_day(store, date, taxonomy), config.archive.dir, renderer, options)


def sync_archive(store: SeenStore, config: Config, taxonomy: Taxonomy, renderer: Renderer, *, rebuild: bool = False) -> int:
    """Bring ``archive/`` in line with the store; return how many day pages were written.

    With ``rebuild`` every file is rewritten from the store alone; else only day pages that are
    missing are written, and the index, topic pages and feed are rebuilt when a day page was
    written or one of them is missing (``digest run`` keeps them current otherwise).
    """
    folder = config.archive.dir
    dates = sorted({r.date for r in store.digests(newest_first=False)})
    todo = dates if rebuild else [d for d in dates if not (folder / day_path(d, ".md")).is_file()]
    write_day_pages(store, config, taxonomy, renderer, todo)
    if rebuild or todo or not (folder / "index.md").is_file() or not (folder / "feed.xml").is_file():
        write_archive_pages(store, config, taxonomy, renderer)
    return len(todo)

"""The archive's week pages: ``archive/weeks/YYYY-Www.md``, one per ISO week (Monday to Sunday)
with a digest, linked from the index and given an entry in the feed.

A week page lists every paper of its days by topic, ranked as the weekly roll-up ranks them
(upvotes where the source counts them, else the grouper's score: :func:`digest.weekly.ranking`),
each with a link to its place on its day's page.  It is written by the run that writes one of
its days, and rebuilt from the store like every other page (``digest site --rebuild``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from digest.config import Config
from digest.fileio import AtomicBatch
from digest.render import Renderer, RenderOptions, anchor, day_path
from digest.store import SeenStore
from digest.topics import Taxonomy
from digest.weekly import Week, load_week

WEEK_MD = "archive/week.md.j2"


def iso_week(date: dt.date) -> str:
    """The ISO week a date falls in, as its page is named: ``2025-W11``."""
    year, week, _ = date.isocalendar()
    return f"{year}-W{week:02d}"


def week_path(date: dt.date, suffix: str) -> str:
    """The archive path of the page of the ISO week of ``date``: ``weeks/2025-W11<suffix>``."""
    return f"weeks/{iso_week(date)}{suffix}"


def monday_of(date: dt.date) -> dt.date:
    """The Monday that starts the ISO week of ``date``."""
    return date - dt.timedelta(days=date.weekday())


def iso_week_digests(store: SeenStore, monday: dt.date) -> list[int]:
    """The ids of the digests stored for the ISO week starting ``monday``, oldest first."""
    sunday = monday + dt.timedelta(days=6)
    return [r.id for r in store.digests(since=monday, newest_first=False) if r.date <= sunday]


def load_iso_week(store: SeenStore, taxonomy: Taxonomy, monday: dt.date) -> Week:
    """Every digest stored for the ISO week starting ``monday``, as one ranked Week."""
    return load_week(store, iso_week_digests(store, monday), taxonomy, monday, monday + dt.timedelta(days=6))


def week_context(week: Week, options: RenderOptions) -> dict[str, Any]:
    """The variables of the week page: its days and, per topic, every paper with its day page link."""
    root = "../"
    return {
        "title": options.title,
        "label": iso_week(week.start),
        "start": week.start,
        "end": week.end,
        "size": week.size,
        "days": [{"date": d, "count": n, "page": root + day_path(d, ".md")} for d, n in week.days],
        "groups": [
            {
                "code": g.code,
                "title": g.title,
                "count": len(g.entries),
                "papers": [{"paper": e.paper, "date": e.date, "page": f"{root}{day_path(e.date, '.md')}#{anchor(e.paper)}"}
                           for e in g.entries],
            }
            for g in week.groups
        ],
    }


def write_week_pages(
    store: SeenStore, config: Config, taxonomy: Taxonomy, renderer: Renderer, dates: Iterable[dt.date],
    *, batch: AtomicBatch | None = None,
) -> list[Path]:
    """Write the pages of the ISO weeks of ``dates`` (those that changed); return them."""
    options = RenderOptions(title=config.archive.title, site_url=config.archive.site_url)
    written = []
    with nullcontext(batch) if batch is not None else AtomicBatch() as files:
        for monday in sorted({monday_of(d) for d in dates}):
            week = load_iso_week(store, taxonomy, monday)
            if not week.size:
                continue
            path = config.archive.dir / week_path(monday, ".md")
            if files.write_if_changed(path, renderer.render_template(WEEK_MD, **week_context(week, options))):
                written.append(path)
    return written

"""The archive channel: a day's digest as Markdown, HTML and text files under ``archive/``.

Files are written atomically (a temp file renamed over the old one), so a crash mid-write never
leaves a half-written page.  File names come only from dates, never from feed text.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from digest.config import Config
from digest.deliver import ChannelResult, DeliveryContext
from digest.fileio import write_atomic
from digest.models import Digest
from digest.recall import load_day
from digest.render import Renderer, RenderOptions, day_path
from digest.store import Delivery


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


def render_options(config: Config, now: dt.datetime) -> RenderOptions:
    """Template options from the config."""
    return RenderOptions(
        title=config.archive.title,
        site_url=config.archive.site_url,
        max_per_topic=config.email.max_per_topic,
        excerpt_chars=config.render.excerpt_chars,
        generated_at=now,
    )


class ArchiveChannel:
    """Writes each stored day's page (every digest of that date) under ``[archive] dir``."""

    name = "archive"

    def rows(self, config: Config) -> list[str]:
        """One archive row per digest."""
        return [""]

    def deliver(self, pending: Sequence[Delivery], context: DeliveryContext) -> ChannelResult:
        """Write the day pages of the pending rows; a write error leaves the row pending."""
        config, store = context.config, context.store
        outputs: dict[dt.date, dict[str, Path]] = {}
        failed = False
        for delivery in pending:
            try:
                if delivery.digest_date not in outputs:
                    day = load_day(store, delivery.digest_date, context.taxonomy)
                    outputs[delivery.digest_date] = write_digest_files(
                        day, config.archive.dir, context.renderer, render_options(config, context.now)
                    )
            except OSError as exc:
                store.mark_delivery(delivery.id, "pending", now=context.now, error=f"{config.archive.dir}: {exc.strerror}")
                failed = True
                continue
            store.mark_delivery(delivery.id, "sent", now=context.now)
        return ChannelResult("failed" if failed else "done", failed, outputs)

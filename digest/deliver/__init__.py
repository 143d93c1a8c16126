"""Deliveries: the outbox channels a digest goes to once it is stored.

Each channel says which outbox rows a new digest gets (``rows``) and works through its pending
rows (``deliver``), marking each one sent, pending (to retry) or failed in the store.  The
pipeline calls the channels in ``CHANNELS`` order after the commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from digest.config import Config
from digest.render import Renderer
from digest.store import Delivery, SeenStore
from digest.topics import Taxonomy


@dataclass(frozen=True, slots=True)
class Claim:
    """Whose claim a sender's rows are under (``digest send``): each row is checked to be still
    ``worker``'s, and held ``lease`` longer from ``clock()``, just before its message goes out."""

    worker: str
    lease: dt.timedelta
    clock: Callable[[], dt.datetime]


@dataclass(frozen=True, slots=True)
class DeliveryContext:
    """What a channel may use to deliver."""

    store: SeenStore
    config: Config
    taxonomy: Taxonomy
    renderer: Renderer
    now: dt.datetime
    claim: Claim | None = None  # a digest send worker's claim on the rows (None: a run's own delivery)


@dataclass(frozen=True, slots=True)
class ChannelResult:
    """What a channel did: its summary for ``--json`` and the files it wrote, by date."""

    summary: Any
    failed: bool = False
    outputs: dict[dt.date, dict[str, Path]] = field(default_factory=dict)
    error: str | None = None  # why it failed, in one line (the first error when several rows failed)


class Channel(Protocol):
    """One delivery channel of the outbox."""

    name: str

    def rows(self, config: Config, store: SeenStore) -> list[str]:
        """The recipients a new digest gets an outbox row for ("" when the channel has none)."""
        ...

    def deliver(self, pending: Sequence[Delivery], context: DeliveryContext) -> ChannelResult:
        """Deliver the pending rows, oldest digest first, recording each outcome in the store."""
        ...

"""Subscribers in the store: who gets the digest besides the config's fixed recipients.

One row per address (``subscribers``) with its status, preferences and times, and one
``subscriber_events`` row per change, saying where it came from (``cli``, ``import``, ``web``,
``one-click``, ``smtp``, ``dsn``...) and any detail (a bounce's server reply).

Statuses::

    pending ──confirm──> active ──unsubscribe──> unsubscribed
                           │  ▲
               hard bounce ▼  │ a later message accepted
                        bouncing ──bounce_limit hard bounces in the window──> disabled

Only ``active`` and ``bouncing`` subscribers are mailed.  ``epoch`` changes when an address
subscribes again or confirms, so that links signed for an earlier epoch (an old unsubscribe link,
a used confirmation link) change nothing.

:class:`Subscribers` is the query object over a :class:`digest.store.SeenStore`'s connection;
it commits each change itself.  Nothing here imports click.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TextIO

from digest.categories import is_arxiv_category, not_a_category
from digest.config import CADENCES, WEEKDAY_NAMES, Config, is_address
from digest.errors import DigestError
from digest.store import SUBSCRIBERS_VERSION, Row, SeenStore, inserted_id, open_store

STATUSES = ("pending", "active", "unsubscribed", "bouncing", "disabled")
MAILED = ("active", "bouncing")
WEEKDAYS = WEEKDAY_NAMES
CSV_FIELDS = ("address", "status", "topics", "categories", "cadence", "weekday", "created_at", "confirmed_at",
              "unsubscribed_at", "source", "last_error")


class SubscriberError(DigestError):
    """A subscriber command got bad input (an address, a CSV row) or names nobody."""


@dataclass(frozen=True, slots=True)
class Subscriber:
    """One subscriber's row."""

    id: int
    address: str
    status: str
    topics: tuple[str, ...]
    categories: tuple[str, ...]
    cadence: str
    weekday: int | None
    epoch: int
    created_at: dt.datetime
    confirmed_at: dt.datetime | None
    unsubscribed_at: dt.datetime | None
    updated_at: dt.datetime
    source: str
    last_error: str | None

    @property
    def mailed(self) -> bool:
        """Whether digests go to this address."""
        return self.status in MAILED

    def to_json(self) -> dict[str, Any]:
        """The row as JSON-ready values (``--json``, the CSV export)."""
        return {
            "address": self.address,
            "status": self.status,
            "topics": list(self.topics),
            "categories": list(self.categories),
            "cadence": self.cadence,
            "weekday": WEEKDAYS[self.weekday] if self.weekday is not None else None,
            "created_at": _text(self.created_at),
            "confirmed_at": _text(self.confirmed_at),
            "unsubscribed_at": _text(self.unsubscribed_at),
            "source": self.source,
            "last_error": self.last_error,
        }


@dataclass(frozen=True, slots=True)
class Preferences:
    """What a subscriber chooses: topics (empty: all), arXiv categories (empty: all), cadence."""

    topics: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    cadence: str = "daily"
    weekday: int | None = None


def _text(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="seconds")


def _when(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None


def _row(row: Row) -> Subscriber:
    created = _when(row["created_at"])
    updated = _when(row["updated_at"])
    assert created is not None and updated is not None
    return Subscriber(
        id=row["id"], address=row["address"], status=row["status"],
        topics=tuple(json.loads(row["topics"])), categories=tuple(json.loads(row["categories"])),
        cadence=row["cadence"], weekday=row["weekday"], epoch=row["epoch"],
        created_at=created, confirmed_at=_when(row["confirmed_at"]), unsubscribed_at=_when(row["unsubscribed_at"]),
        updated_at=updated, source=row["source"], last_error=row["last_error"],
    )


def normalise_address(address: str) -> str:
    """The address stripped, its domain lower-cased; SubscriberError when it is not an address."""
    address = address.strip()
    if not is_address(address):
        raise SubscriberError(f"{address!r} is not an email address")
    local, _, domain = address.rpartition("@")
    return f"{local}@{domain.lower()}"


class Subscribers:
    """The subscriber queries of one store (its connection; each change commits at once)."""

    def __init__(self, store: SeenStore) -> None:
        self.store = store
        self.db = store.db

    @property
    def available(self) -> bool:
        """False on an older store opened read-only (no subscribers table yet)."""
        return self.store.schema_version >= SUBSCRIBERS_VERSION

    # -- reading --------------------------------------------------------------------------------

    def get(self, subscriber_id: int) -> Subscriber | None:
        """The subscriber with this id, if any."""
        row = self.db.execute("SELECT * FROM subscribers WHERE id = ?", (subscriber_id,)).fetchone()
        return _row(row) if row else None

    def find(self, address: str) -> Subscriber | None:
        """The subscriber with this address (case-insensitive), if any."""
        row = self.db.execute("SELECT * FROM subscribers WHERE address = ?", (address.strip(),)).fetchone()
        return _row(row) if row else None

    def all(self, status: str | None = None) -> list[Subscriber]:
        """Every subscriber (of one status), by address."""
        if not self.available:
            return []
        if status is None:
            rows = self.db.execute("SELECT * FROM subscribers ORDER BY address")
        else:
            rows = self.db.execute("SELECT * FROM subscribers WHERE status = ? ORDER BY address", (status,))
        return [_row(r) for r in rows]

    def mailed(self) -> dict[str, Subscriber]:
        """The subscribers digests go to (active or bouncing), by lower-cased address."""
        if not self.available:
            return {}
        rows = self.db.execute("SELECT * FROM subscribers WHERE status IN ('active', 'bouncing')")
        return {s.address.lower(): s for s in map(_row, rows)}

    def statuses(self, addresses: Iterable[str]) -> dict[str, str]:
        """The status of each of ``addresses`` the store has a row for, by lower-cased address."""
        if not self.available:
            return {}
        wanted = [a.strip() for a in addresses]  # as written: SQLite's NOCASE folds ASCII letters only
        found: dict[str, str] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for address, status in self.db.execute(f"SELECT address, status FROM subscribers WHERE address IN ({marks})", chunk):
                found[address.lower()] = status
        return found

    def counts(self) -> dict[str, int]:
        """How many subscribers have each status."""
        counts = dict.fromkeys(STATUSES, 0)
        if self.available:
            for status, n in self.db.execute("SELECT status, COUNT(*) FROM subscribers GROUP BY status"):
                counts[status] = n
        return counts

    def events(self, subscriber_id: int) -> list[dict[str, Any]]:
        """Every recorded change of one subscriber, oldest first."""
        rows = self.db.execute(
            "SELECT at, kind, source, detail FROM subscriber_events WHERE subscriber_id = ? ORDER BY id", (subscriber_id,)
        )
        return [dict(r) for r in rows]

    def count_events(self, subscriber_id: int, kind: str, since: dt.datetime) -> int:
        """How many events of ``kind`` the subscriber had since ``since``."""
        row = self.db.execute(
            "SELECT COUNT(*) FROM subscriber_events WHERE subscriber_id = ? AND kind = ? AND at >= ?",
            (subscriber_id, kind, _iso(since)),
        ).fetchone()
        return int(row[0])

    # -- changing -------------------------------------------------------------------------------

    def add(
        self,
        address: str,
        *,
        now: dt.datetime,
        source: str,
        status: str = "active",
        preferences: Preferences = Preferences(),
    ) -> Subscriber:
        """Add a new subscriber; SubscriberError when the address is already listed."""
        address = normalise_address(address)
        if self.find(address) is not None:
            raise SubscriberError(f"{address} is already a subscriber", hint="digest subscribers list shows its status")
        stamp = _iso(now)
        with self.store.transaction() as db:
            subscriber_id = inserted_id(db.execute(
                "INSERT INTO subscribers (address, status, topics, categories, cadence, weekday, created_at, confirmed_at,"
                " updated_at, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (address, status, json.dumps(list(preferences.topics)), json.dumps(list(preferences.categories)),
                 preferences.cadence, preferences.weekday, stamp, stamp if status == "active" else None, stamp, source),
            ))
            self._event(subscriber_id, "created", source, status, stamp)
        found = self.get(subscriber_id)
        assert found is not None
        return found

    def request(self, address: str, *, now: dt.datetime, source: str) -> Subscriber | None:
        """Someone asked to subscribe ``address`` (the web form): a new or a departed address becomes
        pending under a new epoch (its old links stop working); None when it is already mailed."""
        address = normalise_address(address)
        found = self.find(address)
        if found is None:
            return self.add(address, now=now, source=source, status="pending")
        if found.mailed:
            return None
        if found.status == "pending":
            return found
        stamp = _iso(now)
        with self.store.transaction() as db:
            db.execute(
                "UPDATE subscribers SET status = 'pending', epoch = epoch + 1, updated_at = ?, source = ? WHERE id = ?",
                (stamp, source, found.id),
            )
            self._event(found.id, "requested", source, found.status, stamp)
        return self.get(found.id)

    def confirm(self, subscriber_id: int, *, epoch: int, now: dt.datetime, source: str) -> bool:
        """Make a pending subscriber active if ``epoch`` is still theirs; True when it changed."""
        stamp = _iso(now)
        with self.store.transaction() as db:
            changed = db.execute(
                "UPDATE subscribers SET status = 'active', epoch = epoch + 1, confirmed_at = ?, updated_at = ?, source = ?"
                " WHERE id = ? AND epoch = ? AND status = 'pending'",
                (stamp, stamp, source, subscriber_id, epoch),
            ).rowcount
            if changed:
                self._event(subscriber_id, "confirmed", source, None, stamp)
        return bool(changed)

    def unsubscribe(self, subscriber_id: int, *, epoch: int | None, now: dt.datetime, source: str) -> bool:
        """Stop mailing a subscriber (``epoch`` None: whatever their epoch); True when it changed."""
        stamp = _iso(now)
        with self.store.transaction() as db:
            changed = db.execute(
                "UPDATE subscribers SET status = 'unsubscribed', unsubscribed_at = ?, updated_at = ?, source = ?"
                " WHERE id = ? AND (? IS NULL OR epoch = ?) AND status IN ('pending', 'active', 'bouncing')",
                (stamp, stamp, source, subscriber_id, epoch, epoch),
            ).rowcount
            if changed:
                self._event(subscriber_id, "unsubscribed", source, None, stamp)
        return bool(changed)

    def unsubscribe_address(self, address: str, *, now: dt.datetime, source: str) -> Subscriber:
        """Record that ``address`` left: its row (created, for a config recipient) says unsubscribed."""
        found = self.find(address)
        if found is None:
            found = self.add(address, now=now, source=source, status="unsubscribed")
            with self.store.transaction():
                self.db.execute("UPDATE subscribers SET unsubscribed_at = ? WHERE id = ?", (_iso(now), found.id))
        else:
            self.unsubscribe(found.id, epoch=None, now=now, source=source)
        result = self.get(found.id)
        assert result is not None
        return result

    def set_preferences(self, subscriber_id: int, preferences: Preferences, *, now: dt.datetime, source: str) -> None:
        """Store a subscriber's topics, categories and cadence."""
        stamp = _iso(now)
        detail = json.dumps({"topics": list(preferences.topics), "categories": list(preferences.categories),
                             "cadence": preferences.cadence, "weekday": preferences.weekday})
        with self.store.transaction() as db:
            db.execute(
                "UPDATE subscribers SET topics = ?, categories = ?, cadence = ?, weekday = ?, updated_at = ?, source = ?"
                " WHERE id = ?",
                (json.dumps(list(preferences.topics)), json.dumps(list(preferences.categories)), preferences.cadence,
                 preferences.weekday, stamp, source, subscriber_id),
            )
            self._event(subscriber_id, "preferences", source, detail, stamp)

    def set_status(self, address: str, status: str, *, now: dt.datetime, source: str) -> Subscriber:
        """Set a subscriber's status by hand (the CLI); SubscriberError for an unknown address."""
        if status not in STATUSES:
            raise SubscriberError(f"{status!r} is not a status ({', '.join(STATUSES)})")
        found = self._existing(address)
        stamp = _iso(now)
        with self.store.transaction() as db:
            db.execute(
                "UPDATE subscribers SET status = ?, updated_at = ?, source = ?,"
                " confirmed_at = CASE WHEN ? = 'active' THEN COALESCE(confirmed_at, ?) ELSE confirmed_at END,"
                " unsubscribed_at = CASE WHEN ? = 'unsubscribed' THEN ? ELSE unsubscribed_at END WHERE id = ?",
                (status, stamp, source, status, stamp, status, stamp, found.id),
            )
            self._event(found.id, status, source, None, stamp)
        result = self.get(found.id)
        assert result is not None
        return result

    def remove(self, address: str) -> Subscriber:
        """Delete a subscriber and their events (to forget an address, not to unsubscribe it)."""
        found = self._existing(address)
        with self.store.transaction() as db:
            db.execute("DELETE FROM subscriber_events WHERE subscriber_id = ?", (found.id,))
            db.execute("DELETE FROM subscribers WHERE id = ?", (found.id,))
        return found

    def log(self, subscriber_id: int, kind: str, *, now: dt.datetime, source: str, detail: str | None = None) -> None:
        """Record an event that changes no status (a confirmation mail sent)."""
        with self.store.transaction():
            self._event(subscriber_id, kind, source, detail, _iso(now))

    def record_bounce(
        self, address: str, *, hard: bool, reason: str, now: dt.datetime, source: str, limit: int, window: dt.timedelta
    ) -> Subscriber | None:
        """Record a bounce for ``address`` (None when it is nobody's).

        A hard bounce makes an active subscriber ``bouncing``; ``limit`` hard bounces within
        ``window`` make it ``disabled`` (kept, not deleted; the server's reply in ``last_error``).
        A soft bounce is only recorded.
        """
        found = self.find(address)
        if found is None:
            return None
        stamp = _iso(now)
        kind = "bounce-hard" if hard else "bounce-soft"
        with self.store.transaction() as db:
            self._event(found.id, kind, source, reason, stamp)
            db.execute("UPDATE subscribers SET last_error = ?, updated_at = ? WHERE id = ?", (reason, stamp, found.id))
            if hard and found.status in MAILED:
                recent = self.count_events(found.id, "bounce-hard", now - window)
                status = "disabled" if recent >= limit else "bouncing"
                if status != found.status:
                    db.execute("UPDATE subscribers SET status = ?, source = ? WHERE id = ?", (status, source, found.id))
                    self._event(found.id, status, source, f"{recent} hard bounce(s) in {window.days} days", stamp)
        return self.get(found.id)

    def delivered(self, addresses: Sequence[str], *, now: dt.datetime) -> None:
        """Messages to these bouncing addresses were accepted: they are active again."""
        if not addresses or not self.available:
            return
        stamp = _iso(now)
        with self.store.transaction() as db:
            for address in addresses:
                row = db.execute("SELECT id FROM subscribers WHERE address = ? AND status = 'bouncing'", (address,)).fetchone()
                if row:
                    db.execute("UPDATE subscribers SET status = 'active', updated_at = ?, source = 'smtp' WHERE id = ?", (stamp, row[0]))
                    self._event(row[0], "active", "smtp", "a message was accepted again", stamp)

    def _existing(self, address: str) -> Subscriber:
        found = self.find(address)
        if found is None:
            raise NotSubscribed(f"no subscriber {address.strip()!r}", hint="digest subscribers list shows who is listed")
        return found

    def _event(self, subscriber_id: int, kind: str, source: str, detail: str | None, stamp: str) -> None:
        self.db.execute(
            "INSERT INTO subscriber_events (subscriber_id, at, kind, source, detail) VALUES (?, ?, ?, ?, ?)",
            (subscriber_id, stamp, kind, source, detail),
        )


class NotSubscribed(SubscriberError):
    """The address names no subscriber."""

    exit_code = 1


# -- CSV --------------------------------------------------------------------------------------


def parse_weekday(text: str | None) -> int | None:
    """A weekday name (or its first three letters) as 0 (Monday) to 6; None for an empty one."""
    if not text:
        return None
    name = text.strip().lower()
    for number, day in enumerate(WEEKDAYS):
        if name in (day, day[:3]):
            return number
    raise SubscriberError(f"{text!r} is not a weekday (monday ... sunday)")


def parse_preferences(
    topics: Iterable[str], categories: Iterable[str], cadence: str, weekday: str | None, known_topics: Sequence[str] | None
) -> Preferences:
    """Checked preferences: known topic codes, arXiv categories, a known cadence, a weekday for weekly."""
    topic_list = tuple(dict.fromkeys(t.strip() for t in topics if t.strip()))
    if known_topics is not None:
        unknown = [t for t in topic_list if t not in known_topics]
        if unknown:
            raise SubscriberError(f"unknown topic {unknown[0]!r} (topics: {', '.join(known_topics)})")
    category_list = tuple(dict.fromkeys(c.strip() for c in categories if c.strip()))
    wrong = [c for c in category_list if not is_arxiv_category(c)]
    if wrong:
        raise SubscriberError(not_a_category(wrong[0]))
    if cadence not in CADENCES:
        raise SubscriberError(f"{cadence!r} is not a cadence ({', '.join(CADENCES)})")
    day = parse_weekday(weekday)
    if cadence == "weekly" and day is None:
        day = 0
    return Preferences(topic_list, category_list, cadence, day if cadence == "weekly" else None)


def _split(cell: str | None) -> list[str]:
    return [part for part in (cell or "").replace(";", " ").replace(",", " ").split() if part]


def import_csv(
    subscribers: Subscribers, stream: TextIO, *, now: dt.datetime, known_topics: Sequence[str] | None, name: str
) -> tuple[int, int]:
    """Add the rows of a CSV (a header with ``address``; optional topics, categories, cadence,
    weekday, status) as subscribers; existing addresses are left as they are.

    Every row is checked before any is added: a bad row is a SubscriberError naming its line,
    and so is a file that is not UTF-8 text or not CSV.  Returns (added, already listed).
    """
    reader = csv.DictReader(stream)
    try:
        rows = _checked_rows(reader, known_topics, name)
    except UnicodeDecodeError as exc:
        raise SubscriberError(f"{name}: not UTF-8 text (invalid byte 0x{exc.object[exc.start]:02x}); save the CSV as UTF-8") from None
    except csv.Error as exc:  # a field past csv's size limit...: in the record after the last one read
        raise SubscriberError(f"{name}:{reader.line_num + 1}: not readable as CSV ({exc})") from None
    added = kept = 0
    for address, status, prefs in rows:
        if subscribers.find(address) is not None:
            kept += 1
            continue
        subscribers.add(address, now=now, source="import", status=status, preferences=prefs)
        added += 1
    return added, kept


def _checked_rows(reader: csv.DictReader[str], known_topics: Sequence[str] | None, name: str) -> list[tuple[str, str, Preferences]]:
    """Every row of an import as (address, status, preferences); SubscriberError listing the bad ones."""
    if reader.fieldnames is None or "address" not in [f.strip() for f in reader.fieldnames]:
        raise SubscriberError(f"{name}: the first line must be a header naming an 'address' column")
    rows: list[tuple[str, str, Preferences]] = []
    problems: list[str] = []
    for row in reader:
        line = reader.line_num
        row = {(k or "").strip(): (v or "").strip() if isinstance(v, str) else "" for k, v in row.items()}
        try:
            status = row.get("status") or "active"
            if status not in STATUSES:
                raise SubscriberError(f"{status!r} is not a status ({', '.join(STATUSES)})")
            prefs = parse_preferences(
                _split(row.get("topics")), _split(row.get("categories")), row.get("cadence") or "daily", row.get("weekday"), known_topics
            )
            rows.append((normalise_address(row.get("address", "")), status, prefs))
        except SubscriberError as exc:
            problems.append(f"{name}:{line}: {exc.message}")
    if problems:
        raise SubscriberError("\n".join(problems))
    return rows


def export_csv(subscribers: Sequence[Subscriber]) -> str:
    """The subscribers as CSV (the columns of ``CSV_FIELDS``; lists space-separated)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for subscriber in subscribers:
        data = subscriber.to_json()
        data["topics"] = " ".join(data["topics"])
        data["categories"] = " ".join(data["categories"])
        writer.writerow({k: "" if data[k] is None else data[k] for k in CSV_FIELDS})
    return out.getvalue()


# -- what the commands call ---------------------------------------------------------------------


@contextmanager
def opened(config: Config, *, readonly: bool = False) -> Iterator[Subscribers]:
    """The subscribers of the configured store (opened, migrated unless ``readonly``, closed after)."""
    with open_store(config.store, readonly=readonly) as store:
        yield Subscribers(store)


def known_topics(config: Config) -> tuple[str, ...]:
    """The topic codes a subscriber may choose (the taxonomy's and "other")."""
    from digest.topics import OTHER_CODE, configured_taxonomy

    return (*configured_taxonomy(config.topics.file).codes(), OTHER_CODE)


def bounce_window(config: Config) -> dt.timedelta:
    """``[subscribers] bounce_window_days`` as a timedelta."""
    return dt.timedelta(days=config.subscribers.bounce_window_days)


def format_list(subscribers: Sequence[Subscriber]) -> str:
    """The subscribers as aligned lines: address, status, topics, cadence, and why for a bouncing one."""
    if not subscribers:
        return "no subscribers"
    width = max(len(s.address) for s in subscribers)
    lines = []
    for s in subscribers:
        topics = ",".join(s.topics) or "all topics"
        cadence = s.cadence if s.weekday is None else f"{s.cadence} ({WEEKDAYS[s.weekday]})"
        why = f"  last error: {s.last_error}" if s.last_error and s.status in ("bouncing", "disabled") else ""
        lines.append(f"{s.address:<{width}}  {s.status:<12}  {topics}  {cadence}  since {s.updated_at:%Y-%m-%d} ({s.source}){why}")
    return "\n".join(lines)

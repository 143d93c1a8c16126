"""The seen store: every paper ever seen, the digests, ingested files and the delivery outbox.

One SQLite file in WAL mode.  The schema is versioned with ``PRAGMA user_version`` and upgraded by
the ordered scripts in ``MIGRATIONS``.  Every identity key a paper has ever shown is a row of
``paper_keys``, so ``diff`` costs one index lookup per key: its cost follows the papers of the
run, not the size of the history.

``commit`` stores a digest, its papers, their seen marks, the ingested files and the digest's
outbox rows in one transaction: a crash before it loses nothing (the papers are new again next
run), a crash after it loses nothing either (the outbox rows stay pending).

``digest_topic_counts`` keeps how many papers each digest filed under each topic (written by
``commit`` in the same transaction), so the archive's index and topic pages never aggregate the
paper rows: their cost follows the number of digests, and a topic month's papers are read through
the (topic, digest_id) index.

The interface is small on purpose (``diff``, ``commit``, outbox and status queries) so that a
PostgreSQL store stands in for this one: ``[store] url`` opens the same class on a
:mod:`digest.postgres` connection, which runs the same queries and migrations (written in the SQL
both engines share, translated once for PostgreSQL) behind the same interface.  What differs is
said where it differs: the schema version, the cycle lock (a file lock here, an advisory lock
there), the error messages, and the store's size.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from digest import faults, postgres
from digest.config import StoreConfig
from digest.errors import LockedError, StoreError
from digest.models import Digest, DigestCounts, MachineSummary, Paper, Placement

MIGRATIONS: tuple[str, ...] = (
    # 1: the first schema.
    """
    CREATE TABLE papers (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL,
        title TEXT NOT NULL,
        abstract TEXT NOT NULL DEFAULT '',
        url TEXT,
        arxiv_id TEXT,
        doi TEXT,
        authors TEXT NOT NULL DEFAULT '[]',
        source TEXT NOT NULL DEFAULT '',
        upvotes INTEGER,
        published TEXT,
        first_seen TEXT NOT NULL
    );
    CREATE TABLE paper_keys (
        key TEXT PRIMARY KEY,
        paper_id INTEGER NOT NULL REFERENCES papers(id)
    ) WITHOUT ROWID;
    CREATE TABLE digests (
        id INTEGER PRIMARY KEY,
        date TEXT NOT NULL,
        created_at TEXT NOT NULL,
        entries INTEGER NOT NULL,
        new INTEGER NOT NULL,
        already_seen INTEGER NOT NULL,
        duplicates INTEGER NOT NULL
    );
    CREATE INDEX digests_by_date ON digests(date);
    CREATE TABLE digest_papers (
        digest_id INTEGER NOT NULL REFERENCES digests(id),
        paper_id INTEGER NOT NULL REFERENCES papers(id),
        topic TEXT NOT NULL,
        rank INTEGER NOT NULL,
        position INTEGER NOT NULL,
        source TEXT NOT NULL,
        why TEXT NOT NULL DEFAULT '{}',
        PRIMARY KEY (digest_id, paper_id)
    ) WITHOUT ROWID;
    CREATE INDEX digest_papers_by_topic ON digest_papers(topic, digest_id);
    CREATE TABLE ingested_files (
        content_hash TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        origin TEXT NOT NULL,
        entries INTEGER NOT NULL,
        digest_id INTEGER REFERENCES digests(id),
        ingested_at TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE deliveries (
        id INTEGER PRIMARY KEY,
        digest_id INTEGER NOT NULL REFERENCES digests(id),
        channel TEXT NOT NULL,
        recipient TEXT NOT NULL DEFAULT '',
        state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        next_attempt_at TEXT,
        updated_at TEXT NOT NULL,
        UNIQUE (digest_id, channel, recipient)
    );
    CREATE INDEX deliveries_pending ON deliveries(digest_id) WHERE state = 'pending';
    CREATE TABLE sources (
        name TEXT PRIMARY KEY,
        etag TEXT,
        last_modified TEXT,
        last_success TEXT,
        last_error TEXT,
        last_error_at TEXT,
        last_entries INTEGER
    ) WITHOUT ROWID;
    """,
    # 2: how many papers each digest filed under each topic, so the archive's index, topic pages
    # and month counts never aggregate digest_papers (its size is the whole history).
    """
    CREATE TABLE digest_topic_counts (
        digest_id INTEGER NOT NULL REFERENCES digests(id),
        topic TEXT NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (digest_id, topic)
    ) WITHOUT ROWID;
    INSERT INTO digest_topic_counts (digest_id, topic, count)
        SELECT digest_id, topic, COUNT(*) FROM digest_papers GROUP BY digest_id, topic;
    """,
    # 3: filings by (digest, topic, rank), so the first N of a topic in a digest (a feed entry,
    # the head of a day's section) are read through the index, not by numbering the whole day.
    # It serves the (topic, digest) lookups of the month pages as well.
    """
    CREATE INDEX IF NOT EXISTS digest_papers_by_rank ON digest_papers(digest_id, topic, rank);
    DROP INDEX IF EXISTS digest_papers_by_topic;
    """,
    # 4: papers per topic and month, so a run's topic pages and the archive's totals read one row
    # per topic month instead of aggregating every digest's counts (their number grows by the day).
    """
    CREATE TABLE topic_month_counts (
        topic TEXT NOT NULL,
        month TEXT NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (topic, month)
    ) WITHOUT ROWID;
    INSERT INTO topic_month_counts (topic, month, count)
        SELECT c.topic, substr(d.date, 1, 7), SUM(c.count) FROM digest_topic_counts c JOIN digests d ON d.id = c.digest_id
        GROUP BY c.topic, substr(d.date, 1, 7);
    """,
    # 5: each paper's arXiv categories (a JSON list, primary first); papers stored before have none.
    """
    ALTER TABLE papers ADD COLUMN categories TEXT NOT NULL DEFAULT '[]';
    """,
    # 6: subscribers (digest/subscribers.py): one row per address, its status and preferences,
    # and every change to it (where it came from: the CLI, the web, a bounce) as an event.
    """
    CREATE TABLE subscribers (
        id INTEGER PRIMARY KEY,
        address TEXT NOT NULL COLLATE NOCASE UNIQUE,
        status TEXT NOT NULL CHECK (status IN ('pending', 'active', 'unsubscribed', 'bouncing', 'disabled')),
        topics TEXT NOT NULL DEFAULT '[]',
        categories TEXT NOT NULL DEFAULT '[]',
        cadence TEXT NOT NULL DEFAULT 'daily' CHECK (cadence IN ('daily', 'weekly')),
        weekday INTEGER,
        epoch INTEGER NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL,
        confirmed_at TEXT,
        unsubscribed_at TEXT,
        updated_at TEXT NOT NULL,
        source TEXT NOT NULL,
        last_error TEXT
    );
    CREATE INDEX subscribers_by_status ON subscribers(status);
    CREATE TABLE subscriber_events (
        id INTEGER PRIMARY KEY,
        subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
        at TEXT NOT NULL,
        kind TEXT NOT NULL,
        source TEXT NOT NULL,
        detail TEXT
    );
    CREATE INDEX subscriber_events_by_kind ON subscriber_events(subscriber_id, kind, at);
    """,
    # 7: what a language model said of a paper ([llm], digest/llm/): its one-sentence summary and,
    # when it was asked, its topic; under the paper's strongest key, so a paper is asked once.
    """
    CREATE TABLE llm_summaries (
        paper_key TEXT PRIMARY KEY,
        summary TEXT,
        topic TEXT,
        model TEXT NOT NULL,
        prompt_version TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    """,
    # 8: the weekly roll-up (digest/weekly.py).  ``rollups`` remembers each week end (the weekday
    # date whose run sends it) once its roll-up was decided, and the newest digest it covers; a
    # weekly outbox row (channel 'weekly') names its week end and the digest after which its
    # papers start (NULL: the 7 days ending the week end).  One row per reader and week.
    """
    CREATE TABLE rollups (
        week_end TEXT PRIMARY KEY,
        digest_id INTEGER REFERENCES digests(id),
        created_at TEXT NOT NULL
    );
    ALTER TABLE deliveries ADD COLUMN week_end TEXT;
    ALTER TABLE deliveries ADD COLUMN week_after INTEGER;
    CREATE UNIQUE INDEX deliveries_by_week ON deliveries(week_end, recipient) WHERE week_end IS NOT NULL;
    """,
    # 9: outbox rows claimed by a sender (digest send --workers N, and a run's own delivery): who
    # holds the row and until when.  A claim past its time is free again: its sender was killed.
    """
    ALTER TABLE deliveries ADD COLUMN claimed_by TEXT;
    ALTER TABLE deliveries ADD COLUMN claimed_until TEXT;
    """,
)

COUNTS_VERSION = 2  # the schema version that added digest_topic_counts
RANK_INDEX_VERSION = 3  # the schema version that added digest_papers_by_rank
MONTH_COUNTS_VERSION = 4  # the schema version that added topic_month_counts
CATEGORIES_VERSION = 5  # the schema version that added papers.categories
SUBSCRIBERS_VERSION = 6  # the schema version that added subscribers and subscriber_events
LLM_VERSION = 7  # the schema version that added llm_summaries
ROLLUPS_VERSION = 8  # the schema version that added rollups and the weekly outbox columns
CLAIMS_VERSION = 9  # the schema version that added deliveries.claimed_by and claimed_until
RUN_CLAIM = "run"  # who a run's own delivery claims rows as (the next run takes them back at once)

_CHUNK = 500  # keys per IN (...) lookup, well under SQLite's variable limit
_NO_LIMIT = 9223372036854775807  # LIMIT for "all rows" that both engines take (SQLite's -1 is not PostgreSQL's)
DEFAULT_BUSY_TIMEOUT = 30.0  # seconds a statement waits for another process's lock ([store] busy_timeout)


@dataclass(frozen=True, slots=True)
class SeenPaper:
    """An incoming paper the store already knows, and the stored paper's id."""

    paper: Paper
    paper_id: int


@dataclass(frozen=True, slots=True)
class Diff:
    """The papers of a run split into never seen and already seen."""

    new: tuple[Paper, ...]
    seen: tuple[SeenPaper, ...]


@dataclass(frozen=True, slots=True)
class LlmNote:
    """What a language model said of one paper: its summary and topic (None when it gave none)."""

    summary: str | None
    topic: str | None
    model: str
    prompt_version: str


@dataclass(frozen=True, slots=True)
class Delivery:
    """One outbox row: a digest to deliver on a channel to a recipient."""

    id: int
    digest_id: int
    digest_date: dt.date
    channel: str
    recipient: str
    state: str
    attempts: int
    last_error: str | None
    next_attempt_at: dt.datetime | None
    week_end: dt.date | None = None  # a weekly roll-up's row: the last day of its week
    week_after: int | None = None  # ... and the digest after which its papers start (None: its 7 days)


@dataclass(frozen=True, slots=True)
class DigestRecord:
    """A stored digest's row."""

    id: int
    date: dt.date
    created_at: dt.datetime
    counts: DigestCounts


@dataclass(frozen=True, slots=True)
class FiledPaper:
    """A light row for archive indexes: where a paper was filed, its key and title (no abstract)."""

    digest_id: int
    date: dt.date
    topic: str
    rank: int
    key: str
    title: str


Row = Any  # a result row, read by position or by column name: sqlite3.Row or digest.postgres.Row


class Cursor(Protocol):
    """What the store reads of a cursor (sqlite3's, or psycopg's under :mod:`digest.postgres`)."""

    @property
    def rowcount(self) -> int: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """What the store and its query objects use of a connection: an ``sqlite3.Connection`` as
    it is, or a :class:`digest.postgres.Connection` that runs the same SQL on PostgreSQL."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Cursor: ...
    def executemany(self, sql: str, parameters: Iterable[Any], /) -> Cursor: ...
    @property
    def in_transaction(self) -> bool: ...
    def close(self) -> None: ...


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="seconds")


def open_store(settings: StoreConfig, *, readonly: bool = False) -> SeenStore:
    """The store ``[store]`` names, opened as every command opens it: the SQLite file of ``path``
    (see :meth:`SeenStore.open`), or the PostgreSQL database of ``url`` (:meth:`SeenStore.connect`)."""
    if settings.url:
        return SeenStore.connect(
            settings.url, password=store_password(settings), readonly=readonly, busy_timeout=settings.busy_timeout
        )
    return SeenStore.open(settings.path, readonly=readonly, busy_timeout=settings.busy_timeout)


def store_password(settings: StoreConfig) -> str | None:
    """The PostgreSQL password from the variable ``[store] password_env`` names (None when unset:
    the server may not ask for one, or libpq finds it in ~/.pgpass or $PGPASSWORD)."""
    password = os.environ.get(settings.password_env, "") if settings.password_env else ""
    return password or None


def store_location(settings: StoreConfig) -> str:
    """Where the store is, as messages and ``digest status`` show it (a URL without its password)."""
    return postgres.redact(settings.url) if settings.url else str(settings.path)


def backup_store(settings: StoreConfig, target: Path) -> int:
    """Copy the store to ``target`` with SQLite's backup API; return the copy's size in bytes.

    The copy is one consistent state of the store (what was committed when the copy was taken),
    safe to take while a run writes; it is written beside ``target`` and renamed over it, so a
    failed copy never leaves half a file.  A copy SQLite's quick_check finds damaged (bad pages
    in the store) is not kept: the last good backup stays.
    """
    if settings.url:
        raise StoreError(
            f"{postgres.redact(settings.url)}: digest backup copies an SQLite store; back up a PostgreSQL store with pg_dump",
            hint="pg_dump --format=custom (docs/postgresql.md says how, and how to restore)",
        )
    if not settings.path.exists():
        raise StoreError(f"{settings.path}: there is no store yet to back up", hint="run digest once first")
    if _is_the_store(target, settings.path):  # renamed over the live store (or its WAL), it would lose or damage it
        raise StoreError(
            f"{target}: this is the store itself (or its -wal, -shm or .lock file): a backup must be another file",
            hint="name a file beside it or in another folder, e.g. backups/digest.sqlite3",
        )
    partial = target.with_name(f".{target.name}.partial")
    with open_store(settings, readonly=True) as store:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            copy = sqlite3.connect(partial)
            try:
                assert isinstance(store.db, sqlite3.Connection)
                store.db.backup(copy)
                _check_copy(copy, settings.path)  # (the backup API copies bad pages as they are)
                copy.execute("PRAGMA journal_mode = DELETE")  # one self-contained file, no -wal beside it
            finally:
                copy.close()
            with open(partial, "rb") as written:
                os.fsync(written.fileno())
            os.replace(partial, target)
        except (sqlite3.Error, OSError, StoreError) as exc:
            try:
                partial.unlink(missing_ok=True)
            except OSError:  # (its folder could not be made: there is nothing to remove)
                pass
            if isinstance(exc, StoreError):
                raise
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise StoreError(f"{target}: cannot write the backup: {reason}", hint="nothing was replaced; try again") from exc
    return target.stat().st_size


def _check_copy(copy: sqlite3.Connection, path: Path) -> None:
    """A StoreError saying the store at ``path`` is damaged unless SQLite's quick_check finds its copy whole."""
    try:
        problems = [str(row[0]) for row in copy.execute("PRAGMA quick_check")]
    except sqlite3.DatabaseError as exc:
        problems = [str(exc)]
    if problems != ["ok"]:
        raise _damaged(path, _first_problem(problems))


def _first_problem(problems: list[str]) -> str:
    """quick_check's report in one line: its first problem, and how many more lines the report
    has (a row may hold several lines, under a "*** in database main ***" heading; SQLite stops
    reporting at 100 rows)."""
    lines = [line.strip() for row in problems for line in row.splitlines()]
    found = [line for line in lines if line and not line.startswith("***")] or ["no detail"]
    more = f"; {len(found) - 1} more lines of SQLite's report" if len(found) > 1 else ""
    return found[0] + more


def _damaged(path: Path, detail: str) -> StoreError:
    return StoreError(f"{path}: the store is damaged ({detail})",
                      hint=f"restore the last backup (see docs/guarantees.md); `sqlite3 {path} .recover` may save the rest")


def _is_the_store(target: Path, store: Path) -> bool:
    """Whether ``target`` names the store's file, its -wal or -shm file or its lock file (by path or, existing, by inode)."""
    for name in (store, *(store.with_name(store.name + end) for end in ("-wal", "-shm", ".lock"))):
        if target.resolve() == name.resolve():
            return True
        try:
            if os.path.samefile(target, name):
                return True
        except OSError:  # (one of them does not exist)
            continue
    return False


# SQLite's primary result codes (the low byte of an extended code) that say what is wrong with the file.
_BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = 5, 6, 8, 10, 11, 13, 14, 26
_READONLY_DIRECTORY = _READONLY | (6 << 8)


def store_error(path: Path, exc: sqlite3.Error, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> StoreError:
    """The one-line StoreError for an SQLite error on the store at ``path``: says what is wrong and what to do."""
    code = getattr(exc, "sqlite_errorcode", None) or 0
    primary = code & 0xFF
    if primary == _NOTADB:
        return StoreError(f"{path}: not a digest store: the file is not an SQLite database",
                          hint="check [store] path in the config")
    if primary == _CORRUPT:
        return _damaged(path, str(exc))
    if primary in (_BUSY, _LOCKED):
        return StoreError(f"{path}: the store is locked by another process (waited {busy_timeout:g} s)",
                          hint="try again when it is done (an sqlite3 shell, a copy?), or raise [store] busy_timeout")
    if code == _READONLY_DIRECTORY:
        return StoreError(f"{path}: the store's folder is read-only (SQLite keeps its -wal and -shm files beside the store)",
                          hint=f"let this user write to {path.parent}")
    if primary == _READONLY:
        return StoreError(f"{path}: the store is read-only", hint=f"let this user write to {path} and its folder")
    if primary == _CANTOPEN:
        return StoreError(f"{path}: cannot open the store ({exc})",
                          hint=f"check that {path.parent} exists and this user may write to it")
    if primary == _FULL:
        return StoreError(f"{path}: the disk is full: the store could not be written ({exc})",
                          hint="free some space and run again: what was not stored is done again")
    if primary == _IOERR:
        return StoreError(f"{path}: the store could not be read or written: disk I/O error ({exc})",
                          hint="check the disk; restore the last backup if the file is damaged")
    return StoreError(f"{path}: store error: {exc}")


def _database_errors() -> tuple[type[BaseException], ...]:
    """The errors a store's connection raises: SQLite's, and psycopg's once a PostgreSQL store is open."""
    return (sqlite3.Error, *postgres.driver_errors())


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


class SeenStore:
    """The store: an SQLite file (:meth:`open`) or a PostgreSQL database (:meth:`connect`); use
    as a context manager to close it."""

    def __init__(
        self,
        path: Path,
        connection: Connection,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        *,
        server: postgres.Connection | None = None,
    ) -> None:
        self.path = path
        self.db: Connection = connection
        self.busy_timeout = busy_timeout
        self.postgres = server  # the same connection, when the store is on PostgreSQL
        self.location = server.location if server is not None else str(path)
        self._version: int | None = None  # PostgreSQL: the schema version, read once (a round trip each)

    # -- opening -------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, *, readonly: bool = False, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> SeenStore:
        """Open (creating if needed) the store at ``path`` and bring its schema up to date.

        ``readonly`` never writes the file: a missing store opens as an empty one in memory.
        Opened for writing, the file is checked to be writable (a write rolled back), so that a
        read-only store stops a run before it reads its sources.  Whatever makes the file
        unusable, here or later inside ``with store:``, is a :class:`StoreError` of one line
        (see :func:`store_error`); ``busy_timeout`` is how many seconds a statement waits for
        another process's lock.
        """
        try:
            if readonly:
                target = f"{path.resolve().as_uri()}?mode=ro" if path.exists() else ":memory:"
                db = sqlite3.connect(target, isolation_level=None, timeout=busy_timeout, uri=True)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(path, isolation_level=None, timeout=busy_timeout)
        except sqlite3.Error as exc:
            raise store_error(path, exc, busy_timeout) from exc
        except OSError as exc:
            raise StoreError(
                f"{path}: cannot create the store: {exc.strerror or exc}",
                hint=f"check that this user may create {path.parent}",
            ) from None
        db.row_factory = sqlite3.Row
        store = cls(path, db, busy_timeout)
        try:
            with store.translated():
                if readonly and path.exists():
                    store._check_version()
                    return store
                db.execute("PRAGMA journal_mode = WAL")
                db.execute("PRAGMA synchronous = NORMAL")
                db.execute("PRAGMA foreign_keys = ON")
                store._migrate()  # (a missing store opened read-only: an empty one in memory)
                if not readonly:
                    store._check_writable()
                    faults.store_full(db)
        except BaseException:
            db.close()
            raise
        return store

    @classmethod
    def connect(
        cls, url: str, *, password: str | None = None, readonly: bool = False, busy_timeout: float = DEFAULT_BUSY_TIMEOUT
    ) -> SeenStore:
        """Connect to the PostgreSQL store at ``url`` and bring its schema up to date.

        An empty database gets the schema (even for ``readonly``: as a missing SQLite file reads
        as an empty store); otherwise ``readonly`` never migrates, and the session is read-only.
        A migration waits (up to ``busy_timeout``) for a running cycle's lock and holds it, so
        two processes never migrate at once and never under a cycle.  Errors are one-line
        :class:`StoreError` (see :func:`digest.postgres.store_error`).
        """
        server = postgres.connect(url, password=password, busy_timeout=busy_timeout)
        store = cls(Path(server.location), server, busy_timeout, server=server)
        try:
            with store.translated():
                version = store._check_version()
                if version < len(MIGRATIONS) and (version == 0 or not readonly):
                    with server.waiting_lock():
                        store._version = None  # another process may have migrated while we waited
                        store._migrate()
                if readonly:
                    server.execute("SET default_transaction_read_only = on")
        except BaseException:
            server.close()
            raise
        return store

    def __enter__(self) -> SeenStore:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        """Close the connection; a database error that ends the block becomes a one-line StoreError."""
        self.close()
        if error is not None and isinstance(error, _database_errors()):
            raise self._error(error) from error

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    def alive(self) -> bool:
        """Whether the connection can still be used: False once PostgreSQL has ended it (a long-lived
        process then opens the store again); an SQLite file is always there."""
        return self.postgres is None or self.postgres.alive()

    def _error(self, exc: BaseException) -> StoreError:
        """The one-line StoreError for a database error on this store."""
        if isinstance(exc, sqlite3.Error):
            return store_error(self.path, exc, self.busy_timeout)
        return postgres.store_error(self.location, exc, self.busy_timeout)

    @contextmanager
    def translated(self) -> Iterator[None]:
        """Turn a database error raised in the block into the store's one-line StoreError."""
        try:
            yield
        except BaseException as exc:
            if isinstance(exc, _database_errors()):
                raise self._error(exc) from exc
            raise

    @property
    def schema_version(self) -> int:
        """The schema version the store is at."""
        if self.postgres is not None:
            if self._version is None:
                self._version = self.postgres.schema_version()
            return self._version
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def _check_version(self) -> int:
        """The store's schema version; a StoreError if a newer digest wrote it."""
        version = self.schema_version
        if version > len(MIGRATIONS):
            raise StoreError(
                f"{self.location}: store schema version {version} is newer than this digest knows ({len(MIGRATIONS)})",
                hint="upgrade digest (a newer version made this store), or restore a backup made before the upgrade",
            )
        return version

    def _check_writable(self) -> None:
        """Write the schema version over itself and roll back: SQLite refuses it on a read-only file.

        ``BEGIN IMMEDIATE`` also waits (up to the busy timeout) for another process's write lock.
        """
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute(f"PRAGMA user_version = {self.schema_version}")
        finally:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")

    def _migrate(self) -> None:
        """Run the migrations the store lacks, each in its own transaction with its version number.

        The same scripts on both engines: on PostgreSQL each statement is translated
        (:func:`digest.postgres.translate`) and an empty database is bootstrapped first.
        """
        version = self._check_version()
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            with self.transaction():
                if self.postgres is not None:
                    if number == 1:
                        self.postgres.bootstrap()
                    for statement in postgres.statements(script):
                        if postgres.translate(statement):  # (a PRAGMA has nothing to run there)
                            self.db.execute(statement)
                    self.postgres.set_schema_version(number)
                    self._version = number
                    continue
                for statement in script.split(";"):
                    if statement.strip():
                        self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version = {number}")

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction: committed on success, rolled back on any exception.

        SQLite's ``BEGIN IMMEDIATE`` takes the file's write lock at once (PostgreSQL's ``BEGIN``
        locks rows as they are written).
        """
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            if self.db.in_transaction:  # (SQLite has already rolled back after SQLITE_FULL, IOERR, ...)
                self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the store's cycle lock; raise LockedError if another process holds it.

        An OS file lock beside an SQLite store, an advisory lock on PostgreSQL: released by the
        kernel, or the server, even when the holder is killed.
        """
        if self.postgres is not None:
            with self.postgres.cycle_lock():
                yield
            return
        lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            handle = open(lock_path, "a+")
        except OSError as exc:
            raise StoreError(
                f"{lock_path}: cannot open the store's lock file: {exc.strerror or exc}",
                hint=f"check that this user may write to {lock_path.parent}",
            ) from None
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "unknown"
                raise LockedError(
                    f"{self.path}: another digest cycle is running on this store (pid {holder})",
                    hint="wait for it to finish; the lock is released when that process ends",
                ) from None
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()))
            handle.flush()
            yield
        finally:
            handle.close()

    # -- seen papers ---------------------------------------------------------------------------

    def lookup_keys(self, keys: Iterable[str]) -> dict[str, int]:
        """Map each of ``keys`` the store knows to its paper id."""
        unique = list(dict.fromkeys(keys))
        found: dict[str, int] = {}
        for chunk in _chunks(unique):
            marks = ",".join("?" * len(chunk))
            for row in self.db.execute(f"SELECT key, paper_id FROM paper_keys WHERE key IN ({marks})", chunk):
                found[row[0]] = row[1]
        return found

    def diff(self, papers: Sequence[Paper]) -> Diff:
        """Split ``papers`` into those never seen before and those the store already has."""
        known = self.lookup_keys(k for p in papers for k in p.keys)
        new: list[Paper] = []
        seen: list[SeenPaper] = []
        for paper in papers:
            paper_id = next((known[k] for k in paper.keys if k in known), None)
            if paper_id is None:
                new.append(paper)
            else:
                seen.append(SeenPaper(paper, paper_id))
        return Diff(tuple(new), tuple(seen))

    def ingested_hashes(self, hashes: Iterable[str]) -> set[str]:
        """The content hashes among ``hashes`` whose files were already ingested."""
        unique = list(dict.fromkeys(hashes))
        found: set[str] = set()
        for chunk in _chunks(unique):
            marks = ",".join("?" * len(chunk))
            found.update(r[0] for r in self.db.execute(f"SELECT content_hash FROM ingested_files WHERE content_hash IN ({marks})", chunk))
        return found

    # -- the one commit ------------------------------------------------------------------------

    def commit(
        self,
        digest: Digest | None,
        diff: Diff,
        *,
        ingested: Sequence[tuple[str, str, str, int]] = (),
        channels: Sequence[tuple[str, str]] = (),
        now: dt.datetime,
    ) -> int | None:
        """Store the digest, mark its papers seen and queue its deliveries, in one transaction.

        ``ingested`` holds (content hash, source, origin, entries) of the files read; ``channels``
        the (channel, recipient) outbox rows to create.  Keys that seen papers show for the first
        time are learned.  With no digest (nothing new) only files and keys are recorded.
        Returns the digest id.
        """
        stamp = _iso(now)
        with self.transaction() as db:
            digest_id: int | None = None
            if digest is not None:
                counts = digest.counts
                digest_id = inserted_id(db.execute(
                    "INSERT INTO digests (date, created_at, entries, new, already_seen, duplicates) VALUES (?, ?, ?, ?, ?, ?)"
                    " RETURNING id",
                    (digest.date.isoformat(), stamp, counts.entries, counts.new, counts.already_seen, counts.duplicates),
                ))
                self._insert_papers(digest, digest_id, stamp)
                topic_counts = _topic_counts(digest)
                db.executemany(
                    "INSERT INTO digest_topic_counts (digest_id, topic, count) VALUES (?, ?, ?)",
                    [(digest_id, topic, count) for topic, count in topic_counts.items()],
                )
                db.executemany(
                    "INSERT INTO topic_month_counts (topic, month, count) VALUES (?, ?, ?)"
                    " ON CONFLICT (topic, month) DO UPDATE SET count = topic_month_counts.count + excluded.count",
                    [(topic, digest.date.isoformat()[:7], count) for topic, count in topic_counts.items()],
                )
                db.executemany(
                    "INSERT INTO deliveries (digest_id, channel, recipient, updated_at) VALUES (?, ?, ?, ?)",
                    [(digest_id, channel, recipient, stamp) for channel, recipient in channels],
                )
            # Papers seen again may bring keys we did not have (an arXiv id for a title-only paper).
            db.executemany(
                "INSERT OR IGNORE INTO paper_keys (key, paper_id) VALUES (?, ?)",
                ((k, s.paper_id) for s in diff.seen for k in s.paper.keys),
            )
            db.executemany(
                "INSERT OR IGNORE INTO ingested_files (content_hash, source, origin, entries, digest_id, ingested_at) VALUES (?, ?, ?, ?, ?, ?)",
                [(h, src, origin, n, digest_id, stamp) for h, src, origin, n in ingested],
            )
        return digest_id

    def _insert_papers(self, digest: Digest, digest_id: int, stamp: str) -> None:
        """The digest's papers, their keys and their filing, three batched statements.

        Ids are given explicitly from the current maximum: SQLite's write transaction holds the
        file's lock, and on PostgreSQL the papers table is locked against other writers (readers
        go on) until the commit.  The rows are generated as the database takes them: no list of
        10,000 rows is built.
        """
        if self.postgres is not None:
            self.db.execute("LOCK TABLE papers IN SHARE ROW EXCLUSIVE MODE")
        first = int(self.db.execute("SELECT COALESCE(MAX(id), 0) FROM papers").fetchone()[0]) + 1

        def placed() -> Iterator[tuple[int, str, Paper]]:
            n = first
            for group in digest.groups:
                for paper in group.papers:
                    yield n, group.code, paper
                    n += 1

        self.db.executemany(
            "INSERT INTO papers (id, key, title, abstract, url, arxiv_id, doi, authors, source, upvotes, published,"
            " first_seen, categories) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    paper_id, paper.key, paper.title, paper.abstract, paper.url, paper.arxiv_id, paper.doi,
                    json.dumps(list(paper.authors), ensure_ascii=False), paper.source, paper.upvotes,
                    paper.published.isoformat() if paper.published else None, stamp,
                    json.dumps(list(paper.categories)) if paper.categories else "[]",
                )
                for paper_id, _, paper in placed()
            ),
        )
        self.db.executemany(
            "INSERT OR IGNORE INTO paper_keys (key, paper_id) VALUES (?, ?)",
            ((k, paper_id) for paper_id, _, paper in placed() for k in paper.keys),
        )
        self.db.executemany(
            "INSERT INTO digest_papers (digest_id, paper_id, topic, rank, position, source, why) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                (digest_id, paper_id, topic, paper_id - first, paper.position, paper.source,
                 _placement_json(digest.placements.get(paper.key)))
                for paper_id, topic, paper in placed()
            ),
        )

    # -- reading digests back ------------------------------------------------------------------

    def digests(
        self, *, newest_first: bool = True, limit: int | None = None, on: dt.date | None = None, since: dt.date | None = None
    ) -> list[DigestRecord]:
        """Stored digests (those of one date with ``on``, from a date on with ``since``), newest first by default."""
        order = "DESC" if newest_first else "ASC"
        where, params = ("WHERE date = ?", [on.isoformat()]) if on else ("WHERE date >= ?", [since.isoformat()]) if since else ("", [])
        sql = f"SELECT * FROM digests {where} ORDER BY date {order}, id {order}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [
            DigestRecord(
                r["id"],
                dt.date.fromisoformat(r["date"]),
                dt.datetime.fromisoformat(r["created_at"]),
                DigestCounts(r["entries"], r["new"], r["already_seen"], r["duplicates"]),
            )
            for r in self.db.execute(sql, params)
        ]

    def last_digest(self) -> DigestRecord | None:
        """The most recently created digest, if any."""
        found = self.digests(limit=1)
        return found[0] if found else None

    def iter_digest_papers(
        self, digest_ids: Sequence[int], *, topic: str | None = None, offset: int = 0, limit: int | None = None
    ) -> Iterator[Paper]:
        """The papers filed in the given digests (under ``topic``), in digest then rank order,
        read one row at a time: a caller that streams them never holds a big day whole.

        ``offset`` and ``limit`` pick a slice of that order (the first N of a topic: what an
        email shows).
        """
        where = _digest_ids_condition(digest_ids)
        params: list[Any] = []
        index = ""
        if topic is not None:
            where += " AND dp.topic = ?"
            params.append(topic)
            # Through an index on (digest, topic[, rank]): that topic's rows only.  (On a store
            # before schema 3, opened read-only, the planner without statistics would take the
            # primary key and scan every filing of the digests once per topic.)
            if self.schema_version < RANK_INDEX_VERSION:
                index = " INDEXED BY digest_papers_by_topic"
        filed = (
            "SELECT d.id AS digest_id, d.date, dp.rank, dp.position, dp.source, dp.paper_id"
            f" FROM digest_papers dp{index} JOIN digests d ON d.id = dp.digest_id WHERE {where} ORDER BY d.date, d.id, dp.rank"
        )
        if limit is not None or offset:
            # Pick the slice among the filing rows, then join only its papers (not every abstract of the topic).
            filed += " LIMIT ? OFFSET ?"
            params += [_NO_LIMIT if limit is None else max(0, int(limit)), max(0, int(offset))]
        notes = ""
        if self.schema_version >= LLM_VERSION:  # each paper's machine summary, through the primary key
            notes = (
                ", s.summary AS llm_summary, s.model AS llm_model, s.prompt_version AS llm_prompt"
                " FROM ({filed}) f JOIN papers p ON p.id = f.paper_id LEFT JOIN llm_summaries s ON s.paper_key = p.key"
            )
        rows = self.db.execute(
            f"SELECT f.position, f.source, p.*"
            + (notes.format(filed=filed) if notes else f" FROM ({filed}) f JOIN papers p ON p.id = f.paper_id")
            + " ORDER BY f.date, f.digest_id, f.rank",
            params,
        )
        for row in rows:
            yield _stored_paper(row)

    def papers_by_ids(self, paper_ids: Iterable[int]) -> dict[int, Paper]:
        """The stored papers with these ids (abstracts included), by id."""
        wanted = [str(int(i)) for i in dict.fromkeys(paper_ids)]
        found: dict[int, Paper] = {}
        for chunk in _chunks(wanted):
            rows = self.db.execute(
                "SELECT dp.position, dp.source, p.* FROM papers p JOIN digest_papers dp ON dp.paper_id = p.id"
                f" WHERE p.id IN ({','.join(chunk)})"
            )
            for row in rows:
                found[row["id"]] = _stored_paper(row)
        return found

    def topic_counts(self, digest_ids: Sequence[int]) -> dict[str, int]:
        """How many papers the given digests filed under each topic (topics without any left out).

        Read from the ``digest_topic_counts`` aggregate (the paper rows on a version 1 store
        opened read-only, see :meth:`filed_counts`).
        """
        where = _digest_ids_condition(digest_ids, "digest_id")
        if self.schema_version < COUNTS_VERSION:
            sql = f"SELECT topic, COUNT(*) FROM digest_papers WHERE {where} GROUP BY topic"
        else:
            sql = f"SELECT topic, SUM(count) FROM digest_topic_counts WHERE {where} GROUP BY topic"
        return {r[0]: int(r[1]) for r in self.db.execute(sql) if r[1]}

    def placements(self, digest_ids: Sequence[int], key: str | None = None) -> Iterator[tuple[str, Placement]]:
        """(paper key, placement) of the papers the given digests filed with one (of the paper
        whose strongest key is ``key``), in digest then rank order."""
        where = _digest_ids_condition(digest_ids)
        params: list[Any] = []
        found = ""
        if key is not None:  # one paper, found through the paper_keys index
            found = " JOIN paper_keys k ON k.paper_id = p.id"
            where += " AND k.key = ? AND p.key = ?"
            params += [key, key]
        rows = self.db.execute(
            "SELECT p.key, dp.topic, dp.why FROM digest_papers dp JOIN digests d ON d.id = dp.digest_id"
            f" JOIN papers p ON p.id = dp.paper_id{found} WHERE {where} ORDER BY d.date, d.id, dp.rank",
            params,
        )
        for found, topic, why in rows:
            placement = _placement(topic, json.loads(why))
            if placement is not None:
                yield found, placement

    def filed_counts(self, *, since: dt.date | None = None) -> list[tuple[str, int, int]]:
        """(topic, digest id, papers) for every topic of every stored digest (of those dated
        ``since`` or later), by topic then digest.

        Read from the ``digest_topic_counts`` aggregate (one row per digest and topic), never from
        the paper rows: its cost follows the number of digests, not of papers.  A version 1 store
        opened read-only (not migrated: ``digest site`` before the first run of a newer digest)
        has no aggregate yet: its paper rows are counted instead.
        """
        where, params = "", []
        if since is not None:
            where, params = " WHERE digest_id IN (SELECT id FROM digests WHERE date >= ?)", [since.isoformat()]
        rows = self.db.execute(f"SELECT * FROM ({_filed_counts_sql(self.schema_version)}) f{where} ORDER BY topic, digest_id", params)
        return [(r[0], r[1], r[2]) for r in rows]

    def topic_month_counts(self) -> list[tuple[str, str, int]]:
        """(topic, ``YYYY-MM``, papers) for every topic and month with papers, one row each.

        Read from the ``topic_month_counts`` aggregate: its size follows topics times months, not
        days.  An older store opened read-only aggregates the per-digest counts instead.
        """
        if self.schema_version >= MONTH_COUNTS_VERSION:
            rows = self.db.execute("SELECT topic, month, count FROM topic_month_counts WHERE count > 0 ORDER BY topic, month")
        else:
            rows = self.db.execute(
                "SELECT topic, substr(d.date, 1, 7) AS month, SUM(n) FROM (" + _filed_counts_sql(self.schema_version) + ") f"
                " JOIN digests d ON d.id = f.digest_id GROUP BY topic, month ORDER BY topic, month"
            )
        return [(r[0], r[1], int(r[2])) for r in rows if r[2]]

    def archive_day_count(self) -> int:
        """How many dates have a digest that filed papers (each digest costs one primary-key probe)."""
        found = self.db.execute(
            f"SELECT COUNT(DISTINCT date) FROM digests d WHERE EXISTS ({_filed_probe_sql(self.schema_version)})"
        ).fetchone()
        return int(found[0])

    def newest_filed_dates(self, limit: int, *, before: dt.date | None = None) -> list[dt.date]:
        """The ``limit`` newest dates (before ``before``) with a digest that filed papers, newest
        first: read backwards through the date index, so the cost follows ``limit``."""
        where, params = ("d.date < ? AND ", [before.isoformat()]) if before else ("", [])
        rows = self.db.execute(
            f"SELECT DISTINCT d.date FROM digests d WHERE {where}EXISTS ({_filed_probe_sql(self.schema_version)})"
            " ORDER BY d.date DESC LIMIT ?",
            [*params, limit],
        )
        return [dt.date.fromisoformat(r[0]) for r in rows]

    def filed_papers(
        self, *, topic: str | None = None, digest_ids: Sequence[int] | None = None, per_topic: int | None = None
    ) -> list[FiledPaper]:
        """Light rows of the filed papers (of one topic, of some digests), newest date first, then digest and rank.

        With ``digest_ids`` the rows come through an index (the primary key, or (topic, digest_id)),
        so the cost follows the digests asked for, not the history.  ``per_topic`` keeps only the
        first N (N >= 1) of each topic in each digest (what a feed entry shows).
        """
        sql, params = filed_papers_query(
            topic=topic, digest_ids=digest_ids, per_topic=per_topic, ranked=self.schema_version >= RANK_INDEX_VERSION
        )
        dates: dict[str, dt.date] = {}
        return [
            FiledPaper(r[0], dates.get(r[1]) or dates.setdefault(r[1], dt.date.fromisoformat(r[1])), r[2], r[3], r[4], r[5])
            for r in self.db.execute(sql, params)
        ]

    # -- what a language model said of papers ([llm]) -------------------------------------------

    def llm_notes(self, keys: Iterable[str]) -> dict[str, LlmNote]:
        """The stored notes found under any of ``keys``, by that key (none on a store older than
        the notes, opened read-only)."""
        unique = list(dict.fromkeys(keys))
        found: dict[str, LlmNote] = {}
        if self.schema_version < LLM_VERSION:
            return found
        for chunk in _chunks(unique):
            marks = ",".join("?" * len(chunk))
            for row in self.db.execute(
                f"SELECT paper_key, summary, topic, model, prompt_version FROM llm_summaries WHERE paper_key IN ({marks})", chunk
            ):
                found[row[0]] = LlmNote(row[1], row[2], row[3], row[4])
        return found

    def save_llm_notes(self, notes: Iterable[tuple[str, LlmNote]], *, now: dt.datetime) -> None:
        """Remember what the model said of each paper (by its strongest key), in one transaction;
        a paper that already has a note keeps it."""
        stamp = _iso(now)
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO llm_summaries (paper_key, summary, topic, model, prompt_version, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (paper_key) DO NOTHING",
                [(key, n.summary, n.topic, n.model, n.prompt_version, stamp) for key, n in notes],
            )

    # -- outbox --------------------------------------------------------------------------------

    def pending_deliveries(self, channel: str | None = None, *, now: dt.datetime | None = None) -> list[Delivery]:
        """Pending outbox rows (due ones only when ``now`` is given), oldest digest first."""
        sql = (
            "SELECT dl.*, d.date AS digest_date FROM deliveries dl JOIN digests d ON d.id = dl.digest_id"
            " WHERE dl.state = 'pending'"
        )
        params: list[Any] = []
        if channel is not None:
            sql += " AND dl.channel = ?"
            params.append(channel)
        if now is not None:
            sql += " AND (dl.next_attempt_at IS NULL OR dl.next_attempt_at <= ?)"
            params.append(_iso(now))
            if self.schema_version >= CLAIMS_VERSION:  # not those a sender holds
                sql += " AND (dl.claimed_until IS NULL OR dl.claimed_until <= ?)"
                params.append(_iso(now))
        sql += " ORDER BY d.date, dl.digest_id, dl.id"
        return [_delivery(r) for r in self.db.execute(sql, params)]

    def claim_deliveries(
        self, channel: str, *, worker: str, now: dt.datetime, lease: dt.timedelta, limit: int | None = None
    ) -> list[Delivery]:
        """Claim the due pending rows of ``channel`` (at most ``limit``) that no other sender holds,
        for ``lease``; return them, oldest digest first.

        One statement in one transaction: on PostgreSQL the rows are picked ``FOR UPDATE SKIP
        LOCKED``, so senders claiming at once each get rows of their own without waiting; SQLite's
        write transaction lets one claim at a time.  A claim whose time has passed is free again
        (its sender died); a run's claims (``worker`` :data:`RUN_CLAIM`) are taken back by the next
        run at once, since only one run is ever alive.  Marking a row releases its claim.
        """
        stamp = _iso(now)
        free = "claimed_until IS NULL OR claimed_until <= ?" + (" OR claimed_by = ?" if worker == RUN_CLAIM else "")
        params: list[Any] = [worker, _iso(now + lease), channel, stamp, stamp, *([RUN_CLAIM] if worker == RUN_CLAIM else [])]
        skip_locked = " FOR UPDATE SKIP LOCKED" if self.postgres is not None else ""  # (SQLite: one writer at a time)
        with self.transaction() as db:
            ids = [
                r[0]
                for r in db.execute(
                    "UPDATE deliveries SET claimed_by = ?, claimed_until = ? WHERE id IN ("
                    "SELECT id FROM deliveries WHERE state = 'pending' AND channel = ?"
                    f" AND (next_attempt_at IS NULL OR next_attempt_at <= ?) AND ({free})"
                    f" ORDER BY digest_id, id LIMIT ?{skip_locked}) RETURNING id",
                    [*params, _NO_LIMIT if limit is None else int(limit)],
                ).fetchall()
            ]
        if not ids:
            return []
        rows = self.db.execute(
            "SELECT dl.*, d.date AS digest_date FROM deliveries dl JOIN digests d ON d.id = dl.digest_id"
            f" WHERE {_digest_ids_condition(ids, 'dl.id')} ORDER BY d.date, dl.digest_id, dl.id"
        )
        return [_delivery(r) for r in rows]

    def renew_claim(self, delivery_id: int, *, worker: str, until: dt.datetime) -> bool:
        """Extend ``worker``'s claim on one pending row to ``until``; False when the row is no longer
        its own (its claim ended and another sender took it, or it was marked): then it must not be sent.

        A sender checks each row this way just before sending it, so a sender slower than its
        claim (a rate limit, a slow server) never sends a row another one has taken meanwhile.
        """
        return bool(self.db.execute(
            "UPDATE deliveries SET claimed_until = ? WHERE id = ? AND claimed_by = ? AND state = 'pending'",
            (_iso(until), delivery_id, worker),
        ).rowcount)

    def release_claims(self, worker: str) -> int:
        """Give back the rows ``worker`` holds and did not mark (a batch cut short); how many."""
        return int(self.db.execute(
            "UPDATE deliveries SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by = ? AND state = 'pending'", (worker,)
        ).rowcount)

    def claimed_elsewhere(self, channel: str, *, worker: str, now: dt.datetime) -> int:
        """How many pending rows of ``channel`` other senders hold now (a run's claims not counted)."""
        row = self.db.execute(
            "SELECT COUNT(*) FROM deliveries WHERE state = 'pending' AND channel = ? AND claimed_until > ?"
            " AND claimed_by <> ? AND claimed_by <> ?",
            (channel, _iso(now), worker, RUN_CLAIM),
        ).fetchone()
        return int(row[0])

    def pending_count(self, channel: str | None = None) -> int:
        """How many outbox rows (of ``channel``) are pending."""
        sql, params = "SELECT COUNT(*) FROM deliveries WHERE state = 'pending'", []
        if channel is not None:
            sql, params = sql + " AND channel = ?", [channel]
        return int(self.db.execute(sql, params).fetchone()[0])

    def deliveries(self, digest_id: int) -> list[Delivery]:
        """Every outbox row of one digest."""
        rows = self.db.execute(
            "SELECT dl.*, d.date AS digest_date FROM deliveries dl JOIN digests d ON d.id = dl.digest_id"
            " WHERE dl.digest_id = ? ORDER BY dl.id",
            (digest_id,),
        )
        return [_delivery(r) for r in rows]

    def mark_delivery(
        self,
        delivery_id: int,
        state: str,
        *,
        now: dt.datetime,
        error: str | None = None,
        next_attempt_at: dt.datetime | None = None,
    ) -> None:
        """Record the outcome of one delivery attempt (committed at once); the row's claim goes with it."""
        self.db.execute(
            "UPDATE deliveries SET state = ?, attempts = attempts + 1, last_error = ?, next_attempt_at = ?, updated_at = ?,"
            " claimed_by = NULL, claimed_until = NULL WHERE id = ?",
            (state, error, _iso(next_attempt_at) if next_attempt_at else None, _iso(now), delivery_id),
        )

    def delivery_counts(self) -> dict[str, int]:
        """How many outbox rows are in each state."""
        counts = {"pending": 0, "sent": 0, "failed": 0}
        for row in self.db.execute("SELECT state, COUNT(*) FROM deliveries GROUP BY state"):
            counts[row[0]] = row[1]
        return counts

    # -- sources' health -----------------------------------------------------------------------

    def record_source(
        self,
        name: str,
        *,
        now: dt.datetime,
        entries: int | None = None,
        error: str | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
        keep_validators: bool = False,
    ) -> None:
        """Remember a source's last outcome (and its conditional-GET validators)."""
        stamp = _iso(now)
        with self.transaction() as db:
            db.execute("INSERT OR IGNORE INTO sources (name) VALUES (?)", (name,))
            if error is not None:
                db.execute("UPDATE sources SET last_error = ?, last_error_at = ? WHERE name = ?", (error, stamp, name))
                return
            db.execute(
                "UPDATE sources SET last_success = ?, last_entries = ?, last_error = NULL WHERE name = ?",
                (stamp, entries, name),
            )
            if not keep_validators:
                db.execute("UPDATE sources SET etag = ?, last_modified = ? WHERE name = ?", (etag, last_modified, name))

    def sources(self) -> list[dict[str, Any]]:
        """Every source the store has heard of."""
        return [dict(r) for r in self.db.execute("SELECT * FROM sources ORDER BY name")]

    def stats(self) -> dict[str, Any]:
        """Sizes for ``digest status``."""
        counts = {
            name: int(self.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
            for name, table in (("papers", "papers"), ("keys", "paper_keys"), ("digests", "digests"), ("files", "ingested_files"))
        }
        if self.postgres is not None:
            return {**counts, "bytes": self.postgres.size_bytes()}
        return {
            **counts,
            "bytes": self.path.stat().st_size if self.path.exists() else 0,
        }


def filed_papers_query(
    *, topic: str | None = None, digest_ids: Sequence[int] | None = None, per_topic: int | None = None, ranked: bool = True
) -> tuple[str, list[Any]]:
    """The SQL and parameters :meth:`SeenStore.filed_papers` runs (tests check its query plan).

    ``ranked``: the store has ``digest_topic_counts`` and the (digest, topic, rank) index
    (schema 3); an older store opened read-only is read with a window over its filings instead.
    """
    where: list[str] = []
    params: list[Any] = []
    if topic is not None:
        where.append("dp.topic = ?")
        params.append(topic)
    if digest_ids is not None:
        where.append(_digest_ids_condition(digest_ids))
    condition = " WHERE " + " AND ".join(where) if where else ""
    if per_topic is not None and ranked:
        # Per (digest, topic) pair: the rank of its Nth filing, then the filings up to it, both
        # through the index: a huge day costs N rows per topic, not a pass over the day.  CROSS
        # JOIN keeps the pairs the outer loop (SQLite's planner does not reorder it).
        pairs = condition.replace("dp.", "c.")
        sql = (
            "SELECT dp.digest_id, d.date, dp.topic, dp.rank, p.key, p.title FROM digest_topic_counts c"
            " CROSS JOIN digest_papers dp ON dp.digest_id = c.digest_id AND dp.topic = c.topic AND dp.rank <= COALESCE(("
            " SELECT x.rank FROM digest_papers x WHERE x.digest_id = c.digest_id AND x.topic = c.topic"
            " ORDER BY x.rank LIMIT 1 OFFSET ?), 9223372036854775807)"
            " JOIN digests d ON d.id = dp.digest_id JOIN papers p ON p.id = dp.paper_id"
            + pairs
            + " ORDER BY d.date DESC, dp.digest_id, dp.rank"
        )
        return sql, [int(per_topic) - 1, *params]
    if per_topic is not None:
        # Number the filings of each (digest, topic) by rank and join the papers of the first N
        # only: a huge day costs a scan of its filing rows, not a Paper per row.
        sql = (
            "SELECT f.digest_id, f.date, f.topic, f.rank, p.key, p.title FROM ("
            " SELECT dp.digest_id, d.date, dp.topic, dp.rank, dp.paper_id,"
            " ROW_NUMBER() OVER (PARTITION BY dp.digest_id, dp.topic ORDER BY dp.rank) AS n"
            " FROM digest_papers dp JOIN digests d ON d.id = dp.digest_id" + condition
            + ") f JOIN papers p ON p.id = f.paper_id WHERE f.n <= ? ORDER BY f.date DESC, f.digest_id, f.rank"
        )
        return sql, [*params, int(per_topic)]
    sql = (
        "SELECT dp.digest_id, d.date, dp.topic, dp.rank, p.key, p.title"
        " FROM digest_papers dp JOIN digests d ON d.id = dp.digest_id JOIN papers p ON p.id = dp.paper_id"
        + condition
        + " ORDER BY d.date DESC, dp.digest_id, dp.rank"
    )
    return sql, params


def _filed_counts_sql(version: int) -> str:
    """A query of (topic, digest_id, n) rows: the aggregate, or the paper rows counted on a version 1 store."""
    if version < COUNTS_VERSION:
        return "SELECT topic, digest_id, COUNT(*) AS n FROM digest_papers GROUP BY topic, digest_id"
    return "SELECT topic, digest_id, count AS n FROM digest_topic_counts"


def _filed_probe_sql(version: int) -> str:
    """A correlated subquery that finds a row when digest ``d`` filed papers (a primary-key prefix probe)."""
    if version < COUNTS_VERSION:
        return "SELECT 1 FROM digest_papers WHERE digest_id = d.id"
    return "SELECT 1 FROM digest_topic_counts WHERE digest_id = d.id AND count > 0"


def _digest_ids_condition(digest_ids: Sequence[int], column: str = "dp.digest_id") -> str:
    """``column IN (...)`` for the digest ids, integers written into the SQL: no limit on their number."""
    return f"{column} IN ({','.join(str(int(i)) for i in digest_ids) or 'NULL'})"


def _topic_counts(digest: Digest) -> dict[str, int]:
    counts: dict[str, int] = {}
    for group in digest.groups:
        counts[group.code] = counts.get(group.code, 0) + len(group.papers)
    return {code: n for code, n in counts.items() if n}


def _placement_json(placement: Placement | None) -> str:
    if placement is None:
        return "{}"
    return json.dumps(
        {
            "score": round(placement.score, 4),
            "evidence": list(placement.evidence),
            "runner_up": placement.runner_up,
            "runner_up_score": round(placement.runner_up_score, 4),
        },
        ensure_ascii=False,
    )


def _placement(topic: str, why: dict[str, Any]) -> Placement | None:
    """The placement a filing's ``why`` column holds (None for ``{}``)."""
    if not why:
        return None
    return Placement(
        topic,
        float(why.get("score", 0.0)),
        tuple(why.get("evidence", ())),
        why.get("runner_up"),
        float(why.get("runner_up_score", 0.0)),
    )


def inserted_id(cursor: Cursor) -> int:
    """The id an ``INSERT ... RETURNING id`` gave its row (the cursor is read to its end)."""
    rows = cursor.fetchall()
    return int(rows[0][0])


def _stored_paper(row: Row) -> Paper:
    return Paper(
        title=row["title"],
        abstract=row["abstract"],
        url=row["url"],
        arxiv_id=row["arxiv_id"],
        doi=row["doi"],
        authors=tuple(json.loads(row["authors"])),
        source=row["source"],
        position=row["position"],
        upvotes=row["upvotes"],
        published=dt.date.fromisoformat(row["published"]) if row["published"] else None,
        categories=_categories(row),
        summary=_machine_summary(row),
    )


def _machine_summary(row: Row) -> MachineSummary | None:
    """A paper row's machine summary (none when the row has no ``llm_summary`` column or value)."""
    try:
        text = row["llm_summary"]
    except IndexError:
        return None
    return MachineSummary(text, row["llm_model"], row["llm_prompt"]) if text else None


def _categories(row: Row) -> tuple[str, ...]:
    """A paper row's categories: none on a store before schema 5 opened read-only (no column yet)."""
    try:
        stored = row["categories"]
    except IndexError:
        return ()
    return tuple(json.loads(stored)) if stored != "[]" else ()


def _delivery(row: Row) -> Delivery:
    return Delivery(
        id=row["id"],
        digest_id=row["digest_id"],
        digest_date=dt.date.fromisoformat(row["digest_date"]),
        channel=row["channel"],
        recipient=row["recipient"],
        state=row["state"],
        attempts=row["attempts"],
        last_error=row["last_error"],
        next_attempt_at=dt.datetime.fromisoformat(row["next_attempt_at"]) if row["next_attempt_at"] else None,
        week_end=dt.date.fromisoformat(row["week_end"]) if "week_end" in row.keys() and row["week_end"] else None,
        week_after=row["week_after"] if "week_after" in row.keys() else None,
    )

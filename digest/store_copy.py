"""``digest store migrate --to postgresql://…``: copy an SQLite store into an empty PostgreSQL database.

Every table of the store is copied (papers and their keys, digests and their filings and counts,
ingested files, the outbox, sources, subscribers and their events, and any table a later
migration adds), row for row with the same ids, in one PostgreSQL transaction: a copy that fails
leaves the database as empty as it was.  Before the commit, each table's row count in PostgreSQL
must equal the SQLite store's, read in the same SQLite read transaction; the identity sequences
then continue after the copied ids.

The SQLite store is first brought to the latest schema (as any command would), and both stores'
cycle locks are held during the copy, so that no run writes either meanwhile.  The copy goes
through PostgreSQL's ``COPY ... FROM STDIN``: a million papers take a minute or so, not an hour.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass

from digest import postgres
from digest.config import StoreConfig, store_url_problems
from digest.errors import ConfigError, StoreError
from digest.store import SeenStore, open_store


@dataclass(frozen=True, slots=True)
class CopiedStore:
    """What ``digest store migrate`` copied: each table's rows, verified equal on both sides."""

    source: str
    target: str
    counts: tuple[tuple[str, int], ...]  # (table, rows) in the order copied

    @property
    def total(self) -> int:
        """Rows copied in all."""
        return sum(n for _, n in self.counts)


def copy_to_postgresql(settings: StoreConfig, url: str, *, password: str | None) -> CopiedStore:
    """Copy the SQLite store of ``settings`` into the empty PostgreSQL database at ``url``.

    StoreError (one line) when the config's store is already on PostgreSQL, when there is no
    SQLite store, when the target cannot be reached or is not empty, or when a count differs.
    """
    if settings.url:
        raise StoreError(
            f"{postgres.redact(settings.url)}: the store is already on PostgreSQL ([store] url is set)",
            hint="digest store migrate copies the SQLite store of [store] path: remove [store] url to name it",
        )
    problems = store_url_problems(url, settings.password_env)
    if problems:
        raise ConfigError(f"--to: {problems[0]}")
    if not settings.path.exists():
        raise StoreError(f"{settings.path}: there is no SQLite store to copy", hint="check [store] path (run digest once first)")
    with open_store(settings) as source, source.lock():
        assert isinstance(source.db, sqlite3.Connection)
        _refuse_other_tables(url, password, settings.busy_timeout, {*copy_order(source.db), "digest_schema"})
        target = SeenStore.connect(url, password=password, busy_timeout=settings.busy_timeout)
        with target, target.lock():
            assert target.postgres is not None
            with source.translated(), target.translated():
                return _copy(source, target, target.postgres)


def _refuse_other_tables(url: str, password: str | None, busy_timeout: float, ours: set[str]) -> None:
    """A StoreError when the database holds tables digest did not make (another application's
    database, a mistyped --to): refused before digest's schema is created in it."""
    server = postgres.connect(url, password=password, busy_timeout=busy_timeout)
    try:
        names = [str(r[0]) for r in server.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename")]
    except postgres.driver_errors() as exc:
        raise postgres.store_error(server.location, exc, busy_timeout) from exc
    finally:
        server.close()
    other = [n for n in names if n not in ours]
    if other:
        listed = ("table " if len(other) == 1 else "tables ") + ", ".join(other[:4]) + (", ..." if len(other) > 4 else "")
        raise _not_empty(server.location, listed)


def _not_empty(location: str, listed: str) -> StoreError:
    """The StoreError for a target database that already holds ``listed`` (tables, or rows of digest's)."""
    return StoreError(
        f"{location}: the database is not empty ({listed}): digest store migrate copies into an empty one",
        hint="create a new database (createdb) and name it with --to",
    )


def _copy(source: SeenStore, target: SeenStore, server: postgres.Connection) -> CopiedStore:
    """The copy itself, both stores open, migrated and locked."""
    db = source.db
    assert isinstance(db, sqlite3.Connection)
    tables = copy_order(db)
    present = {r[0] for r in server.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}
    missing = [t for t in tables if t not in present]
    if missing:  # (both are at the latest schema: only a table made by hand in the SQLite file)
        raise StoreError(f"{target.location}: the PostgreSQL schema has no table {missing[0]} (found in {source.location})")
    filled = [(t, _count(server, t)) for t in tables]
    filled = [(t, n) for t, n in filled if n]
    if filled:
        listed = ", ".join(f"{n} {t}" for t, n in filled[:4])
        raise _not_empty(target.location, listed)
    db.execute("BEGIN")  # one read snapshot of the SQLite store for the copy and the counts
    try:
        with target.transaction():
            counts: list[tuple[str, int]] = []
            for table in tables:
                columns = [r[1] for r in db.execute(f'PRAGMA table_info("{table}")')]
                names = ", ".join(f'"{c}"' for c in columns)
                cursor = server.connection.cursor()
                with cursor.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
                    for row in _rows(db, table, names):
                        copy.write_row(row)
                expected = int(db.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0])
                copied = _count(server, table)
                if copied != expected:
                    raise StoreError(f"{target.location}: {table}: copied {copied} rows of {expected}; nothing was kept")
                counts.append((table, copied))
                if "id" in columns:
                    _continue_identity(server, table)
    finally:
        db.execute("ROLLBACK")
    return CopiedStore(source.location, target.location, tuple(counts))


def copy_order(db: sqlite3.Connection) -> list[str]:
    """The store's tables, each after the tables its foreign keys name (so the keys hold as rows go in)."""
    names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name")]
    needs = {n: {r[2] for r in db.execute(f'PRAGMA foreign_key_list("{n}")')} - {n} for n in names}
    ordered: list[str] = []
    while len(ordered) < len(names):
        ready = [n for n in names if n not in ordered and needs[n] <= set(ordered)]
        if not ready:  # a cycle of foreign keys (none in digest's schema): keep the rest in name order
            ready = [n for n in names if n not in ordered]
        ordered.extend(ready)
    return ordered


def _rows(db: sqlite3.Connection, table: str, names: str) -> Iterator[tuple[object, ...]]:
    cursor = db.execute(f'SELECT {names} FROM "{table}"')
    cursor.row_factory = None  # plain tuples
    while batch := cursor.fetchmany(5000):
        yield from batch


def _count(server: postgres.Connection, table: str) -> int:
    row = server.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()
    return int(row[0]) if row else 0


def _continue_identity(server: postgres.Connection, table: str) -> None:
    """Make the table's identity column (if it has one) hand out ids after the copied ones."""
    found = server.execute("SELECT pg_get_serial_sequence(?, 'id')", (f'"{table}"',)).fetchone()
    if found and found[0]:
        server.execute(f"SELECT setval(?, (SELECT COALESCE(MAX(id), 0) + 1 FROM \"{table}\"), false)", (found[0],))


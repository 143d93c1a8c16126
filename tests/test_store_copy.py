"""``digest store migrate --to``: an SQLite store copied into an empty PostgreSQL database, through
the real CLI, on a real server (tests/pgcluster.py)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from digest.postgres import redact
from digest.store import SeenStore
from tests.conftest import REPLAY, run_digest, seed

Replayed = tuple[Path, dict[str, dict[str, object]]]


@pytest.fixture
def deployment(replayed: Replayed, tmp_path: Path) -> Path:
    """A copy of the replayed folder (four digests in an SQLite store), with subscribers, their
    events, a failed and a pending delivery, a model's summary: something in every table."""
    folder = tmp_path / "deploy"
    shutil.copytree(replayed[0], folder)
    run_digest(folder, "subscribers", "add", "one@example.org", "--topic", "audio", check_code=0)
    run_digest(folder, "subscribers", "add", "two@example.org", check_code=0)
    run_digest(folder, "subscribers", "bounce", "two@example.org", "--reason", "550 no such user", check_code=0)
    with closing(sqlite3.connect(folder / "var" / "digest.sqlite3")) as db, db:
        db.execute("INSERT INTO deliveries (digest_id, channel, recipient, state, attempts, last_error, updated_at)"
                   " VALUES (4, 'email', 'one@example.org', 'failed', 8, '550 gone', '2025-05-06T07:00:00+00:00')")
        db.execute("INSERT INTO deliveries (digest_id, channel, recipient, next_attempt_at, updated_at)"
                   " VALUES (4, 'email', 'two@example.org', '2025-05-06T08:00:00+00:00', '2025-05-06T07:00:00+00:00')")
        db.execute("INSERT INTO llm_summaries (paper_key, summary, topic, model, prompt_version, created_at)"
                   " SELECT key, 'A one-line summary.', 'architecture', 'llama3.1:8b', '1', '2025-05-06T07:00:00+00:00'"
                   " FROM papers ORDER BY id LIMIT 1")
    return folder


def sqlite_tables(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of the SQLite file, sorted."""
    with closing(sqlite3.connect(path)) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%'")]
        return {t: sorted(db.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}


def postgresql_tables(url: str, tables: list[str]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the named tables of the PostgreSQL store, sorted."""
    with SeenStore.connect(url, readonly=True) as store:
        return {t: sorted((tuple(r) for r in store.db.execute(f"SELECT * FROM {t}")), key=repr) for t in tables}


def use_postgresql(folder: Path, url: str) -> None:
    with (folder / "digest.toml").open("a", encoding="utf-8") as config:
        config.write(f'\n[store]\nurl = "{url}"\n')


def test_every_table_is_copied_row_for_row_and_the_copy_carries_on(deployment: Path, postgresql_url: str) -> None:
    before = sqlite_tables(deployment / "var" / "digest.sqlite3")
    assert all(before.values()), [t for t, rows in before.items() if not rows]  # something in every table
    result = run_digest(deployment, "store", "migrate", "--to", postgresql_url, check_code=0)
    lines = result.stdout.splitlines()
    total = sum(len(rows) for rows in before.values())
    assert lines[0] == (
        f"Copied {deployment / 'var' / 'digest.sqlite3'} to {redact(postgresql_url)}: {total} rows, every table's count verified."
    )
    assert sorted(lines[1:-1]) == sorted(f"  {t}: {len(rows)}" for t, rows in before.items())
    assert lines[-1] == f'To use it, set in [store]: url = "{postgresql_url}" (the SQLite file is left as it was).'
    assert postgresql_tables(postgresql_url, list(before)) == before  # every row, every value
    assert sqlite_tables(deployment / "var" / "digest.sqlite3") == before

    twin = deployment.parent / "twin"  # the same folder still on SQLite, to run the same day on both
    shutil.copytree(deployment, twin)
    use_postgresql(deployment, postgresql_url)
    status = json.loads(run_digest(deployment, "status", "--json", check_code=0).stdout)
    assert (status["store"]["papers"], status["last_digest"]["date"]) == (len(before["papers"]), REPLAY[-1][1])
    assert status["subscribers"]["bouncing"] == 1 and status["deliveries"]["failed"] == 1
    # The copy is the store now: what was seen stays seen, new rows get ids after the copied ones.
    listing = seed(REPLAY[-1][0]).read_text(encoding="utf-8").rstrip()  # the last day's listing and one new paper
    (deployment / "inbox" / "again.txt").write_text(
        f"{listing}\n\nCopying Stores Between Engines Without Losing a Row\nA new paper: its abstract.\n", encoding="utf-8"
    )
    shutil.copy(deployment / "inbox" / "again.txt", twin / "inbox")
    again = json.loads(run_digest(deployment, "run", "--date", "2025-05-07", "--json", check_code=0).stdout)
    on_sqlite = json.loads(run_digest(twin, "run", "--date", "2025-05-07", "--json", check_code=0).stdout)
    assert (again["new"], again["already_seen"]) == (on_sqlite["new"], on_sqlite["already_seen"]) and again["already_seen"] > 90
    assert [p["title"] for g in again["groups"] for p in g["papers"]] == [p["title"] for g in on_sqlite["groups"] for p in g["papers"]]
    assert "Copying Stores Between Engines Without Losing a Row" in [p["title"] for g in again["groups"] for p in g["papers"]]
    run_digest(deployment, "subscribers", "add", "three@example.org", check_code=0)
    with SeenStore.connect(postgresql_url, readonly=True) as store:
        assert [tuple(r) for r in store.db.execute("SELECT id, date FROM digests ORDER BY id")][-2:] == [
            (len(before["digests"]), REPLAY[-1][1]), (len(before["digests"]) + 1, "2025-05-07")
        ]
        assert [r[0] for r in store.db.execute("SELECT id FROM subscribers ORDER BY id")] == [1, 2, 3]


def test_a_database_that_is_not_empty_is_refused_and_left_alone(deployment: Path, postgresql_url: str) -> None:
    run_digest(deployment, "store", "migrate", "--to", postgresql_url, check_code=0)
    papers = postgresql_tables(postgresql_url, ["papers"])
    result = run_digest(deployment, "store", "migrate", "--to", postgresql_url, check_code=2)
    error, hint = result.stderr.splitlines()
    assert error.startswith(f"error: {redact(postgresql_url)}: the database is not empty (")
    assert error.endswith("): digest store migrate copies into an empty one") and f"{len(papers['papers'])} papers" in error
    assert hint == "hint: create a new database (createdb) and name it with --to"
    assert postgresql_tables(postgresql_url, ["papers"]) == papers


def test_a_copy_that_fails_leaves_the_database_empty(deployment: Path, postgresql_url: str) -> None:
    with closing(sqlite3.connect(deployment / "var" / "digest.sqlite3")) as db, db:
        db.execute("UPDATE papers SET title = ? WHERE id = 300", ("A NUL\x00 in a title",))  # SQLite takes it; PostgreSQL's text cannot
    result = run_digest(deployment, "store", "migrate", "--to", postgresql_url, check_code=2)
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: {redact(postgresql_url)}: store error: ") and "0x00" in result.stderr
    assert all(not rows for rows in postgresql_tables(postgresql_url, ["papers", "paper_keys", "digests"]).values())
    with closing(sqlite3.connect(deployment / "var" / "digest.sqlite3")) as db, db:
        db.execute("UPDATE papers SET title = 'A title' WHERE id = 300")
    run_digest(deployment, "store", "migrate", "--to", postgresql_url, check_code=0)  # fixed: the same database takes it


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("no-server", "error: {url}: cannot connect to the store: connection to server on socket"),
        ("password", "error: --to: holds a password; remove it and put it in the environment variable DIGEST_STORE_PASSWORD"),
        ("not-postgresql", "error: --to: 'mysql://digest@db/papers' is not a postgresql:// URL"),
        ("already", "error: {url}: the store is already on PostgreSQL ([store] url is set)"),
        ("no-store", "error: {path}: there is no SQLite store to copy"),
    ],
)
def test_what_cannot_be_copied_is_one_line(case: str, message: str, deployment: Path, postgresql_url: str, tmp_path: Path) -> None:
    url = postgresql_url
    if case == "no-server":
        url = f"postgresql://digest@/papers?host={tmp_path}"
    elif case == "password":
        url = "postgresql://digest:s3cret@db.example.org/papers"
    elif case == "not-postgresql":
        url = "mysql://digest@db/papers"
    elif case == "already":
        use_postgresql(deployment, postgresql_url)
    elif case == "no-store":
        (deployment / "var" / "digest.sqlite3").unlink()
    result = run_digest(deployment, "store", "migrate", "--to", url)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    error = result.stderr.splitlines()[0]
    assert error.startswith(message.format(url=redact(url), path=deployment / "var" / "digest.sqlite3")), error
    assert "s3cret" not in result.stderr


def test_a_database_of_another_application_is_refused_and_left_alone(deployment: Path, postgresql_url: str) -> None:
    """A mistyped --to naming another application's database: refused as not empty, and digest's
    tables are not created in it."""
    import psycopg

    with psycopg.connect(postgresql_url, autocommit=True) as admin:
        admin.execute("CREATE TABLE orders (id BIGINT PRIMARY KEY, total NUMERIC)")
        admin.execute("INSERT INTO orders VALUES (1, 9.5)")
    result = run_digest(deployment, "store", "migrate", "--to", postgresql_url, check_code=2)
    error, hint = result.stderr.splitlines()
    assert error == f"error: {redact(postgresql_url)}: the database is not empty (table orders): digest store migrate copies into an empty one"
    assert hint == "hint: create a new database (createdb) and name it with --to"
    with psycopg.connect(postgresql_url, autocommit=True) as admin:
        tables = [r[0] for r in admin.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")]
    assert tables == ["orders"]

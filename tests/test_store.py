from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest

from digest.errors import LockedError, StoreError
from digest.models import Digest, DigestCounts, Paper, TopicGroup
from digest.store import (
    CATEGORIES_VERSION, CLAIMS_VERSION, LLM_VERSION, MIGRATIONS, ROLLUPS_VERSION, SUBSCRIBERS_VERSION, SeenStore,
    filed_papers_query,
)
from tests.conftest import FIXTURES, StoreBackend
from tests.test_subscribers import undo_rollups

NOW = dt.datetime(2025, 3, 14, 7, 0, tzinfo=dt.timezone.utc)


def digest_of(papers: list[Paper], day: dt.date = dt.date(2025, 3, 14)) -> Digest:
    return Digest(day, (TopicGroup("misc", "Misc", tuple(papers)),), DigestCounts(len(papers), len(papers), 0, 0))


def test_new_store_is_at_the_latest_schema_in_wal_mode(tmp_path: Path) -> None:
    with SeenStore.open(tmp_path / "s.sqlite3") as store:
        assert store.schema_version == len(MIGRATIONS)
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_store_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    db.close()
    with pytest.raises(StoreError, match="newer than this digest knows"):
        SeenStore.open(path)


def test_a_file_that_is_not_sqlite_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    path.write_text("this is not a database" * 100)
    with pytest.raises(StoreError, match="not a digest store: the file is not an SQLite database"):
        SeenStore.open(path)


def test_diff_then_commit_marks_papers_seen(backend: StoreBackend) -> None:
    papers = [Paper(title="One"), Paper(title="Two", arxiv_id="2401.00002")]
    with backend.open() as store:
        assert store.schema_version == len(MIGRATIONS)
        diff = store.diff(papers)
        assert diff.new == tuple(papers) and diff.seen == ()
        digest_id = store.commit(digest_of(papers), diff, now=NOW)
        assert digest_id is not None
    with backend.open() as store:  # survives reopening
        again = store.diff([Paper(title="one"), Paper(title="Renamed", arxiv_id="2401.00002v3"), Paper(title="Three")])
        assert [p.title for p in again.new] == ["Three"]
        assert [s.paper.title for s in again.seen] == ["one", "Renamed"]


def test_keys_learned_later_identify_the_paper(backend: StoreBackend) -> None:
    """A paper first seen by title, then with an arXiv id, then by that id alone, is one paper."""
    with backend.open() as store:
        first = [Paper(title="Old Title Wording")]
        store.commit(digest_of(first), store.diff(first), now=NOW)
        with_id = [Paper(title="Old Title Wording", arxiv_id="2403.00003")]
        diff = store.diff(with_id)
        assert diff.new == ()
        store.commit(None, diff, now=NOW)
        by_id_only = store.diff([Paper(title="New Title Wording", arxiv_id="2403.00003v2")])
        assert by_id_only.new == ()


def test_commit_is_all_or_nothing(backend: StoreBackend) -> None:
    papers = [Paper(title="One"), Paper(title="Two")]
    with backend.open() as store:
        diff = store.diff(papers)
        broken = digest_of(papers)
        with pytest.raises(backend.integrity_error):
            # The same channel twice violates the outbox's unique key after the papers went in.
            store.commit(broken, diff, channels=[("archive", ""), ("archive", "")], now=NOW)
        assert store.diff(papers).new == tuple(papers)
        assert store.stats()["papers"] == 0
        assert store.digests() == []


def test_ingested_files_are_remembered_by_hash(backend: StoreBackend) -> None:
    with backend.open() as store:
        store.commit(None, store.diff([]), ingested=[("abc", "inbox", "a.txt", 3)], now=NOW)
        assert store.ingested_hashes({"abc", "def"}) == {"abc"}


def test_outbox_rows_move_from_pending_to_sent(backend: StoreBackend) -> None:
    papers = [Paper(title="One")]
    with backend.open() as store:
        digest_id = store.commit(digest_of(papers), store.diff(papers), channels=[("archive", ""), ("email", "a@b.org")], now=NOW)
        pending = store.pending_deliveries()
        assert [(d.channel, d.recipient) for d in pending] == [("archive", ""), ("email", "a@b.org")]
        store.mark_delivery(pending[0].id, "sent", now=NOW)
        store.mark_delivery(pending[1].id, "pending", now=NOW, error="451 try later", next_attempt_at=NOW + dt.timedelta(hours=1))
        assert store.pending_deliveries(now=NOW) == []
        later = store.pending_deliveries(now=NOW + dt.timedelta(hours=2))
        assert [(d.recipient, d.attempts, d.last_error) for d in later] == [("a@b.org", 1, "451 try later")]
        assert store.delivery_counts() == {"pending": 1, "sent": 1, "failed": 0}
        assert digest_id is not None and len(store.deliveries(digest_id)) == 2


def test_diff_uses_the_key_index_not_a_scan(tmp_path: Path) -> None:
    with SeenStore.open(tmp_path / "s.sqlite3") as store:
        plan = " ".join(
            str(row[3]) for row in store.db.execute("EXPLAIN QUERY PLAN SELECT key, paper_id FROM paper_keys WHERE key IN (?, ?)", ("a", "b"))
        )
        assert "SEARCH" in plan and "SCAN" not in plan


def _hold_lock(backend: StoreBackend, ready: "multiprocessing.synchronize.Event", release: "multiprocessing.synchronize.Event") -> None:
    with backend.open() as store, store.lock():
        ready.set()
        release.wait(30)


def test_a_second_process_cannot_take_the_lock(backend: StoreBackend) -> None:
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(backend, ready, release))
    holder.start()
    try:
        assert ready.wait(30)
        with backend.open() as store:
            with pytest.raises(LockedError, match=rf"another digest cycle is running on this store \(pid {holder.pid}\b"):
                with store.lock():
                    pass
    finally:
        release.set()
        holder.join(30)
    with backend.open() as store, store.lock():  # free again once the holder is gone
        pass


def test_a_killed_holder_leaves_the_lock_free(backend: StoreBackend) -> None:
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(backend, ready, release))
    holder.start()
    assert ready.wait(30)
    holder.kill()  # no cleanup: the kernel closes its file, the server sees its connection end
    holder.join(30)
    for _ in range(50):  # (the server notices the closed connection within moments)
        try:
            with backend.open() as store, store.lock():
                return
        except LockedError:
            import time

            time.sleep(0.1)
    raise AssertionError("the lock of a killed process was never released")


def test_readonly_open_never_creates_the_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.sqlite3"
    with SeenStore.open(path, readonly=True) as store:
        assert store.diff([Paper(title="x")]).new
    assert not path.exists()


def two_topic_digest(day: dt.date, serial: int) -> Digest:
    papers = [Paper(title=f"Paper {serial} {i}") for i in range(5)]
    groups = (TopicGroup("inference", "Inference", tuple(papers[:3])), TopicGroup("audio", "Audio", tuple(papers[3:])))
    return Digest(day, groups, DigestCounts(5, 5, 0, 0))


def test_commit_keeps_the_per_topic_counts_and_a_version_1_store_is_backfilled(backend: StoreBackend) -> None:
    path = backend.path
    with backend.open() as store:
        for n, day in enumerate((dt.date(2025, 3, 14), dt.date(2025, 3, 15), dt.date(2025, 4, 1))):
            digest = two_topic_digest(day, n)
            store.commit(digest, store.diff(digest.papers), now=NOW)
        counts = store.filed_counts()
        grouped = store.db.execute(
            "SELECT topic, digest_id, COUNT(*) FROM digest_papers GROUP BY topic, digest_id ORDER BY topic, digest_id"
        ).fetchall()
        assert counts == [tuple(r) for r in grouped] == [("audio", 1, 2), ("audio", 2, 2), ("audio", 3, 2), ("inference", 1, 3), ("inference", 2, 3), ("inference", 3, 3)]
        months = [("audio", "2025-03", 4), ("audio", "2025-04", 2), ("inference", "2025-03", 6), ("inference", "2025-04", 3)]
        assert store.topic_month_counts() == months
        assert store.archive_day_count() == 3
        if backend.name == "postgresql":  # (what follows makes an SQLite file as version 1 left it)
            digest = two_topic_digest(dt.date(2025, 4, 2), 3)
            store.commit(digest, store.diff(digest.papers), now=NOW)
            assert store.topic_month_counts() == [("audio", "2025-03", 4), ("audio", "2025-04", 4), ("inference", "2025-03", 6), ("inference", "2025-04", 6)]
            assert store.newest_filed_dates(2) == [dt.date(2025, 4, 2), dt.date(2025, 4, 1)]
            assert store.newest_filed_dates(5, before=dt.date(2025, 4, 1)) == [dt.date(2025, 3, 15), dt.date(2025, 3, 14)]
            return
        undo_rollups(store)  # the store as version 1 left it
        store.db.execute("DROP TABLE llm_summaries")
        store.db.execute("DROP TABLE subscriber_events")
        store.db.execute("DROP TABLE subscribers")
        store.db.execute("DROP TABLE topic_month_counts")
        store.db.execute("DROP TABLE digest_topic_counts")
        store.db.execute("DROP INDEX digest_papers_by_rank")
        store.db.execute("CREATE INDEX digest_papers_by_topic ON digest_papers(topic, digest_id)")
        store.db.execute("ALTER TABLE papers DROP COLUMN categories")
        store.db.execute("ALTER TABLE deliveries DROP COLUMN claimed_by")
        store.db.execute("ALTER TABLE deliveries DROP COLUMN claimed_until")
        store.db.execute("PRAGMA user_version = 1")
    with SeenStore.open(path, readonly=True) as store:  # read-only never migrates: the paper rows are counted
        assert store.schema_version == 1
        assert store.filed_counts() == counts
        assert store.topic_month_counts() == months
        assert store.archive_day_count() == 3
        assert store.filed_counts(since=dt.date(2025, 3, 15)) == [c for c in counts if c[1] > 1]
    with SeenStore.open(path) as store:
        assert store.schema_version == len(MIGRATIONS) == CLAIMS_VERSION == ROLLUPS_VERSION + 1 == LLM_VERSION + 2
        assert store.filed_counts() == counts
        assert store.topic_month_counts() == months
        digest = two_topic_digest(dt.date(2025, 4, 2), 3)  # the per-month counts follow each commit
        store.commit(digest, store.diff(digest.papers), now=NOW)
        assert store.topic_month_counts() == [("audio", "2025-03", 4), ("audio", "2025-04", 4), ("inference", "2025-03", 6), ("inference", "2025-04", 6)]
        assert store.archive_day_count() == 4
        assert store.newest_filed_dates(2) == [dt.date(2025, 4, 2), dt.date(2025, 4, 1)]
        assert store.newest_filed_dates(5, before=dt.date(2025, 4, 1)) == [dt.date(2025, 3, 15), dt.date(2025, 3, 14)]


def query_plan(store: SeenStore, sql: str, params: list[object]) -> list[str]:
    return [row[3] for row in store.db.execute(f"EXPLAIN QUERY PLAN {sql}", params)]


def test_the_archive_queries_read_through_indexes(backend: StoreBackend) -> None:
    with backend.open() as store:
        for n in range(30):
            digest = two_topic_digest(dt.date(2025, 3, 1) + dt.timedelta(days=n), n)
            store.commit(digest, store.diff(digest.papers), now=NOW)
        store.db.execute("ANALYZE")
        month = [r.id for r in store.digests(newest_first=False)[10:20]]
        for topic, ids in (("audio", month), (None, month)) if backend.name == "sqlite" else ():  # (SQLite's plans)
            plan = query_plan(store, *filed_papers_query(topic=topic, digest_ids=ids))
            # every table is searched through an index or its key: none is scanned whole
            assert not [step for step in plan if step.startswith("SCAN") and "USING" not in step], plan
            assert any(step.startswith("SEARCH dp USING") for step in plan), plan
        rows = store.filed_papers(topic="audio", digest_ids=month)
        assert [(r.digest_id, r.rank) for r in rows] == [(i, rank) for i in reversed(month) for rank in (3, 4)]


def test_filed_papers_per_topic_keeps_the_first_n_of_each_topic_by_rank(backend: StoreBackend) -> None:
    papers = [Paper(title=f"Paper {i}") for i in range(7)]
    digest = Digest(
        dt.date(2025, 3, 14),
        (TopicGroup("a", "A", tuple(papers[:5])), TopicGroup("b", "B", tuple(papers[5:]))),
        DigestCounts(7, 7, 0, 0),
    )
    with backend.open() as store:
        digest_id = store.commit(digest, store.diff(papers), now=NOW)
        assert digest_id is not None
        every = store.filed_papers(digest_ids=[digest_id])
        first = store.filed_papers(digest_ids=[digest_id], per_topic=2)
    assert [(f.topic, f.title) for f in first] == [("a", "Paper 0"), ("a", "Paper 1"), ("b", "Paper 5"), ("b", "Paper 6")]
    assert [f for f in every if (f.topic, f.title) in {(g.topic, g.title) for g in first}] == first


def test_the_first_n_of_a_topic_come_through_the_rank_index_as_an_older_store_numbers_them(backend: StoreBackend) -> None:
    with backend.open() as store:
        for n in range(5):
            digest = two_topic_digest(dt.date(2025, 3, 1) + dt.timedelta(days=n), n)
            store.commit(digest, store.diff(digest.papers), now=NOW)
        ids = [r.id for r in store.digests(newest_first=False)]
        for topic in (None, "inference"):  # (no ANALYZE: a store never runs it)
            for n in (1, 2, 5):
                ranked = store.db.execute(*filed_papers_query(topic=topic, digest_ids=ids, per_topic=n)).fetchall()
                window = store.db.execute(*filed_papers_query(topic=topic, digest_ids=ids, per_topic=n, ranked=False)).fetchall()
                assert [tuple(r) for r in ranked] == [tuple(r) for r in window] and ranked
            if backend.name != "sqlite":  # (SQLite's plan)
                continue
            plan = query_plan(store, *filed_papers_query(topic=topic, digest_ids=ids, per_topic=2))
            assert not [step for step in plan if step.startswith("SCAN") and "USING" not in step], plan
            assert any(step.startswith("SEARCH dp USING") and "rank<?" in step for step in plan), plan  # N rows, not the day


# A store as digest left it at schema 4, before papers had categories (how it was made: its header).
SCHEMA_4 = FIXTURES / "store" / "schema4.sql"


def store_from_dump(path: Path, dump: Path = SCHEMA_4) -> None:
    """Write the SQL dump ``dump`` into a new SQLite file at ``path``."""
    db = sqlite3.connect(path)
    db.executescript(dump.read_text(encoding="utf-8"))
    db.close()


def table_rows(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table of the file, sorted."""
    with sqlite3.connect(path) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {t: sorted(db.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}


def test_a_schema_4_store_upgrades_to_categories_and_subscribers_keeping_everything(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    store_from_dump(path)
    before = table_rows(path)
    assert len(before["papers"]) == 7 and len(before["deliveries"]) == 4
    with SeenStore.open(path) as store:  # migrations 5 (categories), 6 (subscribers), 7 (llm_summaries), 8 (weekly roll-ups), 9 (outbox claims)
        assert store.schema_version == len(MIGRATIONS) == CLAIMS_VERSION == ROLLUPS_VERSION + 1 == LLM_VERSION + 2 == SUBSCRIBERS_VERSION + 3 == CATEGORIES_VERSION + 4
    after = table_rows(path)
    assert after.keys() == before.keys() | {"subscribers", "subscriber_events", "llm_summaries", "rollups"}
    assert after.pop("subscribers") == after.pop("subscriber_events") == after.pop("llm_summaries") == after.pop("rollups") == []
    for table, rows in before.items():
        if table == "papers":  # each paper row as it was, with no categories after it
            assert [row[:-1] for row in after[table]] == rows
            assert {row[-1] for row in after[table]} == {"[]"}
        elif table == "deliveries":  # each outbox row as it was, with no week after it, claimed by nobody
            assert [row[:-4] for row in after[table]] == rows
            assert {row[-4:] for row in after[table]} == {(None, None, None, None)}
        else:
            assert after[table] == rows, table
    new = Paper(title="A Paper Listed With Categories", arxiv_id="2503.01234", categories=("hep-ph", "hep-ex", "cs.LG"))
    with SeenStore.open(path) as store:
        pending = store.pending_deliveries("email")
        assert [(d.digest_date, d.recipient) for d in pending] == [
            (dt.date(2025, 3, 14), "reader@example.org"), (dt.date(2025, 3, 15), "reader@example.org")
        ]
        old = list(store.iter_digest_papers([r.id for r in store.digests(newest_first=False)]))
        assert len(old) == 7 and {p.categories for p in old} == {()}
        diff = store.diff([*old, new])  # the old papers are still known
        assert diff.new == (new,)
        digest_id = store.commit(digest_of([new], dt.date(2025, 3, 16)), diff, now=NOW)
        assert digest_id is not None
        (back,) = store.iter_digest_papers([digest_id])
        assert back.categories == ("hep-ph", "hep-ex", "cs.LG")


def test_categories_are_stored_as_a_json_list_primary_first(backend: StoreBackend) -> None:
    papers = [Paper(title="Tagged", arxiv_id="2503.00001", categories=("math.OC", "cs.LG")), Paper(title="Untagged")]
    with backend.open() as store:
        store.commit(digest_of(papers), store.diff(papers), now=NOW)
        rows = store.db.execute("SELECT title, categories FROM papers ORDER BY id").fetchall()
    assert [tuple(r) for r in rows] == [("Tagged", '["math.OC", "cs.LG"]'), ("Untagged", "[]")]


# -- every command opens the store one way: the same one-line error for each kind of damage -----

COMMANDS = {  # every command that opens the store, with the arguments it needs (the topics commands never open it)
    "run": [], "preview": [], "status": [], "site": [], "schedule": [], "backup": ["copy.sqlite3"],
    "subscribers list": [], "subscribers export": [], "subscribers add": ["new@example.org"],
    "subscribers remove": ["reader@example.org"], "subscribers bounce": ["reader@example.org", "--reason", "550 no such user"],
    "store migrate": ["--to", "postgresql://digest@/never-reached?host=/nonexistent"],  # (the SQLite store is opened first)
}
READERS = {"preview", "status", "site", "backup", "subscribers list", "subscribers export"}  # a read-only file serves them


def drop_file_permission_override() -> None:
    """In the child, before exec: give up root's power to write what its permission bits forbid
    (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER), so that a read-only file is read-only."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2, 3):
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def digest_as_a_user(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real ``digest`` command in ``cwd``, with file permissions enforced even when the tests run as root."""
    env = {k: v for k, v in os.environ.items() if k != "DIGEST_CONFIG"}
    return subprocess.run(
        [sys.executable, "-m", "digest", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60,
        preexec_fn=drop_file_permission_override if os.geteuid() == 0 else None,
    )


@pytest.fixture
def deployment(replayed: tuple[Path, dict[str, dict[str, object]]], tmp_path: Path) -> Path:
    """A copy of the replayed folder: its config, store and archive."""
    folder = tmp_path / "deploy"
    shutil.copytree(replayed[0], folder)
    return folder


@contextmanager
def another_process_holding(store: Path, *statements: str) -> Iterator[None]:
    """Another process that has run ``statements`` on the store and holds it so until the block ends."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sqlite3, sys\n"
         f"db = sqlite3.connect({str(store)!r}, isolation_level=None)\n"
         f"for sql in {list(statements)!r}: db.execute(sql)\n"
         "print('holding', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        yield
    finally:
        holder.kill()
        holder.wait()


@contextmanager
def damaged(case: str, store: Path) -> Iterator[str]:
    """Damage the store at ``store`` as ``case`` says; yield the error line every command must print."""
    if case == "not-a-database":
        store.write_text("id,title\n1,not a database\n" * 200, encoding="utf-8")
        yield f"error: {store}: not a digest store: the file is not an SQLite database"
    elif case == "malformed":
        with store.open("r+b") as file:  # a copy cut short, as a full disk or an interrupted copy leaves it
            file.truncate(store.stat().st_size // 2)
        yield f"error: {store}: the store is damaged (database disk image is malformed)"
    elif case == "newer-schema":
        with closing(sqlite3.connect(store)) as db:
            db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
        yield f"error: {store}: store schema version {len(MIGRATIONS) + 1} is newer than this digest knows ({len(MIGRATIONS)})"
    elif case == "locked":
        with (store.parent.parent / "digest.toml").open("a", encoding="utf-8") as config:
            config.write("\n[store]\nbusy_timeout = 0.2\n")  # (30 s by default)
        # another program holds the file with an exclusive lock
        with another_process_holding(store, "PRAGMA locking_mode = EXCLUSIVE", "BEGIN EXCLUSIVE"):
            yield f"error: {store}: the store is locked by another process (waited 0.2 s)"
    elif case == "read-only-file":
        store.chmod(0o444)
        yield f"error: {store}: the store is read-only"
    elif case == "read-only-folder":
        store.parent.chmod(0o555)
        try:
            yield f"error: {store}: the store's folder is read-only (SQLite keeps its -wal and -shm files beside the store)"
        finally:
            store.parent.chmod(0o755)
    else:  # pragma: no cover
        raise AssertionError(case)


@pytest.mark.parametrize("case", ["not-a-database", "malformed", "newer-schema", "locked", "read-only-file", "read-only-folder"])
@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_gives_the_same_one_line_error_for_a_store_it_cannot_use(command: str, case: str, deployment: Path) -> None:
    store = deployment / "var" / "digest.sqlite3"
    with damaged(case, store) as expected:
        result = digest_as_a_user(deployment, *command.split(), *COMMANDS[command])
    assert "Traceback" not in result.stderr
    if case == "read-only-file" and command in READERS:  # reading needs no write: the command does its job
        assert result.returncode == 0, result.stderr
        return
    assert result.returncode == 2, (result.stdout, result.stderr)
    error, hint = result.stderr.splitlines()
    assert error == expected
    assert hint.startswith("hint: ")


def test_backup_while_a_run_writes_is_one_consistent_store_that_digest_can_use(deployment: Path) -> None:
    store = deployment / "var" / "digest.sqlite3"
    # a run in the middle of its commit: a write transaction not yet committed
    with another_process_holding(store, "BEGIN IMMEDIATE", "INSERT INTO sources (name) VALUES ('uncommitted')"):
        result = digest_as_a_user(deployment, "backup", "backups/digest.sqlite3")
    copy = deployment / "backups" / "digest.sqlite3"
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Backed up {store} to backups/digest.sqlite3 (")
    assert sorted(p.name for p in copy.parent.iterdir()) == ["digest.sqlite3"]  # one file: no -wal, no partial copy
    with closing(sqlite3.connect(copy)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT COUNT(*) FROM digests").fetchone() == (4,)
        assert db.execute("SELECT COUNT(*) FROM sources WHERE name = 'uncommitted'").fetchone() == (0,)
    (deployment / "restored.toml").write_text(
        (deployment / "digest.toml").read_text(encoding="utf-8") + '\n[store]\npath = "backups/digest.sqlite3"\n', encoding="utf-8"
    )
    original = json.loads(digest_as_a_user(deployment, "status", "--json").stdout)
    restored = json.loads(digest_as_a_user(deployment, "status", "--json", "--config", "restored.toml").stdout)
    assert restored["last_digest"] == original["last_digest"] and restored["store"]["papers"] == original["store"]["papers"]


def test_backup_without_a_store_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "digest.toml").write_text("", encoding="utf-8")
    result = digest_as_a_user(tmp_path, "backup", "copy.sqlite3")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: {tmp_path / 'var' / 'digest.sqlite3'}: there is no store yet to back up", "hint: run digest once first"
    ]


@pytest.mark.parametrize("name", ["var/digest.sqlite3", "var/../var/digest.sqlite3", "var/digest.sqlite3-wal", "var/digest.sqlite3-shm", "var/digest.sqlite3.lock"])
def test_backup_onto_the_store_itself_is_refused_and_leaves_the_store_as_it_was(name: str, deployment: Path) -> None:
    store = deployment / "var" / "digest.sqlite3"
    with closing(sqlite3.connect(store)) as db:  # a writer that leaves its commits in the -wal (as a run does)
        db.execute("PRAGMA wal_autocheckpoint = 0")
        db.execute("INSERT INTO sources (name) VALUES ('in the wal')")
        db.commit()
        before = (store.stat().st_ino, store.read_bytes())
        result = digest_as_a_user(deployment, "backup", name)
        assert (store.stat().st_ino, store.read_bytes()) == before  # not replaced by a copy under the writer's feet
        db.execute("INSERT INTO sources (name) VALUES ('after the backup')")
        db.commit()
    assert result.returncode == 2, result.stdout
    assert result.stderr.splitlines() == [
        f"error: {name}: this is the store itself (or its -wal, -shm or .lock file): a backup must be another file",
        "hint: name a file beside it or in another folder, e.g. backups/digest.sqlite3",
    ]
    with closing(sqlite3.connect(store)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        names = {row[0] for row in db.execute("SELECT name FROM sources")}
    assert {"in the wal", "after the backup"} <= names


def test_backup_into_a_folder_that_cannot_be_made_is_one_line(deployment: Path) -> None:
    result = digest_as_a_user(deployment, "backup", "digest.toml/backups/digest.sqlite3")  # (digest.toml is a file)
    assert result.returncode == 2, result.stdout
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        "error: digest.toml/backups/digest.sqlite3: cannot write the backup: Not a directory",
        "hint: nothing was replaced; try again",
    ]


def test_sqlites_many_line_damage_report_becomes_one_line() -> None:
    from digest.store import _first_problem

    report = ["*** in database main ***\nPage 165: btreeInitPage() returns error code 11\nPage 112: free space corruption"]
    assert _first_problem(report) == "Page 165: btreeInitPage() returns error code 11; 1 more lines of SQLite's report"
    assert _first_problem(["database disk image is malformed"]) == "database disk image is malformed"


def test_backup_of_a_store_with_bad_pages_stops_and_keeps_the_last_good_backup(deployment: Path) -> None:
    store = deployment / "var" / "digest.sqlite3"
    assert digest_as_a_user(deployment, "backup", "backups/digest.sqlite3").returncode == 0
    good = (deployment / "backups" / "digest.sqlite3").read_bytes()
    with closing(sqlite3.connect(store)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = store.stat().st_size
    with store.open("r+b") as file:  # bad pages in the middle; the header and the schema still read
        file.seek(size // 2)
        file.write(b"\xff" * (size // 4))
    status = digest_as_a_user(deployment, "status")
    assert status.returncode == 2 and status.stderr.startswith(f"error: {store}: the store is damaged (")
    result = digest_as_a_user(deployment, "backup", "backups/digest.sqlite3")
    assert result.returncode == 2, result.stdout
    error, hint = result.stderr.splitlines()
    assert error.startswith(f"error: {store}: the store is damaged (")
    assert hint.startswith("hint: restore the last backup")
    assert (deployment / "backups" / "digest.sqlite3").read_bytes() == good  # the last good copy is not replaced
    assert sorted(p.name for p in (deployment / "backups").iterdir()) == ["digest.sqlite3"]

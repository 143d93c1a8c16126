"""Shared fixtures: paths to the fixtures and the seeds, a config writer, the real CLI, and a
real HTTP server on 127.0.0.1."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests import pgcluster
from tests.httpserver import TestServer

if TYPE_CHECKING:
    from digest.store import SeenStore

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[1]
# CI lays the project's shared/ folder beside the clone.
SHARED = Path(os.environ.get("DIGEST_SHARED", REPO.parent / "shared"))
SEEDS = SHARED / "seeds"


@pytest.fixture(autouse=True, scope="session")
def _template_cache_in_a_temp_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Compiled templates go to $XDG_CACHE_HOME: keep the tests' (and their CLI processes') out of ~/.cache."""
    saved = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if saved is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = saved


def seed(prefix: str) -> Path:
    """The seed snapshot whose file name starts with ``prefix`` (e.g. "002")."""
    found = sorted(SEEDS.glob(f"{prefix}_*.txt"))
    assert found, f"no seed {prefix}_*.txt in {SEEDS}"
    return found[0]


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """Write ``digest.toml`` in tmp_path with an inbox source (plus any extra TOML) and return it."""

    def write(extra: str = "", *, inbox: bool = True) -> Path:
        (tmp_path / "inbox").mkdir(exist_ok=True)
        text = ""
        if inbox:
            text += '[[sources]]\nname = "inbox"\nkind = "snapshots"\npath = "inbox/"\n\n'
        text += textwrap.dedent(extra)
        path = tmp_path / "digest.toml"
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def digest_cli(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the real ``digest`` command in tmp_path (a new process, as a user would)."""

    def run(*args: str, env: dict[str, str] | None = None, check_code: int | None = None) -> subprocess.CompletedProcess[str]:
        return run_digest(tmp_path, *args, env=env, check_code=check_code)

    return run


@pytest.fixture
def http_server() -> Iterator[TestServer]:
    """A started :class:`tests.httpserver.TestServer`, stopped after the test."""
    with TestServer() as server:
        yield server


@pytest.fixture
def fixtures_dir() -> Path:
    """The ``tests/fixtures`` folder."""
    return FIXTURES


def run_digest(
    cwd: Path, *args: str, env: dict[str, str] | None = None, check_code: int | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real ``digest`` command in ``cwd`` (a new process, as a user would)."""
    full_env = {k: v for k, v in os.environ.items() if k != "DIGEST_CONFIG"}
    full_env.update(env or {})
    result = subprocess.run(
        [sys.executable, "-m", "digest", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        stdin=subprocess.DEVNULL,  # as in CI: nothing asks a question (digest init asks on a terminal)
        text=True,
        timeout=120,
    )
    if check_code is not None:
        assert result.returncode == check_code, (result.stdout, result.stderr)
    return result


# -- the store on both engines ----------------------------------------------------------------------

POSTGRESQL_ENV = "DIGEST_TEST_POSTGRESQL"  # the URL of a server (as a superuser) the tests may create databases on
_databases = itertools.count(1)


@pytest.fixture(scope="session")
def postgresql_server() -> Iterator[str]:
    """The URL of a PostgreSQL server the tests create their databases on: ``$DIGEST_TEST_POSTGRESQL``
    (.ci/run starts one), else a throwaway cluster started for the session (tests/pgcluster.py).

    Without PostgreSQL installed the tests that need it are skipped, saying why; in CI
    (``$CI`` set) that is a failure instead, never a silent skip.
    """
    given = os.environ.get(POSTGRESQL_ENV)
    if given:
        yield given
        return
    binaries = pgcluster.bindir()
    if binaries is None:
        reason = (
            "PostgreSQL is not installed (no initdb and pg_ctl in `pg_config --bindir` or /usr/lib/postgresql/*/bin): "
            "the PostgreSQL store tests need it (apt-get install postgresql), or set $DIGEST_TEST_POSTGRESQL"
        )
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    cluster = pgcluster.Cluster(pgcluster.new_folder(), binaries)
    cluster.start()
    try:
        yield cluster.url
    finally:
        cluster.remove()


def new_database(server: str) -> str:
    """Create an empty database on ``server``; its URL."""
    import psycopg

    name = f"digest_test_{os.getpid()}_{next(_databases)}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(server)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


@pytest.fixture
def postgresql_url(postgresql_server: str) -> str:
    """The URL of a new, empty PostgreSQL database."""
    return new_database(postgresql_server)


@dataclass(frozen=True)
class StoreBackend:
    """One engine the store runs on, with a store of its own for the test: ``open`` it (again and
    again: it is the same store), or put ``toml`` in a config for the CLI."""

    name: str
    path: Path  # the SQLite file (sqlite)
    url: str = ""  # the PostgreSQL database (postgresql)

    def open(self, *, readonly: bool = False) -> SeenStore:
        """Open (create, migrate) this test's store."""
        from digest.store import SeenStore

        if self.url:
            return SeenStore.connect(self.url, readonly=readonly)
        return SeenStore.open(self.path, readonly=readonly)

    @property
    def toml(self) -> str:
        """The ``[store]`` table that points a config at this store (none for SQLite's default path)."""
        return f'[store]\nurl = "{self.url}"\n' if self.url else ""

    @property
    def integrity_error(self) -> type[Exception]:
        """The driver's error for a broken unique or foreign key."""
        if self.url:
            import psycopg

            return psycopg.IntegrityError
        import sqlite3

        return sqlite3.IntegrityError


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> StoreBackend:
    """Each store test once on SQLite (a file in tmp_path) and once on PostgreSQL (a new database)."""
    if request.param == "postgresql":
        return StoreBackend("postgresql", tmp_path / "var" / "digest.sqlite3", request.getfixturevalue("postgresql_url"))
    return StoreBackend("sqlite", tmp_path / "var" / "digest.sqlite3")


REPLAY = [("002", "2025-03-11", 78), ("001", "2025-03-13", 72), ("000", "2025-03-14", 87), ("004", "2025-05-06", 78)]


@pytest.fixture(scope="session")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict[str, object]]]:
    """A folder where the four seeds were run in date order through the real CLI (built once).

    Returns the folder (``digest.toml``, ``var/``, ``archive/``) and each run's ``--json`` summary by date.
    Tests copy it before changing anything.
    """
    import json
    import shutil

    folder = tmp_path_factory.mktemp("replayed")
    (folder / "inbox").mkdir()
    (folder / "digest.toml").write_text('[[sources]]\nname = "inbox"\nkind = "snapshots"\npath = "inbox/"\n', encoding="utf-8")
    summaries: dict[str, dict[str, object]] = {}
    for prefix, day, _ in REPLAY:
        shutil.copy(seed(prefix), folder / "inbox")
        summaries[day] = json.loads(run_digest(folder, "run", "--date", day, "--json", check_code=0).stdout)
    return folder, summaries


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (made with the openssl command)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key

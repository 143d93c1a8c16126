"""A throwaway PostgreSQL cluster for the tests (and bench/pg.py): ``initdb`` in a temporary
folder, ``pg_ctl start`` listening on a Unix socket in that folder only (no TCP port), trust
authentication for the one superuser ``digest``, stopped and removed at the end.

PostgreSQL refuses to run as root: when the tests run as root (as CI does), the cluster's files
belong to an unprivileged user (``postgres`` when the distribution's package made one, else
``nobody``) and its programs run as that user through ``runuser``.

The binaries are found with ``pg_config --bindir``, else in the newest
``/usr/lib/postgresql/*/bin`` (Debian's layout), else on ``PATH``.  Standard library only, so
that ``.ci/run`` can start one before the virtual environment exists::

    python3 -m tests.pgcluster start FOLDER      # prints the server's URL (database postgres)
    python3 -m tests.pgcluster stop FOLDER
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PORT = 5432  # the socket's name (.s.PGSQL.5432) in the cluster's own folder: no TCP port is opened
SUPERUSER = "digest"
PASSWORD_USER = "digest_password"  # the one user the cluster asks for a password (scram-sha-256): the tests' password check
FAST = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")  # the tests' data may be lost on a crash


def bindir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``, or None when PostgreSQL is not installed."""
    candidates: list[Path] = []
    if os.environ.get("DIGEST_PG_BINDIR"):
        candidates.append(Path(os.environ["DIGEST_PG_BINDIR"]))
    if shutil.which("pg_config"):
        found = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False)
        if found.returncode == 0 and found.stdout.strip():
            candidates.append(Path(found.stdout.strip()))

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(p) for p in path.parent.name.split(".") if p.isdigit())

    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    return None


def _owner() -> str | None:
    """The user the cluster runs as when we are root (None: as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise RuntimeError("running as root and no unprivileged user (postgres, nobody) to run PostgreSQL as")


class Cluster:
    """One cluster in ``folder`` (created if needed): data in ``folder/data``, the socket in ``folder``."""

    def __init__(self, folder: Path, binaries: Path, settings: tuple[str, ...] = FAST) -> None:
        self.folder = folder
        self.bin = binaries
        self.settings = settings
        self.user = _owner()

    @property
    def url(self) -> str:
        """The URL of the ``postgres`` database (the superuser, over the socket)."""
        return self.database_url("postgres")

    def database_url(self, name: str) -> str:
        """The URL of database ``name`` of this cluster."""
        return f"postgresql://{SUPERUSER}@/{name}?host={self.folder}&port={PORT}"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin / args[0]), *args[1:]]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=False, cwd="/", timeout=120)

    def start(self) -> None:
        """initdb (first time only) and start the server; RuntimeError with PostgreSQL's words if that fails."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.user is not None:
            shutil.chown(self.folder, self.user)
        data = self.folder / "data"
        if not (data / "PG_VERSION").exists():
            made = self._run("initdb", "-D", str(data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
            if made.returncode != 0:
                raise RuntimeError(f"initdb failed: {made.stderr.strip() or made.stdout.strip()}")
            hba = data / "pg_hba.conf"
            rules = f"local all {PASSWORD_USER} scram-sha-256\n"
            hba.write_text(rules + hba.read_text(encoding="utf-8"), encoding="utf-8")  # (the first matching line wins)
        options = " ".join(
            ["-c listen_addresses=''", f"-c unix_socket_directories={self.folder}", f"-p {PORT}", "-c max_connections=200"]
            + [f"-c {s}" for s in self.settings]
        )
        started = self._run("pg_ctl", "-D", str(data), "-o", options, "-l", str(self.folder / "server.log"), "-w", "-t", "60", "start")
        if started.returncode != 0:
            log = (self.folder / "server.log").read_text(errors="replace")[-2000:] if (self.folder / "server.log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {started.stderr.strip() or started.stdout.strip()}\n{log}")

    def stop(self) -> None:
        """Stop the server (fast shutdown) if it runs."""
        if (self.folder / "data" / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        """Stop the server and delete the cluster's folder."""
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def new_folder() -> Path:
    """A new temporary folder for a cluster, short enough for a socket path (under /tmp)."""
    return Path(tempfile.mkdtemp(prefix="digest-pg-", dir="/tmp" if Path("/tmp").is_dir() else None))


def main(argv: list[str]) -> int:
    """``start FOLDER`` (prints the URL) or ``stop FOLDER``."""
    if len(argv) != 2 or argv[0] not in ("start", "stop"):
        print("usage: python3 -m tests.pgcluster start|stop FOLDER", file=sys.stderr)
        return 2
    binaries = bindir()
    if binaries is None:
        print("error: PostgreSQL is not installed (no initdb and pg_ctl found)", file=sys.stderr)
        return 1
    cluster = Cluster(Path(argv[1]).resolve(), binaries)
    if argv[0] == "start":
        cluster.start()
        print(cluster.url)
    else:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

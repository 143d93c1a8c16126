"""Faults made on demand, for the reliability tests: ``DIGEST_FAULT`` names one.

    DIGEST_FAULT=crash:<point>          the process ends at once (``os._exit(CRASH_EXIT)``, no cleanup,
                                        as a kill or a power cut would end it) when it reaches <point>
    DIGEST_FAULT=disk-full:<pattern>    writing a file whose path matches the fnmatch <pattern>
                                        fails with ENOSPC after its text went to the temp file
    DIGEST_FAULT=disk-full:store        the store cannot grow: SQLite's ``max_page_count`` is set to
                                        the file's size when it is opened for writing, so the next
                                        write that needs a page fails with SQLite's own SQLITE_FULL

The crash points, in the order a run reaches them (:data:`CRASH_POINTS`) are where a run changes
what survives it: before and after the commit, around each delivery's mark, and between the
batches of a site build.  The variable is read once, at import; unset (as it always is for users)
each hook costs one comparison.  Nothing here is configuration: it is a test seam, documented in
docs/guarantees.md so that anyone can repeat the checks by hand.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite3

ENV = "DIGEST_FAULT"
CRASH_EXIT = 86  # the exit status of a process ended at a crash point

CRASH_POINTS = (
    "before-commit",  # sources read and grouped, nothing stored yet
    "after-commit",  # the digest, its seen marks and its outbox rows are stored
    "rollups-queued",  # the weekly roll-ups due are decided and their outbox rows stored, nothing sent
    "archive-written",  # the archive's files are renamed into place, their rows not yet marked sent
    "archive-marked",  # the archive rows are marked sent, the email not yet sent
    "email-accepted",  # the SMTP server accepted a message, its row not yet marked sent
    "email-marked",  # the first message's row is marked sent, the others not yet sent
    "site-batch",  # the first batch of site pages is renamed into place, the rest not yet written
)

_kind, _, _arg = os.environ.get(ENV, "").partition(":")
STORE = "store"


def crash_point(point: str) -> None:
    """End the process at once if ``DIGEST_FAULT`` is ``crash:<point>``."""
    if _kind == "crash" and _arg == point:
        os._exit(CRASH_EXIT)


def disk_full(path: Path) -> None:
    """Raise ENOSPC if ``DIGEST_FAULT`` is ``disk-full:<pattern>`` and ``path`` matches the pattern."""
    if _kind == "disk-full" and _arg != STORE:
        import fnmatch

        if not fnmatch.fnmatch(str(path), _arg):
            return
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


def store_full(db: sqlite3.Connection) -> None:
    """Let the store not grow past its size if ``DIGEST_FAULT`` is ``disk-full:store``."""
    if _kind == "disk-full" and _arg == STORE:
        pages = int(db.execute("PRAGMA page_count").fetchone()[0])
        db.execute(f"PRAGMA max_page_count = {pages}")

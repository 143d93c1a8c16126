"""Atomic file writes: a reader sees the old file or the new one, never half of either."""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from digest import faults

FSYNC_THREADS = 8


def write_atomic(path: Path, text: str | Iterable[str]) -> None:
    """Write ``text`` (a string or its pieces) to ``path`` through a temp file in the same folder, fsync and a rename.

    The file gets the usual permissions (0666 less the umask), not mkstemp's 0600: archive pages
    are meant to be published by a web server.
    """
    with AtomicBatch() as batch:
        batch.write(path, text)


def write_if_changed(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` atomically unless the file already holds exactly it; True if written."""
    with AtomicBatch() as batch:
        return batch.write_if_changed(path, text)


class AtomicBatch:
    """Atomic writes of several files made durable together.

    Each file is written to a temp file beside it; when the block ends without an error every
    temp file is fsynced, ``FSYNC_THREADS`` at a time (concurrent fsyncs share the file system's
    journal commits, where one after another each waits for its own), and only then renamed
    over its file, in the order of the last write of each.  A reader sees each file old or new,
    never half written, and a crash leaves each file old or new.  An error in the block replaces
    no file; a rename that fails leaves the files renamed before it replaced and the rest not.
    Either way no temp file is left behind.
    """

    def __init__(self) -> None:
        self._written: dict[Path, str] = {}  # path -> its temp file, in the order of the last write

    def write(self, path: Path, text: str | Iterable[str]) -> None:
        """Write ``text`` (a string or its pieces) to a temp file that replaces ``path`` at the end of the block."""
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as out:
                os.fchmod(handle, 0o666 & ~_umask())
                if isinstance(text, str):
                    out.write(text)
                else:
                    out.writelines(text)
                faults.disk_full(path)  # (tests: the disk fills up as this file is written)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        earlier = self._written.pop(path, None)
        if earlier is not None:  # written again: the last text wins
            Path(earlier).unlink(missing_ok=True)
        self._written[path] = temp

    def write_if_changed(self, path: Path, text: str) -> bool:
        """:meth:`write` unless ``path`` already holds exactly ``text`` (and is not written in this batch); True if written."""
        if path in self._written:
            self.write(path, text)
            return True
        try:
            if path.read_bytes() == text.encode("utf-8"):
                return False
        except OSError:
            pass
        self.write(path, text)
        return True

    def __enter__(self) -> AtomicBatch:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        written, self._written = list(self._written.items()), {}
        renamed = 0
        try:
            if kind is None:
                _fsync_all([temp for _, temp in written])
                for path, temp in written:
                    os.replace(temp, path)
                    renamed += 1
        finally:
            for _, temp in written[renamed:]:
                Path(temp).unlink(missing_ok=True)


def _fsync_all(paths: list[str]) -> None:
    """fsync every file, ``FSYNC_THREADS`` at a time; the first error is raised after all are tried."""

    def fsync_each(chunk: list[str], errors: list[OSError]) -> None:
        for name in chunk:
            try:
                handle = os.open(name, os.O_RDONLY)
                try:
                    os.fsync(handle)
                finally:
                    os.close(handle)
            except OSError as exc:
                errors.append(exc)

    errors: list[OSError] = []
    if len(paths) <= 1:
        fsync_each(paths, errors)
    else:
        threads = [
            threading.Thread(target=fsync_each, args=(paths[i::FSYNC_THREADS], errors), name="digest-fsync")
            for i in range(min(FSYNC_THREADS, len(paths)))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]


def user_cache_dir(name: str) -> Path:
    """``$XDG_CACHE_HOME/digest/<name>`` (``~/.cache`` when the variable is unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "digest" / name


def _umask() -> int:
    mask = os.umask(0o022)  # the only way to read it is to set it
    os.umask(mask)
    return mask

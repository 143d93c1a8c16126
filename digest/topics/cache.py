"""What the grouper learned, kept between runs: one ``.npz`` per fingerprint.

Learning a taxonomy (training the word model, encoding every example) takes seconds; reading
it back takes milliseconds.  The fingerprint hashes everything the learning read, so an edit
of the topics file, a new examples file or a new version of the code is learned afresh, and
an old file is simply never asked for again.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

Arrays = dict[str, "NDArray[np.generic]"]
_MEMORY: dict[str, Arrays] = {}


def cache_dir() -> Path:
    """Where learned taxonomies are kept: ``$XDG_CACHE_HOME/digest/topics`` (``~/.cache`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "digest" / "topics"


def fingerprint(parts: Iterable[str]) -> str:
    """A short hash of the strings, in order."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8", "surrogatepass") + b"\x00")
    return digest.hexdigest()[:32]


#: The shipped taxonomy, learned in advance (``tools/build_shipped_model.py``), so that no user
#: waits for it: used when its fingerprint is the one asked for.
SHIPPED = Path(__file__).resolve().parent / "shipped-model.npz"


def load(key: str) -> Arrays | None:
    """The arrays kept under ``key`` (this process's, the cache folder's, the shipped ones), or None."""
    known = _MEMORY.get(key)
    if known is not None:
        return known
    arrays = _read(cache_dir() / f"{key}.npz")
    if arrays is None:
        shipped = _read(SHIPPED)
        if shipped is None or str(shipped.pop("fingerprint", "")) != key:
            return None
        arrays = shipped
    _MEMORY[key] = arrays
    return arrays


def _read(path: Path) -> Arrays | None:
    """The arrays of an ``.npz``; None when it is missing, unreadable or damaged (learn again)."""
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None


def save(key: str, arrays: Arrays) -> None:
    """Keep ``arrays`` under ``key``, atomically; a cache that cannot be written only makes the
    next run slower."""
    import numpy as np

    _MEMORY[key] = arrays
    path = cache_dir() / f"{key}.npz"
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with temporary.open("wb") as handle:
            np.savez(handle, **arrays)  # type: ignore[arg-type]  # numpy's stub types allow_pickle only
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)

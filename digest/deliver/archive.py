"""The archive channel: a day's digest as Markdown, HTML and text files under ``archive/``.

Files are written atomically (a temp file renamed over the old one), so a crash mid-write never
leaves a half-written page.  File names come only from dates, never from feed text.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from digest.models import Digest
from digest.render import Renderer, RenderOptions, day_path


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temp file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def write_digest_files(digest: Digest, folder: Path, renderer: Renderer, options: RenderOptions, *, nested: bool = True) -> dict[str, Path]:
    """Render a digest and write ``YYYY-MM-DD.md/.html/.txt``; return their paths by format.

    With ``nested`` the files go to ``folder/YYYY/MM/`` (the archive layout), else to ``folder``.
    """
    rendered = renderer.render(digest, options)
    base = folder / day_path(digest.date, "") if nested else folder / digest.date.isoformat()
    outputs = {
        "markdown": base.with_name(base.name + ".md"),
        "html": base.with_name(base.name + ".html"),
        "text": base.with_name(base.name + ".txt"),
    }
    write_atomic(outputs["markdown"], rendered.markdown)
    write_atomic(outputs["html"], rendered.html)
    write_atomic(outputs["text"], rendered.text)
    return outputs

"""Diagnostic: ``digest`` with the archive's whole-store pages (index, topic pages, feed) skipped.

``python bench/_without_archive_pages.py run ...`` is ``digest run ...`` except that
``write_archive_pages`` writes nothing.  bench/history.py uses it to show which part of a run
grows with the store; it is not a way to run digest.
"""

from __future__ import annotations

import sys

import digest.deliver.archive as archive

archive.write_archive_pages = lambda *args, **kwargs: []  # type: ignore[assignment]

from digest.cli import main  # noqa: E402 - after the patch

if __name__ == "__main__":
    sys.argv[0] = "digest"
    main()

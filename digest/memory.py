"""Give freed memory back to the operating system between the stages of a big run.

CPython hands objects over 512 bytes (a paper's abstract, for one) to the C allocator.  When a
stage frees many of them, glibc keeps the free space inside its heap wherever a live block sits
above it, and only blocks of that size can reuse it; the next stage's many small objects (a
template engine's, an imported module's) get fresh pages instead, and the process's peak is the
sum of both stages.  ``malloc_trim`` returns those free pages.
"""

from __future__ import annotations

import sys


def release_free_memory() -> None:
    """Return the C heap's free pages to the OS (glibc's ``malloc_trim``); a no-op elsewhere."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        trim = ctypes.CDLL(None).malloc_trim  # glibc only: musl and others have none
    except (AttributeError, OSError):
        return
    trim(0)

"""A response body read in pieces, whether it is held in memory (``bytes``) or spooled to a file.

The feed readers check, hash and parse a body piece by piece through :class:`Body`, so that a
big listing fetched with ``fetch(..., spool=True)`` is never in memory whole (only the
feedparser fallback reads it whole).
"""

from __future__ import annotations

import codecs

import hashlib
from collections.abc import Iterator
from typing import IO

#: Bytes read at a time.
PIECE = 1 << 20


class Body:
    """``bytes`` or a binary file (read from its start; never closed here)."""

    __slots__ = ("_data", "_file")

    def __init__(self, source: bytes | IO[bytes]) -> None:
        self._data = source if isinstance(source, bytes) else None
        self._file = None if isinstance(source, bytes) else source

    @classmethod
    def of(cls, source: bytes | IO[bytes] | Body) -> Body:
        """``source`` as a Body (itself if it is one)."""
        return source if isinstance(source, Body) else cls(source)

    def head(self, size: int) -> bytes:
        """The first ``size`` bytes (fewer if the body is shorter)."""
        if self._data is not None:
            return self._data[:size]
        assert self._file is not None
        self._file.seek(0)
        return self._file.read(size)

    def pieces(self, size: int | None = None) -> Iterator[bytes]:
        """The body from its start, ``size`` (default :data:`PIECE`) bytes at a time (the last piece may be shorter)."""
        size = size or PIECE
        if self._data is not None:
            data = self._data
            for start in range(0, len(data), size):
                yield data[start : start + size]
            return
        assert self._file is not None
        self._file.seek(0)
        while piece := self._file.read(size):
            yield piece

    def read(self) -> bytes:
        """The whole body."""
        if self._data is not None:
            return self._data
        assert self._file is not None
        self._file.seek(0)
        return self._file.read()

    def is_blank(self) -> bool:
        """True when the body is empty or only ASCII whitespace (what ``bytes.strip()`` removes)."""
        return all(piece.isspace() for piece in self.pieces())

    def sha256(self) -> str:
        """The hex SHA-256 of the body."""
        digest = hashlib.sha256()
        for piece in self.pieces():
            digest.update(piece)
        return digest.hexdigest()

    def count(self, byte: bytes, end: int) -> int:
        """How many times ``byte`` (one byte) occurs before offset ``end``."""
        found = 0
        offset = 0
        for piece in self.pieces():
            if offset >= end:
                break
            found += piece.count(byte, 0, end - offset)
            offset += len(piece)
        return found

    def invalid_utf8(self) -> UnicodeDecodeError | None:
        """The error decoding the whole body as UTF-8 raises (None when it is valid), the
        positions counted from the body's start, without holding the decoded text.

        Pure ASCII pieces need no decoding; the rest go through the codec's incremental decoder
        (it keeps an unfinished character for the next piece), whose first error is the one a
        whole decode raises.  Each piece's text is dropped as soon as it is made.
        """
        decoder = codecs.getincrementaldecoder("utf-8")()
        offset = 0  # of the next piece in the body
        for piece in self.pieces():
            held = decoder.getstate()[0]  # the unfinished character carried over
            if not held and piece.isascii():
                offset += len(piece)
                continue
            try:
                decoder.decode(piece)
            except UnicodeDecodeError as exc:  # positions in (held + piece)
                return _shifted(exc, offset - len(held))
            offset += len(piece)
        held = decoder.getstate()[0]
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            return _shifted(exc, offset - len(held))
        return None


def _shifted(exc: UnicodeDecodeError, offset: int) -> UnicodeDecodeError:
    return UnicodeDecodeError("utf-8", exc.object, offset + exc.start, offset + exc.end, exc.reason)

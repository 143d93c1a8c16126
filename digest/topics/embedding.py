"""Static word-piece vectors: the meaning of words, offline and fast.

The vectors ship with the package (``static-embeddings.npy`` and ``static-vocab.txt``, built by
``tools/build_embeddings.py`` from all-MiniLM-L6-v2: each word piece of its vocabulary encoded
alone by the full model, then reduced by PCA).  A text's vector is the IDF-weighted mean of
its word pieces' vectors, so "Mamba" lands near "state space" without any transformer at
grouping time.  Tokenisation is BERT's uncased WordPiece: lower-case, accents stripped,
punctuation split off, then the longest pieces of the vocabulary from the left.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

VECTORS_PATH = Path(__file__).resolve().parent / "static-embeddings.npy"
VOCAB_PATH = VECTORS_PATH.with_name("static-vocab.txt")
_PIECES = re.compile(r"\w+|[^\w\s]")
_MAX_WORD = 100
_PIECES_OF_MAX = 1 << 17
#: Words that carry no topic: left out of a text's vector.
STOPWORDS = frozenset(
    """a about above across after again against all almost also although am among an and any are
    as at be been before being below between both but by can could did do does doing down during
    each either et etc few for from further had has have having here how however i if in into is
    it its itself just least less like made make many may more most much must no nor not now of
    off often on once one only or other our out over own per rather same several should show
    shown shows since so some such than that the their them then there these they this those
    through thus to too under until up upon us use used using very via was we well were what
    when where whether which while who whom why will with within without would yet you your
    novel new propose proposed paper approach method methods results result show demonstrate
    based present introduce work framework existing""".split()
)


class StaticEmbeddings:
    """Word-piece vectors and their vocabulary; :meth:`encode` turns texts into unit vectors."""

    def __init__(self, vectors: Path = VECTORS_PATH, vocab: Path = VOCAB_PATH) -> None:
        """Map the vectors (read lazily from disk: a run touches only the rows it uses) and
        read the vocabulary; numpy is imported here, not when the module is."""
        import numpy as np

        self.vectors: NDArray[np.float16] = np.load(vectors, mmap_mode="r")
        pieces = vocab.read_text(encoding="utf-8").splitlines()
        self._index = {piece: i for i, piece in enumerate(pieces)}
        self._unknown = self._index.get("[UNK]", 0)
        #: Each token seen and its word pieces (none for a stopword or punctuation): a day's
        #: papers use the same few thousand words again and again.
        self._pieces_of: dict[str, tuple[int, ...]] = {}
        self.dims = int(self.vectors.shape[1])
        #: Identifies the vectors in cache keys.
        self.identity = f"{len(pieces)}x{self.dims}:{vectors.stat().st_size}"

    def idf(self, texts: Iterable[str]) -> NDArray[np.float32]:
        """Each piece's inverse document frequency in ``texts`` (an unseen piece weighs as
        much as the rarest seen): the weights :meth:`encode` takes."""
        import numpy as np

        df: Counter[int] = Counter()
        n = 0
        for text in texts:
            df.update(set(self.piece_ids(text)))
            n += 1
        idf = np.full(len(self.vectors), math.log((n + 1) / 0.5), dtype=np.float32)
        for piece, count in df.items():
            idf[piece] = math.log((n + 1) / (count + 0.5))
        return np.maximum(idf, 0.0)

    def piece_ids(self, text: str) -> list[int]:
        """The vocabulary ids of the content word pieces of ``text`` (stopwords left out)."""
        pieces_of = self._pieces_of
        if len(pieces_of) > _PIECES_OF_MAX:
            pieces_of.clear()
        ids: list[int] = []
        for token in _PIECES.findall(_without_accents(text).lower()):
            pieces = pieces_of.get(token)
            if pieces is None:
                content = token not in STOPWORDS and (token.isalnum() or token == "-")
                pieces = pieces_of[token] = _wordpiece(self._index, self._unknown, token) if content else ()
            ids.extend(pieces)
        return ids

    def encode(self, texts: Sequence[str], idf: NDArray[np.float32]) -> NDArray[np.float32]:
        """One unit vector per text, its pieces weighed by ``idf`` (a zero row for a text with
        no content word)."""
        import numpy as np

        out = np.zeros((len(texts), self.dims), dtype=np.float32)
        for row, text in enumerate(texts):
            ids = self.piece_ids(text)
            if not ids:
                continue
            weights = idf[ids]
            vector = weights @ self.vectors[ids].astype(np.float32)
            norm = float(np.linalg.norm(vector))
            if norm > 0:
                out[row] = vector / norm
        return out


def _without_accents(text: str) -> str:
    """BERT's uncased basic tokenisation strips accents: "Gödel" is "godel"."""
    if text.isascii():
        return text
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


def _wordpiece(index: dict[str, int], unknown: int, word: str) -> tuple[int, ...]:
    """The vocabulary ids of ``word``'s word pieces: the longest pieces from the left (what
    ``StaticEmbeddings.piece_ids`` remembers per token)."""
    if word == "-":
        return ()
    direct = index.get(word)
    if direct is not None:
        return (direct,)
    if len(word) > _MAX_WORD:
        return (unknown,)
    pieces: list[int] = []
    start = 0
    while start < len(word):
        end = len(word)
        found = None
        while start < end:
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            found = index.get(piece)
            if found is not None:
                break
            end -= 1
        if found is None:
            return (unknown,)
        pieces.append(found)
        start = end
    return tuple(pieces)


@functools.lru_cache(maxsize=1)
def shipped_embeddings() -> StaticEmbeddings:
    """The shipped vectors, loaded once per process."""
    return StaticEmbeddings()

"""The word model: TF-IDF features and a multinomial logistic regression, in numpy.

A taxonomy teaches it through its labelled texts (each topic's description and examples,
the [other] table's).  Training minimises the class-balanced cross-entropy plus an L2
penalty with L-BFGS; it takes a few seconds for a few thousand examples, so the grouper
keeps a trained model in the cache folder (:mod:`digest.topics.cache`).

Features are the words of a text (lower-cased, two letters or more, stopwords left out) and
each pair of neighbouring words; their counts are damped (1 + log n), weighed by IDF and
the vector scaled to unit length.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from digest.topics.embedding import STOPWORDS

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

#: Bump when the features, the training or the arrays kept change: cached models of older versions are ignored.
MODEL_VERSION = 6
#: Inverse strength of the L2 penalty (as scikit-learn's ``C``).
C = 3.0
#: A feature must occur in this many training texts to be learned ...
MIN_DF = 2
#: ... when there are at least this many texts.
MIN_DF_FROM = 1000
_TOKEN = re.compile(r"\b\w\w+\b")


#: Each token seen and the word it stands for ("" for a stopword): a day's papers use the same
#: few thousand words again and again, and placing them is mostly reading words.
_WORD_OF: dict[str, str] = {}
_WORD_OF_MAX = 1 << 17


def words(text: str) -> list[str]:
    """The content words of ``text``, lower-cased and singular ("rewards" -> "reward"), in order."""
    word_of = _WORD_OF
    tokens = _TOKEN.findall(text.lower())
    found = list(map(word_of.get, tokens))
    if None in found:
        if len(word_of) > _WORD_OF_MAX:
            word_of.clear()
        for i, token in enumerate(tokens):
            if found[i] is None:
                found[i] = word_of[token] = "" if token in STOPWORDS else _singular(token)
    return list(filter(None, found))


#: Words ending in "s" that are no plural ("bias" is not the plural of "bia").
_NOT_PLURAL = frozenset(
    "alias atlas bias bonus bus campus canvas census chaos corpus cosmos focus gas lens news radius "
    "series species status virus".split()
)
#: Plurals whose singular no rule gives.
_IRREGULAR = {
    "analyses": "analysis", "axes": "axis", "hypotheses": "hypothesis", "indices": "index",
    "matrices": "matrix", "quizzes": "quiz", "vertices": "vertex",
}
#: Endings of words in "che" or "sse" whose plural drops only its "s" ("caches"; "batches"
#: and "losses" drop "es").
_E_ENDINGS = (
    "avalanche", "backache", "cache", "cliche", "creche", "crevasse", "earache", "finesse", "headache",
    "heartache", "impasse", "mustache", "niche", "panache", "posse", "psyche", "quiche", "toothache",
    "tranche",
)


def _singular(word: str) -> str:
    """Drop a plural ending: "caches" -> "cache", "batches" -> "batch", "losses" -> "loss",
    "studies" -> "study", "biases" -> "bias" ("loss", "status", "bias", "series" stay)."""
    if len(word) <= 3 or word[-1] != "s" or word in _NOT_PLURAL:
        return word
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if word.endswith("es") and word[:-2] in _NOT_PLURAL:
        return word[:-2]
    if word.endswith(("sses", "shes", "ches", "xes", "zzes")) and word != "aches":
        return word[:-1] if word[:-1].endswith(_E_ENDINGS) else word[:-2]
    if word[-2] in "su" or word.endswith("is"):
        return word
    return word[:-3] + "y" if word.endswith("ies") and len(word) > 4 else word[:-1]


def features(text: str) -> Counter[str]:
    """Word and word-pair counts of ``text``."""
    return _counts(words(text))


def _counts(tokens: list[str]) -> Counter[str]:
    """Word and word-pair counts of a text's words."""
    counts = Counter(tokens)
    _count_pairs(counts, tokens)
    return counts


def _count_pairs(counts: Counter[str], tokens: list[str]) -> None:
    """Add the word pairs of a text's words to ``counts``."""
    counts.update(map(" ".join, zip(tokens, tokens[1:])))


@dataclass(frozen=True, slots=True)
class WordModel:
    """A trained model: the vocabulary, its IDF and one weight row per feature and class."""

    classes: tuple[str, ...]
    vocabulary: dict[str, int]
    idf: NDArray[np.float64]
    weights: NDArray[np.float64]  # features x classes
    bias: NDArray[np.float64]  # classes
    _names: list[str] = field(default_factory=list, compare=False, repr=False)

    def to_arrays(self) -> dict[str, NDArray[np.generic]]:
        """The model as named arrays, for the cache."""
        import numpy as np

        return {
            "vocabulary": np.array(self.feature_names()),
            "idf": self.idf,
            "weights": self.weights.astype(np.float32),
            "bias": self.bias,
        }

    @classmethod
    def from_arrays(cls, classes: tuple[str, ...], arrays: dict[str, NDArray[np.generic]]) -> WordModel:
        """The model :meth:`to_arrays` gave."""
        import numpy as np

        names = [str(f) for f in arrays["vocabulary"]]
        return cls(
            classes=classes,
            vocabulary={f: i for i, f in enumerate(names)},
            idf=np.asarray(arrays["idf"], dtype=np.float64),
            weights=np.asarray(arrays["weights"], dtype=np.float64),
            bias=np.asarray(arrays["bias"], dtype=np.float64),
        )

    def vectorise(self, texts: Sequence[str]) -> Vectors:
        """The texts' TF-IDF vectors."""
        return self.vectorise_words([words(text) for text in texts])

    def vectorise_words(self, texts: Sequence[list[str]]) -> Vectors:
        """The TF-IDF vectors of texts already split into their :func:`words`."""
        return Vectors(*_vectorise(texts, self.vocabulary, self.idf))

    def log_proba(self, vectors: Vectors) -> NDArray[np.float64]:
        """Log-probabilities of each class for each vector (texts x classes)."""
        import numpy as np

        logits = _sparse_dot(vectors.indptr, vectors.indices, vectors.values, self.weights) + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        return np.asarray(logits - np.log(np.exp(logits).sum(axis=1, keepdims=True)), dtype=np.float64)

    def contributions(self, vectors: Vectors, row: int, c: int, rival: int, most: int) -> list[tuple[float, str]]:
        """The ``most`` features of text ``row`` that speak most for class ``c`` over ``rival``,
        largest first."""
        import numpy as np

        if most <= 0:
            return []
        start, end = int(vectors.indptr[row]), int(vectors.indptr[row + 1])
        ids = vectors.indices[start:end]
        lift = vectors.values[start:end] * (self.weights[ids, c] - self.weights[ids, rival])
        names = self.feature_names()
        positive = np.flatnonzero(lift > 0)
        if positive.size > most:
            # Only those at least as large as the ``most``-th largest can be among the first
            # ``most``: sorting the rest by name would cost more than placing the paper.
            floor = np.partition(lift[positive], positive.size - most)[positive.size - most]
            positive = positive[lift[positive] >= floor]
        # Ties (a word and the pair it always comes in) go by name, the same on every machine.
        return sorted(((float(lift[i]), names[int(ids[i])]) for i in positive), reverse=True)[:most]

    def feature_names(self) -> list[str]:
        """The features by index (made on first use)."""
        if not self._names:
            names = [""] * len(self.vocabulary)
            for f, i in self.vocabulary.items():
                names[i] = f
            self._names.extend(names)
        return self._names


class Vectors(NamedTuple):
    """TF-IDF vectors of several texts, as the rows of a CSR matrix, and for each text the
    share of its distinct words the model knows."""

    indptr: NDArray[np.intp]
    indices: NDArray[np.intp]
    values: NDArray[np.float64]
    known: NDArray[np.float64]


def train(
    texts: Sequence[str],
    labels: Sequence[int],
    weights: Sequence[float],
    classes: tuple[str, ...],
    background: Sequence[str] = (),
) -> WordModel:
    """Fit the model on labelled texts (``labels`` index ``classes``; ``weights`` per text).

    The IDF is counted over the texts and the unlabelled ``background`` texts together: a
    word common in any paper of the field ("transformer", "efficient") then weighs little even
    when a taxonomy's few examples happen to use it for one topic only.
    """
    import numpy as np

    n = len(texts)
    read = [words(text) for text in texts]
    df: Counter[str] = Counter()
    for tokens in read:
        df.update(_counts(tokens).keys())
    # In a large teaching set a feature seen in one text only is noise more often than signal
    # (and half the vocabulary); a small one needs every word it has.
    min_df = MIN_DF if n >= MIN_DF_FROM else 1
    kept = sorted(f for f, count in df.items() if count >= min_df)
    vocabulary = {f: i for i, f in enumerate(kept)}
    for text in background:
        df.update(f for f in features(text) if f in vocabulary)
    documents = n + len(background)
    idf = np.array([math.log((1 + documents) / (1 + df[f])) + 1.0 for f in kept], dtype=np.float64)
    indptr, indices, values, _ = _vectorise(read, vocabulary, idf)
    y = np.asarray(labels, dtype=np.intp)
    k = len(classes)
    # Balanced classes: each class weighs as much in all as the others, whatever its size.
    sample = np.asarray(weights, dtype=np.float64)
    per_class = np.bincount(y, weights=sample, minlength=k)
    sample = sample * (sample.sum() / (k * np.maximum(per_class, 1e-12)))[y]
    rows = np.repeat(np.arange(n), np.diff(indptr))
    order = np.argsort(indices, kind="stable")
    by_feature = (indices[order], rows[order], values[order])
    n_features = len(vocabulary)
    onehot = np.zeros((n, k))
    onehot[np.arange(n), y] = 1.0

    def loss_and_grad(theta: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
        w = theta[: n_features * k].reshape(n_features, k)
        b = theta[n_features * k :]
        logits = _sparse_dot(indptr, indices, values, w) + b
        logits -= logits.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(logits).sum(axis=1, keepdims=True))
        log_p = logits - log_norm
        loss = -float((sample * log_p[np.arange(n), y]).sum()) * C + 0.5 * float((w * w).sum())
        residual = (np.exp(log_p) - onehot) * sample[:, None] * C
        grad_w = _sparse_t_dot(by_feature, residual, n_features) + w
        grad_b = residual.sum(axis=0)
        return loss, np.concatenate([grad_w.ravel(), grad_b])

    theta = _lbfgs(loss_and_grad, np.zeros(n_features * k + k))
    return WordModel(
        classes=classes,
        vocabulary=vocabulary,
        idf=idf,
        weights=theta[: n_features * k].reshape(n_features, k),
        bias=theta[n_features * k :],
    )


def _vectorise(
    texts: Sequence[list[str]], vocabulary: dict[str, int], idf: NDArray[np.float64]
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float64], NDArray[np.float64]]:
    import numpy as np

    found: list[int] = []
    counts: list[int] = []
    lengths: list[int] = []
    singles: list[int] = []
    get = vocabulary.get
    unknown = itertools.repeat(-1)
    for tokens in texts:
        counted = Counter(tokens)
        singles.append(len(counted))  # the text's distinct words come first, then its word pairs
        _count_pairs(counted, tokens)
        found.extend(map(get, counted, unknown))
        counts.extend(counted.values())
        lengths.append(len(counted))
    # The rest for all texts at once: numpy per text would cost more than reading the words.
    n = len(texts)
    ids = np.array(found, dtype=np.intp)
    every_row = np.repeat(np.arange(n), lengths)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.intp)
    single = np.arange(len(ids)) - starts[every_row] < np.array(singles)[every_row]
    kept = ids >= 0
    known_singles = np.bincount(every_row[kept & single], minlength=n)
    known = known_singles / np.maximum(singles, 1)
    ids = ids[kept]
    rows = every_row[kept]
    values = (1.0 + np.log(np.array(counts, dtype=np.float64)[kept])) * idf[ids]
    norms = np.sqrt(np.bincount(rows, weights=values * values, minlength=n))
    if values.size:
        values /= norms[rows]
    indptr = np.concatenate(([0], np.cumsum(np.bincount(rows, minlength=n)))).astype(np.intp)
    return indptr, ids, values, known.astype(np.float64)


def _sparse_dot(
    indptr: NDArray[np.intp], indices: NDArray[np.intp], values: NDArray[np.float64], dense: NDArray[np.float64]
) -> NDArray[np.float64]:
    """CSR matrix times a dense matrix."""
    import numpy as np

    rows = len(indptr) - 1
    out = np.zeros((rows, dense.shape[1]))
    if len(indices) == 0:
        return out
    products = dense[indices] * values[:, None]
    nonempty = np.flatnonzero(np.diff(indptr))
    out[nonempty] = np.add.reduceat(products, indptr[nonempty], axis=0)
    return out


def _sparse_t_dot(
    by_feature: tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float64]],
    dense: NDArray[np.float64],
    n_features: int,
) -> NDArray[np.float64]:
    """The transposed CSR matrix (given sorted by feature) times a dense matrix."""
    import numpy as np

    features_sorted, rows, values = by_feature
    out = np.zeros((n_features, dense.shape[1]))
    if len(features_sorted) == 0:
        return out
    products = dense[rows] * values[:, None]
    starts = np.flatnonzero(np.r_[True, features_sorted[1:] != features_sorted[:-1]])
    out[features_sorted[starts]] = np.add.reduceat(products, starts, axis=0)
    return out


def _lbfgs(
    f: Callable[[NDArray[np.float64]], tuple[float, NDArray[np.float64]]],
    x: NDArray[np.float64],
    *,
    memory: int = 10,
    iterations: int = 300,
    tolerance: float = 1e-5,
) -> NDArray[np.float64]:
    """Minimise a smooth convex function (``f`` gives its value and gradient) with L-BFGS and a
    backtracking (Armijo) line search."""
    import numpy as np

    value, grad = f(x)
    s_list: list[NDArray[np.float64]] = []
    y_list: list[NDArray[np.float64]] = []
    for _ in range(iterations):
        if float(np.abs(grad).max()) < tolerance:
            break
        # Two-loop recursion: the search direction from the last ``memory`` steps.
        q = grad.copy()
        alphas = []
        for s, yv in reversed(list(zip(s_list, y_list))):
            rho = 1.0 / float(yv @ s)
            alpha = rho * float(s @ q)
            alphas.append((rho, alpha))
            q -= alpha * yv
        if s_list:
            q *= float(s_list[-1] @ y_list[-1]) / float(y_list[-1] @ y_list[-1])
        for (s, yv), (rho, alpha) in zip(zip(s_list, y_list), reversed(alphas)):
            beta = rho * float(yv @ q)
            q += (alpha - beta) * s
        direction = -q
        slope = float(grad @ direction)
        if slope >= 0:  # not a descent direction: start the memory afresh
            s_list.clear()
            y_list.clear()
            direction, slope = -grad, -float(grad @ grad)
        step = 1.0 if s_list else 1.0 / max(1.0, float(np.abs(grad).max()))
        while True:
            candidate = x + step * direction
            new_value, new_grad = f(candidate)
            if new_value <= value + 1e-4 * step * slope or step < 1e-10:
                break
            step *= 0.5
        s_vec, y_vec = candidate - x, new_grad - grad
        if float(s_vec @ y_vec) > 1e-12:
            s_list.append(s_vec)
            y_list.append(y_vec)
            if len(s_list) > memory:
                s_list.pop(0)
                y_list.pop(0)
        converged = abs(value - new_value) <= tolerance * max(1.0, abs(value))
        x, value, grad = candidate, new_value, new_grad
        if converged:
            break
    return x

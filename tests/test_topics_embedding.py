"""The static word-piece vectors (digest/topics/embedding.py): BERT's uncased word pieces of a
text, and one unit vector per text."""

from __future__ import annotations

import numpy as np
import pytest

from digest.topics.embedding import StaticEmbeddings, shipped_embeddings


@pytest.fixture(scope="module")
def embeddings() -> StaticEmbeddings:
    return shipped_embeddings()


def pieces(embeddings: StaticEmbeddings, text: str) -> list[str]:
    by_id = {i: piece for piece, i in embeddings._index.items()}
    return [by_id[i] for i in embeddings.piece_ids(text)]


def test_a_text_is_its_content_word_pieces_lower_cased_without_accents_or_stopwords(embeddings: StaticEmbeddings) -> None:
    assert pieces(embeddings, "The Gödel Machine: self-improving agents") == [
        "god", "##el", "machine", "self", "improving", "agents"
    ]
    assert pieces(embeddings, "Speculative decoding!!") == ["speculative", "deco", "##ding"]
    assert pieces(embeddings, "of the and, with") == []
    # The same word reads the same the second time (the pieces of a token are remembered).
    assert pieces(embeddings, "Speculative decoding") == ["speculative", "deco", "##ding"]


def test_each_text_is_a_unit_vector_of_its_weighted_pieces_and_an_empty_one_is_zero(embeddings: StaticEmbeddings) -> None:
    idf = np.ones(len(embeddings.vectors), dtype=np.float32)
    texts = ["speculative decoding for fast inference", "the of and", "state space models"]
    vectors = embeddings.encode(texts, idf)
    assert vectors.shape == (3, embeddings.dims)
    assert np.linalg.norm(vectors[0]) == pytest.approx(1.0, abs=1e-5)
    assert not vectors[1].any()
    ids = embeddings.piece_ids(texts[2])
    expected = embeddings.vectors[ids].astype(np.float32).sum(axis=0)
    np.testing.assert_allclose(vectors[2], expected / np.linalg.norm(expected), atol=1e-5)
    # A piece that weighs nothing leaves the text's vector.
    idf[embeddings.piece_ids("models")] = 0.0
    alone = embeddings.encode(["state space"], idf)[0]
    np.testing.assert_allclose(embeddings.encode(["state space models"], idf)[0], alone, atol=1e-5)

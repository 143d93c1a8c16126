"""The word model (digest/topics/model.py): TF-IDF features and a logistic regression."""

from __future__ import annotations

import math

import pytest

from digest.topics import model

TEXTS = ["transformer quantization of weights", "pruning transformer layers", "low-rank adapters", "instruction tuning data"]
LABELS = [0, 0, 1, 1]
CLASSES = ("compression", "adaptation")
FIELD = [f"a transformer for {domain}" for domain in ("vision", "speech", "text", "graphs", "proteins", "music", "video")]


def probability_of_first_class(trained: model.WordModel, text: str) -> float:
    return math.exp(float(trained.log_proba(trained.vectorise([text]))[0, 0]))


def test_a_word_common_in_the_whole_field_decides_less_than_one_only_a_topic_uses() -> None:
    """Only the compression examples say "transformer", but every paper of the field does:
    counted over the background, it weighs less; "quantization" keeps its weight."""
    alone = model.train(TEXTS, LABELS, [1.0] * 4, CLASSES)
    with_field = model.train(TEXTS, LABELS, [1.0] * 4, CLASSES, background=FIELD)
    assert probability_of_first_class(with_field, "transformer") < probability_of_first_class(alone, "transformer") - 0.05
    assert probability_of_first_class(with_field, "quantization") > 0.6
    # The background adds no words to learn: the vocabulary is the labelled texts'.
    assert set(with_field.vocabulary) == set(alone.vocabulary)


def test_words_are_lower_cased_singular_and_without_stopwords() -> None:
    assert model.words("The Caches of Studies and the Loss") == ["cache", "study", "loss"]
    assert set(model.features("KV caches evicted")) == {"kv", "cache", "evicted", "kv cache", "cache evicted"}


def test_a_plural_and_its_singular_are_one_word() -> None:
    # "batches" and "batch", "losses" and "loss" must be one feature, or a topic taught
    # "batch" misses a paper about "batches"; a word that only ends in "s" stays whole.
    plurals = (
        "batches patches losses classes processes boxes meshes approaches caches niches headaches rewards queries "
        "biases statuses indices vertices analyses"
    )
    singulars = (
        "batch patch loss class process box mesh approach cache niche headache reward query bias status index vertex "
        "analysis"
    )
    assert model.words(plurals) == singulars.split()
    assert model.words("bias series species gas lens status analysis loss") == [
        "bias", "series", "species", "gas", "lens", "status", "analysis", "loss",
    ]


def test_a_text_is_a_unit_tfidf_vector_of_the_features_the_model_knows() -> None:
    trained = model.train(TEXTS, LABELS, [1.0] * 4, CLASSES)
    texts = ["quantization quantization of unseen weights", "", "nothing known here", "pruning"]
    vectors = trained.vectorise(texts)
    assert list(vectors.indptr) == [0, 2, 2, 2, 3]
    names = trained.feature_names()
    first = slice(int(vectors.indptr[0]), int(vectors.indptr[1]))
    assert {names[i] for i in vectors.indices[first]} == {"quantization", "weight"}
    values = dict(zip((names[i] for i in vectors.indices[first]), vectors.values[first]))
    # "quantization" twice: 1 + ln 2 times its IDF, against "weight" once (both IDFs alike here).
    assert values["quantization"] / values["weight"] == pytest.approx(1 + math.log(2))
    assert math.fsum(v * v for v in vectors.values[first]) == pytest.approx(1.0)
    assert vectors.values[int(vectors.indptr[3])] == pytest.approx(1.0)
    # The share of a text's distinct words the model knows (word pairs aside).
    assert list(vectors.known) == pytest.approx([2 / 3, 0.0, 0.0, 1.0])


def test_words_read_the_same_when_the_remembered_words_are_forgotten(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "Caches of studies: KV caches evicted, the loss of caches"
    expected = model.words(text)
    monkeypatch.setattr(model, "_WORD_OF_MAX", 2)
    model._WORD_OF.clear()
    assert model.words(text) == expected == ["cache", "study", "kv", "cache", "evicted", "loss", "cache"]
    assert model.words("Speculative decoding") == ["speculative", "decoding"]


def test_the_words_that_decided_are_the_largest_lifts_ties_by_name_however_many_are_asked() -> None:
    """``contributions`` lists the features speaking most for a class over its rival, largest
    first, a tie (a word and the pair it always comes in) going by name: the first ``most`` of
    the whole ranking, for every ``most``."""
    trained = model.train(TEXTS, LABELS, [1.0] * 4, CLASSES)
    vectors = trained.vectorise(["transformer quantization of weights and pruning of layers"])
    everything = trained.contributions(vectors, 0, 0, 1, most=100)
    assert len(everything) >= 4 and all(lift > 0 for lift, _ in everything)
    assert everything == sorted(everything, reverse=True)
    assert any(a[0] == b[0] for a, b in zip(everything, everything[1:]))  # the data has ties
    for most in range(len(everything) + 2):
        assert trained.contributions(vectors, 0, 0, 1, most=most) == everything[:most]

from __future__ import annotations

import pytest

from digest.identity import normalise_title, paper_keys, parse_arxiv_id, parse_doi
from digest.models import Paper


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2401.12345", "2401.12345"),
        ("2401.12345v2", "2401.12345"),
        ("arXiv:2401.12345v3", "2401.12345"),
        ("https://arxiv.org/abs/2401.12345v3", "2401.12345"),
        ("http://arxiv.org/pdf/2401.12345v1.pdf", "2401.12345"),
        ("https://huggingface.co/papers/2312.00752", "2312.00752"),
        ("oai:arXiv.org:2501.00001v1", "2501.00001"),
        ("hep-th/9901001", "hep-th/9901001"),
        ("http://arxiv.org/abs/hep-th/9901001v2", "hep-th/9901001"),
        ("http://arxiv.org/abs/math.AG/0601001", "math.AG/0601001"),
        ("0704.0001", "0704.0001"),
        ("https://example.org/blog/post-2401", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_arxiv_id(text: str | None, expected: str | None) -> None:
    assert parse_arxiv_id(text) == expected


def test_parse_doi_is_case_insensitive_and_drops_trailing_punctuation() -> None:
    assert parse_doi("https://doi.org/10.1145/3544548.3580000.") == "10.1145/3544548.3580000"
    assert parse_doi("DOI: 10.48550/ARXIV.2401.12345") == "10.48550/arxiv.2401.12345"
    assert parse_doi("no doi here") is None


def test_normalised_titles_ignore_case_punctuation_and_spacing() -> None:
    assert normalise_title("SWIFT:A Scalable lightWeight") == normalise_title("SWIFT: A scalable  Lightweight")
    assert normalise_title("Ｆｕｌｌ-width ＴＥＸＴ") == normalise_title("full width text")  # NFKC
    assert normalise_title("Straße") == normalise_title("STRASSE")  # case-folding, not lower()
    assert normalise_title("Mamba-2") != normalise_title("Mamba 3")


def test_keys_strongest_first() -> None:
    paper = Paper(title="A Title", arxiv_id="2401.12345", doi="10.1/x")
    assert paper.keys == ("arxiv:2401.12345", "doi:10.1/x", "title:atitle")
    assert paper.key == "arxiv:2401.12345"
    assert Paper(title="A Title").key == "title:atitle"
    with pytest.raises(ValueError):
        paper_keys(arxiv_id=None, doi=None, title="  ::  ")

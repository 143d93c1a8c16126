"""parse_hf_daily and hf_daily_url."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from digest.errors import ParseError
from digest.models import Paper
from digest.sources.fetch import FetchSettings, fetch, make_client
from digest.sources.hf_daily import HF_DAILY_URL, hf_daily_url, parse_hf_daily
from tests.httpserver import Reply, TestServer

FIXTURE = Path(__file__).parent / "fixtures" / "hf" / "daily_papers.json"


def parse(body: bytes) -> tuple[list[Paper], list[str]]:
    warnings: list[str] = []
    return parse_hf_daily(body, source="hf", warn=warnings.append), warnings


def test_fixture_papers_and_skipped_items() -> None:
    papers, warnings = parse(FIXTURE.read_bytes())
    assert papers == [
        Paper(
            title="Sparse Mixtures of Low-Rank Adapters for Continual Learning",
            abstract=(
                "We study continual learning with sparse mixtures of low-rank adapters. "
                "Tokens such as <RET> stay literal.\n\nA second paragraph of the abstract."
            ),
            url="https://huggingface.co/papers/2401.12345",
            arxiv_id="2401.12345",
            authors=("Ada Lovelace", "Grace Hopper", "Alan Turing"),
            source="hf",
            position=0,
            upvotes=42,
            published=dt.date(2024, 1, 22),
        ),
        Paper(
            title="Orbital Mechanics with Diffusion Models",
            abstract="Trajectories are sampled from a diffusion prior.",
            url="https://huggingface.co/papers/2401.13000",
            arxiv_id="2401.13000",
            authors=("Katherine Johnson", "Dorothy Vaughan"),
            source="hf",
            position=1,
            upvotes=7,
            published=dt.date(2024, 1, 23),
        ),
        Paper(
            title="Frequency Hopping for Federated Learning",
            abstract="",
            url="https://huggingface.co/papers/2401.15000",
            arxiv_id="2401.15000",
            authors=("Hedy Lamarr",),
            source="hf",
            position=2,
            upvotes=None,  # "many" is not a number
            published=dt.date(2024, 1, 23),  # the item's date when the paper has none
        ),
    ]
    assert warnings == ["hf: item 3 has no paper.title; skipped", "hf: item 4 has no paper.id; skipped"]


def test_titles_are_one_line() -> None:
    item = {"paper": {"id": "2402.00001", "title": "A\n  Wrapped\r\nTitle\n\nWith Gaps", "summary": "x"}}
    papers, _ = parse(json.dumps([item]).encode())
    assert papers[0].title == "A Wrapped Title With Gaps"


def test_item_title_is_used_when_the_paper_has_none() -> None:
    item = {"paper": {"id": "2402.00002"}, "title": "From the item"}
    papers, warnings = parse(json.dumps([item]).encode())
    assert (papers[0].title, warnings) == ("From the item", [])


@pytest.mark.parametrize("item", [None, 3, "x", [], {"title": "no paper"}, {"paper": "2402.1"}])
def test_items_that_are_not_objects_with_a_paper_are_skipped(item: object) -> None:
    papers, warnings = parse(json.dumps([item, {"paper": {"id": "2402.00003", "title": "Kept"}}]).encode())
    assert [(p.title, p.position) for p in papers] == [("Kept", 0)]
    assert warnings == ["hf: item 1 has no paper object; skipped"]


def test_empty_list_is_no_papers() -> None:
    assert parse(b"[]") == ([], [])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "hf: the response is empty, not JSON"),
        (b"<!DOCTYPE html><html></html>", "hf: invalid JSON at line 1, column 1: Expecting value"),
        (b'[{"paper": ', "hf: invalid JSON at line 1, column 12: Expecting value"),
        (b'{"error": "Invalid date"}', "hf: the API answered an error: Invalid date"),
        (b'{"papers": []}', "hf: expected a JSON list of papers, got a JSON object"),
        (b'"text"', "hf: expected a JSON list of papers, got a JSON string"),
        (b"[\xff]", "hf: the response is not UTF-8 JSON (byte 1)"),
    ],
)
def test_bodies_that_are_not_a_list_of_papers(body: bytes, message: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse(body)
    assert str(caught.value) == message


def test_hf_daily_url() -> None:
    assert hf_daily_url(HF_DAILY_URL, None) == HF_DAILY_URL
    assert hf_daily_url(HF_DAILY_URL, dt.date(2024, 1, 23)) == HF_DAILY_URL + "?date=2024-01-23"
    assert (
        hf_daily_url("http://127.0.0.1:9/api/daily_papers?limit=50&date=2020-01-01", dt.date(2024, 1, 23))
        == "http://127.0.0.1:9/api/daily_papers?limit=50&date=2024-01-23"
    )


def test_fetch_and_parse_over_http(http_server: TestServer) -> None:
    base = http_server.add(
        "/api/daily_papers", Reply(body=FIXTURE.read_bytes(), headers={"Content-Type": "application/json"})
    )
    with make_client(FetchSettings()) as client:
        result = fetch(client, hf_daily_url(base, dt.date(2024, 1, 23)), settings=FetchSettings(timeout=5))
    papers, _ = parse(result.body)
    assert [p.arxiv_id for p in papers] == ["2401.12345", "2401.13000", "2401.15000"]
    assert http_server.requests[0].path == "/api/daily_papers?date=2024-01-23"

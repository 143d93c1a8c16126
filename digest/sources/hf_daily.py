"""Papers out of the Hugging Face daily papers JSON (the ``hf-daily-papers`` source kind).

``GET https://huggingface.co/api/daily_papers[?date=YYYY-MM-DD]`` answers a JSON list; each item
has a ``paper`` object (``id`` = arXiv id, ``title``, ``summary``, ``authors`` = objects with a
``name``, ``upvotes``, ``publishedAt``) beside fields of its own (``publishedAt``, ``title``,
``numComments``…).  Unknown fields are ignored.

- ``url`` is the paper's Hugging Face page, ``https://huggingface.co/papers/<id>``: it is where
  the upvotes and discussion live, and it links to arXiv (``parse_arxiv_id`` reads it too);
- ``title`` is one line; ``summary`` is unfolded (hard wraps removed, paragraph breaks kept as
  one blank line);
- ``upvotes`` are kept; ``published`` is the paper's ``publishedAt`` date (else the item's);
- ``position`` is the rank in the list as served.

An item without an id or a title is skipped with a warning naming it; an empty body, invalid
JSON or anything but a list raises :class:`~digest.errors.ParseError`.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

from digest.errors import ParseError
from digest.identity import parse_arxiv_id
from digest.models import Paper
from digest.sources.entries import parse_date
from digest.sources.text import clip, one_line, unfold

#: The daily papers endpoint.
HF_DAILY_URL = "https://huggingface.co/api/daily_papers"
_PAPER_PAGE = "https://huggingface.co/papers/"


def hf_daily_url(base_url: str, day: dt.date | None) -> str:
    """The daily papers URL for ``day`` (``?date=YYYY-MM-DD``); ``base_url`` as is for the latest."""
    if day is None:
        return base_url
    parts = urllib.parse.urlsplit(base_url)
    query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True) if k != "date"]
    query.append(("date", day.isoformat()))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def parse_hf_daily(body: bytes, *, source: str, warn: Callable[[str], None]) -> list[Paper]:
    """Parse a daily papers JSON body into papers, in the order served.

    Items lacking an id or a title are skipped and reported through ``warn``.
    Raises :class:`ParseError` when the body is not a JSON list.
    """
    items = _load_list(body, source)
    papers: list[Paper] = []
    for number, item in enumerate(items, start=1):
        paper = _paper(item, source=source, number=number, position=len(papers), warn=warn)
        if paper is not None:
            papers.append(paper)
    return papers


def _load_list(body: bytes, source: str) -> list[Any]:
    if not body.strip():
        raise ParseError(f"{source}: the response is empty, not JSON")
    try:
        data = json.loads(body)
    except UnicodeDecodeError as exc:
        raise ParseError(f"{source}: the response is not UTF-8 JSON (byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise ParseError(
            f"{source}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from exc
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        raise ParseError(f"{source}: the API answered an error: {clip(data['error'])}")
    if not isinstance(data, list):
        raise ParseError(f"{source}: expected a JSON list of papers, got a JSON {_json_type(data)}")
    return data


def _paper(
    item: Any, *, source: str, number: int, position: int, warn: Callable[[str], None]
) -> Paper | None:
    paper = item.get("paper") if isinstance(item, Mapping) else None
    if not isinstance(paper, Mapping):
        warn(f"{source}: item {number} has no paper object; skipped")
        return None
    paper_id = _text(paper.get("id"))
    if not paper_id:
        warn(f"{source}: item {number} has no paper.id; skipped")
        return None
    title = one_line(_text(paper.get("title")) or _text(item.get("title")))
    if not title:
        warn(f"{source}: item {number} has no paper.title; skipped")
        return None
    published = parse_date(_text(paper.get("publishedAt"))) or parse_date(_text(item.get("publishedAt")))
    return Paper(
        title=title,
        abstract=unfold(_text(paper.get("summary")) or _text(item.get("summary"))),
        url=_PAPER_PAGE + urllib.parse.quote(paper_id, safe="./"),
        arxiv_id=parse_arxiv_id(paper_id),
        authors=_authors(paper.get("authors")),
        source=source,
        position=position,
        upvotes=_upvotes(paper.get("upvotes")),
        published=published,
    )


def _authors(raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list):
        return ()
    names = (one_line(_text(a.get("name"))) for a in raw if isinstance(a, Mapping))
    return tuple(name for name in names if name)


def _upvotes(raw: Any) -> int | None:
    if isinstance(raw, bool) or not isinstance(raw, int):
        return None
    return raw


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return "number"

"""Collapse duplicates within one run: the same paper from several sources becomes one entry.

Two entries are the same paper when they share any identity key (arXiv id, DOI, normalised
title).  The merged entry keeps the richest fields of the group and the first one's rank: the
longest abstract and author list, any url, id, DOI and date, the most upvotes, and the fullest
list of arXiv categories (an RSS listing's beside a snapshot's none, the API's beside a legacy
listing's primary category alone).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from digest.categories import richer_categories
from digest.models import Paper


def _richer(a: Paper, b: Paper) -> Paper:
    """``a`` completed with whatever ``b`` has more of."""
    return dataclasses.replace(
        a,
        abstract=a.abstract if len(a.abstract) >= len(b.abstract) else b.abstract,
        url=a.url or b.url,
        arxiv_id=a.arxiv_id or b.arxiv_id,
        doi=a.doi or b.doi,
        authors=a.authors if len(a.authors) >= len(b.authors) else b.authors,
        upvotes=max((v for v in (a.upvotes, b.upvotes) if v is not None), default=None),
        published=a.published or b.published,
        categories=richer_categories(a.categories, b.categories),
    )


def merge_duplicates(papers: Sequence[Paper]) -> tuple[list[Paper], int]:
    """Return the papers with duplicates merged (first occurrence's order) and how many merged."""
    merged: list[Paper | None] = []
    slot_of: dict[str, int] = {}
    for paper in papers:
        slots = sorted({slot_of[k] for k in paper.keys if k in slot_of})
        if not slots:
            slot = len(merged)
            merged.append(paper)
        else:
            # The paper may join several earlier entries (one matched by id, one by title).
            slot = slots[0]
            combined = merged[slot]
            assert combined is not None
            for other in slots[1:]:
                extra = merged[other]
                assert extra is not None
                combined = _richer(combined, extra)
                merged[other] = None
            combined = _richer(combined, paper)
            merged[slot] = combined
        for key in merged[slot].keys:  # type: ignore[union-attr]
            slot_of[key] = slot
        for other in slots[1:]:
            for key, value in list(slot_of.items()):
                if value == other:
                    slot_of[key] = slot
    result = [p for p in merged if p is not None]
    return result, len(papers) - len(result)

"""The frozen split of the dev labels: papers the grouper's authors never look at while tuning.

Chosen before any tuning, by a hash of the normalised title, so it needs no list of titles
and cannot drift: a third of ``labels-dev.tsv`` (the papers whose SHA-256 of the normalised
title is 0 modulo 3) is *frozen*.  Tuning scripts read only :func:`tuning_rows`; the frozen
figure is computed once, at the end, by ``bench/topics.py --frozen``, and reported beside the
tuned one.
"""

from __future__ import annotations

import hashlib

from digest.identity import normalise_title


def is_frozen(title: str) -> bool:
    """True when a labelled paper belongs to the frozen split."""
    digest = hashlib.sha256(normalise_title(title).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % 3 == 0

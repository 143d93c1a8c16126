"""arXiv subject categories: which strings are arXiv codes, and which papers a choice of them picks.

A paper's ``categories`` hold arXiv taxonomy codes only, primary first: ``cs.LG``, ``math.OC``,
``hep-ph``, ``astro-ph.GA``, ``cond-mat.stat-mech`` (and the old archives without a subject
class, such as ``astro-ph`` or ``alg-geom``).  A code is an archive arXiv has (or had), then
optionally a dot and a subject class.  Anything else a feed calls a category (a blog's tag, an
ACM class ``I.2.6`` or an MSC class ``68T05`` from the arXiv API) is not kept.

A choice (a recipient's ``categories``) names codes or whole archives: ``cs`` picks every
``cs.*`` paper, ``cs.CL`` the papers listed in cs.CL.  Matching ignores case.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence

#: Every arXiv archive: the current ones, then those subsumed into others (old papers keep them).
ARCHIVES = frozenset(
    {
        "astro-ph", "cond-mat", "cs", "econ", "eess", "gr-qc", "hep-ex", "hep-lat", "hep-ph",
        "hep-th", "math", "math-ph", "nlin", "nucl-ex", "nucl-th", "physics", "q-bio", "q-fin",
        "quant-ph", "stat",
        "acc-phys", "adap-org", "alg-geom", "ao-sci", "atom-ph", "bayes-an", "chao-dyn", "chem-ph",
        "cmp-lg", "comp-gas", "dg-ga", "funct-an", "mtrl-th", "patt-sol", "plasm-ph", "q-alg",
        "solv-int", "supr-con",
    }
)  # fmt: skip
_CODE = re.compile(r"^([a-z]+(?:-[a-z]+)?)(?:\.[A-Za-z]+(?:-[A-Za-z]+)*)?$")
#: How many tags a paper shows before "+N".
SHOWN = 3


@functools.lru_cache(maxsize=4096)  # a listing names the same few codes thousands of times
def is_arxiv_category(code: str) -> bool:
    """Whether ``code`` is an arXiv category or archive code (``cs.LG``, ``hep-ph``), case ignored."""
    found = _CODE.match(code.lower())
    return found is not None and found.group(1) in ARCHIVES


def not_a_category(code: str) -> str:
    """What is wrong with a chosen ``code`` that :func:`is_arxiv_category` refuses, for an error line."""
    return f"{code!r} is not an arXiv category or archive (e.g. 'cs.CL', 'eess.AS', 'math', 'hep-ph')"


def arxiv_categories(terms: Iterable[str], primary: str | None = None) -> tuple[str, ...]:
    """The arXiv codes among a feed entry's category ``terms``: ``primary`` first, each once, as written."""
    kept: dict[str, None] = {}
    for term in (primary, *terms) if primary else terms:
        code = term.strip()
        if code and code not in kept and is_arxiv_category(code):
            kept[code] = None
    return tuple(kept)


def richer_categories(first: tuple[str, ...], second: tuple[str, ...]) -> tuple[str, ...]:
    """The categories of two listings of one paper: the longer list (the first on a tie).

    Both come from arXiv and list the primary first, so a longer list is the same paper's
    fuller one (an API answer beside a legacy listing that names the primary category only).
    """
    return first if len(first) >= len(second) else second


def matches(categories: Sequence[str], wanted: Sequence[str]) -> bool:
    """Whether any of a paper's ``categories`` is one of ``wanted`` or in one of its archives.

    ``wanted`` empty picks every paper; a paper without categories is picked by no other choice.
    """
    if not wanted:
        return True
    chosen = {code.lower() for code in wanted}
    for category in categories:
        code = category.lower()
        if code in chosen or code.split(".", 1)[0] in chosen:
            return True
    return False


def shown(categories: Sequence[str], limit: int = SHOWN) -> tuple[tuple[str, ...], int]:
    """The tags a paper shows (its first ``limit`` categories, primary first) and how many more it has."""
    return tuple(categories[:limit]), max(0, len(categories) - limit)

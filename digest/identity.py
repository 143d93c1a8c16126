"""Identity keys: when are two entries the same paper?

1. the same arXiv id (versions ignored, old-style ids such as ``hep-th/9901001`` too);
2. else the same DOI;
3. else the same normalised title.

A paper carries every key it has; the store remembers them all, so a paper first seen by title
and later seen with an arXiv id is recognised.
"""

from __future__ import annotations

import re
import unicodedata

_NEW_ID = r"\d{4}\.\d{4,5}"
_OLD_ID = r"[a-z]+(?:-[a-z]+)*(?:\.[A-Z]{2})?/\d{7}"
_VERSION = r"(?:v\d+)?"

# An id on its own ("2401.12345v2", "arXiv:2401.12345", "hep-th/9901001").
_BARE_ID = re.compile(rf"^(?:arxiv:)?({_NEW_ID}|{_OLD_ID}){_VERSION}$", re.IGNORECASE)
# An id inside a link or an OAI identifier.
_LINKED_ID = re.compile(
    rf"(?:arxiv\.org/(?:abs|pdf|html)/|huggingface\.co/papers/|oai:arxiv\.org:|arxiv:)"
    rf"({_NEW_ID}|{_OLD_ID}){_VERSION}",
    re.IGNORECASE,
)
_DOI = re.compile(r"\b(10\.\d{4,9}/[^\s\"<>]+)", re.IGNORECASE)
_NON_ALNUM = re.compile(r"[\W_]+", re.UNICODE)


def normalise_title(title: str) -> str:
    """Return the title as an identity string: NFKC, case-folded, non-alphanumerics removed."""
    return _NON_ALNUM.sub("", unicodedata.normalize("NFKC", title).casefold())


def _canonical_arxiv(found: str) -> str:
    # Old-style archive names are lower case, the subject class upper case (math.AG/0601001).
    if "/" in found:
        archive, number = found.split("/", 1)
        if "." in archive:
            name, subject = archive.split(".", 1)
            archive = f"{name.lower()}.{subject.upper()}"
        else:
            archive = archive.lower()
        return f"{archive}/{number}"
    return found


def parse_arxiv_id(text: str | None) -> str | None:
    """Return the version-less arXiv id in an id, a link or an OAI identifier, if there is one."""
    if not text:
        return None
    text = text.strip()
    bare = _BARE_ID.match(text)
    if bare:
        return _canonical_arxiv(bare.group(1))
    linked = _LINKED_ID.search(text)
    if linked:
        return _canonical_arxiv(linked.group(1))
    return None


def parse_doi(text: str | None) -> str | None:
    """Return the DOI (lower-cased, as DOIs are case-insensitive) in a string or link."""
    if not text:
        return None
    found = _DOI.search(text)
    if not found:
        return None
    return found.group(1).rstrip(".,;)").lower()


def paper_keys(*, arxiv_id: str | None, doi: str | None, title: str) -> tuple[str, ...]:
    """Every identity key of a paper, strongest first."""
    keys = []
    if arxiv_id:
        keys.append(f"arxiv:{parse_arxiv_id(arxiv_id) or arxiv_id}")
    if doi:
        keys.append(f"doi:{parse_doi(doi) or doi.lower()}")
    norm = normalise_title(title)
    if norm:
        keys.append(f"title:{norm}")
    if not keys:
        # A paper with no title and no ids cannot be matched; sources never emit one.
        raise ValueError("a paper needs a title, an arXiv id or a DOI")
    return tuple(keys)

"""Topics: the taxonomy, the grouper that places each paper in one topic or Other, teaching
it, and measuring it.

``taxonomy`` reads the topics file; ``grouper`` places papers; ``teach`` edits the topics
file (``digest topics add-example``); ``evaluate`` compares placements with hand labels.
"""

from digest.topics.evaluate import EvalReport, evaluate, format_report, label_snapshot_files, read_labels
from digest.topics.grouper import ORDERS, Grouper, explain, group_papers
from digest.topics.taxonomy import (
    OTHER_CODE,
    OTHER_TITLE,
    Example,
    OtherSpec,
    Taxonomy,
    Topic,
    configured_taxonomy,
    default_taxonomy_path,
    load_taxonomy,
    parse_keyword,
)
from digest.topics.teach import add_example

__all__ = [
    "ORDERS",
    "OTHER_CODE",
    "OTHER_TITLE",
    "EvalReport",
    "Example",
    "Grouper",
    "OtherSpec",
    "Taxonomy",
    "Topic",
    "add_example",
    "configured_taxonomy",
    "default_taxonomy_path",
    "evaluate",
    "explain",
    "format_report",
    "group_papers",
    "label_snapshot_files",
    "load_taxonomy",
    "parse_keyword",
    "read_labels",
]

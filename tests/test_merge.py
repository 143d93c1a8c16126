from __future__ import annotations

from digest.merge import merge_duplicates
from digest.models import Paper


def test_duplicates_across_sources_keep_the_richest_fields() -> None:
    from_snapshot = Paper(title="SWIFT: A Scalable Method", abstract="Short.", source="inbox", position=0)
    from_feed = Paper(
        title="SWIFT:A scalable method",
        abstract="A much longer abstract from the feed.",
        url="https://arxiv.org/abs/2401.00001",
        arxiv_id="2401.00001",
        authors=("Ada", "Alan"),
        source="cs.LG",
        position=5,
    )
    from_hf = Paper(title="Swift: a scalable method", arxiv_id="2401.00001", upvotes=42, source="hf", position=1)
    merged, duplicates = merge_duplicates([from_snapshot, from_feed, from_hf])
    assert duplicates == 2
    (paper,) = merged
    assert paper.arxiv_id == "2401.00001"
    assert paper.url == "https://arxiv.org/abs/2401.00001"
    assert paper.authors == ("Ada", "Alan")
    assert paper.upvotes == 42
    assert paper.abstract == "A much longer abstract from the feed."
    assert (paper.source, paper.position) == ("inbox", 0)  # first listing keeps its rank


def test_an_entry_that_links_two_earlier_ones_merges_all_three() -> None:
    by_title = Paper(title="Alpha Paper", source="a")
    by_id = Paper(title="Different Title Wording", arxiv_id="2402.00002", source="b")
    both = Paper(title="Alpha Paper", arxiv_id="2402.00002", source="c")
    merged, duplicates = merge_duplicates([by_title, by_id, both])
    assert duplicates == 2
    assert len(merged) == 1
    assert merged[0].arxiv_id == "2402.00002"


def test_distinct_papers_stay_apart_in_order() -> None:
    papers = [Paper(title=f"Paper {i}", position=i) for i in range(5)]
    merged, duplicates = merge_duplicates(papers)
    assert merged == papers
    assert duplicates == 0


def test_duplicates_keep_the_fullest_arxiv_categories_primary_first() -> None:
    from_snapshot = Paper(title="Kernel Tests for Streams", source="inbox")  # a snapshot has no categories
    from_legacy = Paper(title="Kernel Tests for Streams", arxiv_id="2005.09001", source="rdf", categories=("stat.ML",))
    from_api = Paper(
        title="Kernel tests for streams", arxiv_id="2005.09001", source="api", categories=("stat.ML", "cs.LG", "math.ST")
    )
    from_listing = Paper(title="Kernel Tests for Streams", arxiv_id="2005.09001", source="rss", categories=("stat.ML", "cs.LG"))
    (paper,), duplicates = merge_duplicates([from_snapshot, from_legacy, from_api, from_listing])
    assert duplicates == 3
    assert paper.categories == ("stat.ML", "cs.LG", "math.ST")
    assert paper.source == "inbox"
    # The order of the sources does not matter: the fullest list wins either way.
    (again,), _ = merge_duplicates([from_listing, from_api, from_snapshot])
    assert again.categories == ("stat.ML", "cs.LG", "math.ST")

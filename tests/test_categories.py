"""arXiv category codes: what counts as one, and which papers a recipient's choice picks."""

from __future__ import annotations

import pytest

from digest.categories import arxiv_categories, is_arxiv_category, matches, richer_categories, shown


@pytest.mark.parametrize(
    "code",
    ["cs.LG", "math.OC", "hep-ph", "astro-ph.GA", "astro-ph", "cond-mat.stat-mech", "physics.data-an",
     "q-bio.BM", "q-fin.CP", "eess.AS", "econ.EM", "nlin.AO", "math-ph", "alg-geom", "cmp-lg", "cs", "math", "CS.lg"],
)
def test_arxiv_codes_and_archives_are_categories(code: str) -> None:
    assert is_arxiv_category(code)


@pytest.mark.parametrize(
    "code",
    ["", "machine-learning", "Machine Learning", "I.2.6", "I.2.6; I.2.7", "68T05", "81T30", "cs.", ".LG",
     "xx.YY", "hep", "astro", "cs.LG.x", "cs LG", "cs.L1", "<b>cs.LG</b>"],
)
def test_other_terms_are_not(code: str) -> None:
    assert not is_arxiv_category(code)


def test_a_feed_entrys_terms_become_codes_primary_first_each_once() -> None:
    terms = ["cs.CL", " cs.LG ", "I.2.7", "cs.CL", "stat.ML", "machine learning"]
    assert arxiv_categories(terms) == ("cs.CL", "cs.LG", "stat.ML")
    assert arxiv_categories(terms, primary="cs.LG") == ("cs.LG", "cs.CL", "stat.ML")
    assert arxiv_categories([], primary="hep-th") == ("hep-th",)
    assert arxiv_categories(["68T05"], primary="not a code") == ()


def test_a_choice_picks_codes_and_whole_archives_ignoring_case() -> None:
    assert matches(("cs.LG", "stat.ML"), ())  # no choice: every paper
    assert matches((), ())
    assert not matches((), ("cs",))  # a paper without categories: no choice picks it
    assert matches(("cs.LG", "stat.ML"), ("stat.ml",))
    assert matches(("astro-ph.GA",), ("astro-ph",))
    assert matches(("astro-ph",), ("astro-ph",))
    assert not matches(("math-ph",), ("math",))  # math-ph is its own archive
    assert not matches(("cs.LG",), ("cs.CL", "eess"))


def test_tags_show_three_then_a_count_and_merges_keep_the_fuller_list() -> None:
    assert shown(("a.A", "b.B", "c.C", "d.D", "e.E")) == (("a.A", "b.B", "c.C"), 2)
    assert shown(("a.A",)) == (("a.A",), 0)
    assert shown(()) == ((), 0)
    assert richer_categories(("stat.ML",), ("stat.ML", "cs.LG")) == ("stat.ML", "cs.LG")
    assert richer_categories(("cs.LG", "cs.AI"), ("cs.LG", "cs.CL")) == ("cs.LG", "cs.AI")  # a tie: the first

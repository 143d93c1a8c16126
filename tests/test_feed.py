"""parse_feed on every fixture: exact papers, announce-type filtering, errors."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from digest.errors import ParseError
from digest.models import Paper
from digest.sources import feed_fast
from digest.sources.entries import RawEntry, build_papers
from digest.sources.feed import ANNOUNCE_TYPES, parse_feed, read_entries
from digest.sources.fetch import FetchSettings, fetch, make_client
from digest.sources.hf_daily import parse_hf_daily
from tests.httpserver import Reply, TestServer

FEEDS = Path(__file__).parent / "fixtures" / "feeds"
JAN23 = dt.date(2024, 1, 23)


def read(name: str) -> bytes:
    return (FEEDS / name).read_bytes()


def parse(name: str, **kwargs: object) -> list[Paper]:
    return parse_feed(read(name), source="src", **kwargs)  # type: ignore[arg-type]


def parse_error(body: bytes, **kwargs: object) -> str:
    with pytest.raises(ParseError) as caught:
        parse_feed(body, source="src", **kwargs)  # type: ignore[arg-type]
    message = str(caught.value)
    assert "\n" not in message and message.startswith("src: ")
    return message


# --- arXiv listings (current RSS 2.0 and Atom) ------------------------------------------------

SPARSE = Paper(
    title="Sparse Mixtures of Low-Rank Adapters for Continual Learning",
    abstract=(
        "We study continual learning with sparse mixtures of low-rank adapters. Tokens such as <RET> "
        "and sizes like 256*256 stay literal, and so does block_out & friends."
    ),
    url="https://arxiv.org/abs/2401.12345",
    arxiv_id="2401.12345",
    authors=("Ada Lovelace", "Grace Hopper (Yale University, New Haven)", "Alan Turing"),
    source="src",
    position=0,
    published=JAN23,
    categories=("cs.LG", "cs.CL"),
)
GRAPH = Paper(
    title="Graph Neural Networks for Protein Folding Kinetics",
    abstract="A cross-listed paper about message passing on residue graphs.",
    url="https://arxiv.org/abs/2401.11111",
    arxiv_id="2401.11111",
    authors=("Rosalind Franklin",),
    source="src",
    position=1,
    published=JAN23,
    categories=("q-bio.BM", "cs.LG"),
)
BATCHNORM = Paper(
    title="Revisiting Batch Normalisation",
    abstract="The third version of an older paper on batch normalisation.",
    url="https://arxiv.org/abs/2310.00042",
    arxiv_id="2310.00042",
    doi="10.1234/jmlr.2024.00042",
    authors=("Kurt Goedel", "Emmy Noether"),
    source="src",
    position=2,
    published=JAN23,
    categories=("cs.LG",),
)
QUANTUM = Paper(
    title="Quantum Kernels Revised",
    abstract="A revised cross-listed paper.",
    url="https://arxiv.org/abs/2309.07777",
    arxiv_id="2309.07777",
    authors=("Paul Dirac",),
    source="src",
    position=3,
    published=JAN23,
    categories=("quant-ph", "cs.LG"),
)
TABULAR = Paper(
    title="Attention Is Not All You Need for Tabular Data",
    abstract="We compare attention with gradient-boosted trees on 40 tabular benchmarks.",
    url="https://arxiv.org/abs/2401.12399",
    arxiv_id="2401.12399",
    doi="10.5555/tab.2024.7",
    authors=("Sofia Kovalevskaya", "Srinivasa Ramanujan"),
    source="src",
    position=4,
    published=JAN23,
    categories=("cs.LG", "cs.AI", "cs.DB", "stat.ML"),
)


def at(paper: Paper, position: int) -> Paper:
    return dataclasses.replace(paper, position=position)


@pytest.mark.parametrize("name", ["arxiv_rss.xml", "arxiv_atom.xml"])
def test_arxiv_listing_keeps_new_and_cross_by_default(name: str) -> None:
    assert parse(name) == [SPARSE, GRAPH, at(TABULAR, 2)]


@pytest.mark.parametrize("name", ["arxiv_rss.xml", "arxiv_atom.xml"])
def test_arxiv_listing_with_every_announce_type(name: str) -> None:
    assert parse(name, announce_types=ANNOUNCE_TYPES) == [SPARSE, GRAPH, BATCHNORM, QUANTUM, TABULAR]


@pytest.mark.parametrize("name", ["arxiv_rss.xml", "arxiv_atom.xml"])
def test_arxiv_listing_with_only_replacements(name: str) -> None:
    papers = parse(name, announce_types=frozenset({"replace", "replace-cross"}))
    assert papers == [at(BATCHNORM, 0), at(QUANTUM, 1)]


def test_rss_and_atom_listings_agree() -> None:
    assert parse("arxiv_rss.xml", announce_types=ANNOUNCE_TYPES) == parse(
        "arxiv_atom.xml", announce_types=ANNOUNCE_TYPES
    )


def test_empty_day_is_no_papers_not_an_error() -> None:
    assert parse("arxiv_rss_empty.xml") == []


@pytest.mark.parametrize("name", ["arxiv_rss_feed_error.xml", "arxiv_atom_feed_error.xml"])
def test_unknown_category_feed_error_is_a_parse_error(name: str) -> None:
    message = parse_error(read(name))
    assert message == "src: arXiv answered 'Feed error for query: cs.XY' (is the category right?)"


def test_arxiv_listing_unicode_tex_and_escaped_markup_in_titles() -> None:
    first, second = parse("arxiv_rss_unicode.xml")
    assert first.title == "Erdős–Ko–Rado for Gödel Numberings: a “Short” Proof"
    assert first.authors == ("Paul Erdős", "Kurt Gödel", "Zhang Wei (张伟)")
    # An arXiv abstract is text: TeX, "<", "&" and even tag-like strings stay as written.
    assert first.abstract == (
        r"We prove that $|\mathcal{F}| \le \binom{n-1}{k-1}$ when 2k < n & F is intersecting; the "
        "bound is <b>tight</b>. Written in 東京 with naïve café notation: AT&amp;T."
    )
    # A title that is escaped HTML is reduced to text.
    assert (second.title, second.abstract) == ("On k-Colourings & Friends", "Colourings with k < 3 colours.")


# --- legacy RSS 1.0 and the API ---------------------------------------------------------------


def legacy(title: str, abstract: str, number: str, authors: tuple[str, ...], position: int, category: str) -> Paper:
    return Paper(
        title=title,
        abstract=abstract,
        url=f"http://arxiv.org/abs/{number}",
        arxiv_id=number,
        authors=authors,
        source="src",
        position=position,
        categories=(category,),  # the legacy title's "[cat]": the primary category only
    )


KERNEL = legacy(
    "Kernel Two-Sample Tests for Streaming Data",
    "We propose an online kernel two-sample test whose cost per sample is constant. "
    "Under the null hypothesis the statistic converges to a known distribution.",
    "2005.09001",
    ("Emmy Noether", "Ronald A. Fisher"),
    0,
    "stat.ML",
)
CONFORMAL = legacy(
    "Conformal Prediction under Covariate Shift",
    "Prediction sets with coverage >= 1 - alpha when the test distribution differs from the "
    "training distribution.",
    "2005.08123",
    ("Thomas Bayes",),
    1,
    "cs.LG",  # cross-listed into stat.ML: the bracket names the paper's own primary category
)


def test_legacy_rdf_listing_reads_types_from_titles() -> None:
    assert parse("arxiv_legacy.rdf") == [KERNEL, CONFORMAL]


def test_legacy_rdf_listing_with_updates() -> None:
    papers = parse("arxiv_legacy.rdf", announce_types=ANNOUNCE_TYPES)
    assert [p.arxiv_id for p in papers] == ["2005.09001", "2005.08123", "1911.04444", "math/0601001"]
    assert papers[3] == legacy(
        "Random Matrices and Old-Style Identifiers",
        "An old-style identifier, updated.",
        "math/0601001",
        ("Eugene Wigner",),
        3,
        "math.PR",
    )


def test_arxiv_api_answer() -> None:
    assert parse("arxiv_api.xml") == [
        Paper(
            title="Sparse Mixtures of Low-Rank Adapters for Continual Learning",
            abstract=(
                "We study continual learning with sparse mixtures of low-rank adapters. "
                "Tokens such as <RET> stay literal.\n\nA second paragraph of the abstract."
            ),
            url="http://arxiv.org/abs/2401.12345v2",
            arxiv_id="2401.12345",
            authors=("Ada Lovelace", "Grace Hopper", "Alan Turing"),
            source="src",
            position=0,
            published=dt.date(2024, 1, 22),
            categories=("cs.LG", "cs.CL"),  # the ACM classes "I.2.6; I.2.7" are no arXiv category
        ),
        Paper(
            title="String Junctions Made Simple",
            abstract="An old-style identifier with a journal DOI.",
            url="http://arxiv.org/abs/hep-th/9901001v1",
            arxiv_id="hep-th/9901001",
            doi="10.1016/s0550-3213(99)00001-x",
            authors=("Yoichiro Nambu",),
            source="src",
            position=1,
            published=dt.date(1999, 1, 1),
            categories=("hep-th", "gr-qc"),  # the MSC class 81T30 is dropped
        ),
    ]


def test_arxiv_api_error_entry_is_a_parse_error() -> None:
    assert parse_error(read("arxiv_api_error.xml")) == "src: arXiv API error: incorrect id format for 2401.1"


# --- ordinary blog and journal feeds: HTML becomes plain text ---------------------------------


def test_blog_rss_html_is_reduced_to_text_and_untitled_items_skipped() -> None:
    warnings: list[str] = []
    papers = parse("blog_rss.xml", warn=warnings.append)
    # The first post's tags ("machine-learning", even "cs.CL") are a blog's, not arXiv's: no categories.
    assert papers == [
        Paper(
            title="Why we rewrote our tokenizer",
            abstract="We rewrote the tokenizer.\n\nCafé & bar — see the old post. Second line.",
            url="https://blog.example.org/2024/01/tokenizer",
            authors=("Jane Roe",),
            source="src",
            position=0,
            published=dt.date(2024, 1, 22),
        ),
        Paper(
            title="Reading group: Scaling laws in 2024",
            abstract="A plain text summary: 5 < 6 and x > y.",
            url="https://blog.example.org/2024/01/reading-group",
            authors=("John Doe",),
            source="src",
            position=1,
            published=dt.date(2024, 1, 20),  # the date as written (+09:00), not shifted to UTC
        ),
    ]
    assert warnings == ["src: entry 3 has no title; skipped"]


def test_journal_rss_dois_from_prism_and_dc_identifier() -> None:
    assert parse("journal_rss.xml") == [
        Paper(
            title="A Field Study of Imaginary Numbers",
            abstract="Abstract. We count imaginary numbers in the wild.",
            url="https://journal.example.com/jir/article/12345",
            doi="10.9999/jir.2024.001",
            authors=("Leonhard Euler", "Carl Friedrich Gauss"),
            source="src",
            position=0,
            published=dt.date(2024, 1, 19),
        ),
        Paper(
            title="Complex Results, Simply",
            abstract="Plain abstract.",
            url="https://journal.example.com/jir/article/12346",
            doi="10.9999/jir.2024.002",
            authors=("Sophie Germain",),
            source="src",
            position=1,
        ),
    ]


def test_journal_atom_html_and_xhtml_summaries_and_doi_link() -> None:
    assert parse("journal_atom.xml") == [
        Paper(
            title="On in vitro Reasoning",
            abstract="Reasoning in vitro, with & without pipettes.\n\nSecond paragraph.",
            url="https://pms.example.net/articles/77",
            doi="10.7777/pms.77",
            authors=("Marie Curie", "Pierre Curie"),
            source="src",
            position=0,
            published=dt.date(2024, 1, 21),
        ),
        Paper(
            title="An XHTML Summary",
            abstract="Fission explained.",
            url="https://pms.example.net/articles/78",
            authors=("Lise Meitner",),
            source="src",
            position=1,
            published=dt.date(2024, 1, 20),
        ),
    ]


def test_script_content_never_reaches_the_abstract() -> None:
    body = b"""<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>t</title>
    <item><title>x</title><description>&lt;p&gt;ok&lt;/p&gt;&lt;script&gt;steal()&lt;/script&gt;
    &lt;img src=x onerror=alert(1)&gt;&lt;iframe src="//evil"&gt;&lt;/iframe&gt;</description></item>
    </channel></rss>"""
    [paper] = parse_feed(body, source="src")
    assert paper.abstract == "ok"


# --- bodies that are not usable feeds ----------------------------------------------------------


def test_html_page_instead_of_a_feed() -> None:
    message = parse_error(read("html_page.html"), url="https://rss.example.org/rss/cs.LG")
    assert message == "src: got an HTML page ('503 Service Unavailable'), not a feed"


@pytest.mark.parametrize(
    "body",
    [
        b"\xef\xbb\xbf<!-- cached -->\n<html><body>Maintenance</body></html>",
        b'<?xml version="1.0"?>\n<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "x">'
        b'<html xmlns="http://www.w3.org/1999/xhtml"><head><title>Login</title></head></html>',
    ],
)
def test_other_html_pages(body: bytes) -> None:
    assert parse_error(body).startswith("src: got an HTML page")


def test_truncated_feed_is_rejected_even_though_feedparser_salvages_entries() -> None:
    assert parse_error(read("truncated.xml")) == (
        "src: the feed ends early (truncated?): unclosed token at line 47"
    )


def test_invalid_utf8_where_utf8_is_declared() -> None:
    body = read("arxiv_rss.xml").replace(b"Rosalind", b"Ros\xffalind")
    message = parse_error(body)
    assert message.startswith("src: invalid UTF-8 at byte ")
    assert message.endswith("though UTF-8 is declared")


def test_invalid_utf8_where_the_http_charset_declares_it() -> None:
    body = b'<rss version="2.0"><channel><title>t</title><item><title>Caf\xe9</title></item></channel></rss>'
    assert "invalid UTF-8" in parse_error(body, content_type="application/rss+xml; charset=utf-8")
    # Declared Latin-1, the same bytes are fine.
    latin = parse_feed(body, source="src", content_type="application/rss+xml; charset=iso-8859-1")
    assert [p.title for p in latin] == ["Café"]


def test_malformed_xml_without_entries() -> None:
    message = parse_error(b'<?xml version="1.0"?><rss version="2.0"><channel><title>x</title></chanel></rss>')
    assert message == "src: malformed XML: mismatched tag at line 1"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", "src: the response is empty, not a feed"),
        (b"  \n", "src: the response is empty, not a feed"),
        (b'{"papers": []}', "src: not an RSS or Atom feed (not well-formed (invalid token) at line 1)"),
        (b"/etc/passwd", "src: not an RSS or Atom feed (not well-formed (invalid token) at line 1)"),
        (b"<?xml version='1.0'?>\n<catalog><book/></catalog>", "src: not an RSS or Atom feed"),  # bytes are never taken as a file name
    ],
)
def test_bodies_that_are_no_feed(body: bytes, expected: str) -> None:
    assert parse_error(body) == expected


def test_bozo_feed_that_still_yields_entries_is_accepted() -> None:
    body = b'<rss version="2.0"><channel><title>t</title><item><title>A &eacute; b</title></item></channel></rss>'
    assert [p.title for p in parse_feed(body, source="src")] == ["A é b"]


def test_error_hint_names_the_url() -> None:
    with pytest.raises(ParseError) as caught:
        parse_feed(b"", source="src", url="https://rss.arxiv.org/rss/cs.LG")
    assert caught.value.hint == "fetched from https://rss.arxiv.org/rss/cs.LG"


# --- identity across sources --------------------------------------------------------------------


def test_arxiv_v2_link_and_hf_json_give_the_same_key() -> None:
    from_api = parse("arxiv_api.xml")[0]  # <id>http://arxiv.org/abs/2401.12345v2</id>
    from_listing = parse("arxiv_rss.xml")[0]
    hf_body = (FEEDS.parent / "hf" / "daily_papers.json").read_bytes()
    from_hf = parse_hf_daily(hf_body, source="hf", warn=lambda _: None)[0]
    assert from_api.url == "http://arxiv.org/abs/2401.12345v2"
    assert from_api.key == from_listing.key == from_hf.key == "arxiv:2401.12345"


# --- over real HTTP -------------------------------------------------------------------------------


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with make_client(FetchSettings()) as c:
        yield c


def fetch_and_parse(client: httpx.Client, url: str) -> list[Paper]:
    result = fetch(client, url, settings=FetchSettings(timeout=5.0, retries=0))
    return parse_feed(result.body, source="src", url=result.url, content_type=result.content_type)


@pytest.mark.parametrize("name", sorted(p.name for p in FEEDS.glob("*.xml") if "error" not in p.name and p.name != "truncated.xml"))
def test_fixture_served_over_http_parses_as_from_disk(
    name: str, http_server: TestServer, client: httpx.Client
) -> None:
    url = http_server.add(f"/{name}", Reply(body=read(name), headers={"Content-Type": "application/xml"}, gzip=True))
    assert fetch_and_parse(client, url) == parse(name)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (Reply(body=read("html_page.html"), headers={"Content-Type": "text/html"}), "got an HTML page"),
        (Reply(body=read("truncated.xml")), "the feed ends early"),
        (Reply(body=read("arxiv_rss.xml").replace(b"Ada", b"\xc3\x28da")), "invalid UTF-8"),
        (Reply(body=read("arxiv_rss_feed_error.xml")), "Feed error for query"),
    ],
)
def test_bad_bodies_served_over_http(
    reply: Reply, expected: str, http_server: TestServer, client: httpx.Client
) -> None:
    url = http_server.add("/bad", reply)
    with pytest.raises(ParseError, match=expected) as caught:
        fetch_and_parse(client, url)
    assert caught.value.hint == f"fetched from {url}"


# --- the lxml fast path agrees with feedparser ----------------------------------------------------

# Fixtures the fast reader must take itself (the others it may leave to feedparser).
FAST_READS = {
    "arxiv_rss.xml", "arxiv_atom.xml", "arxiv_rss_empty.xml", "arxiv_api.xml",
    "arxiv_rss_unicode.xml",
}  # fmt: skip
FIXTURE_NAMES = sorted(p.name for p in FEEDS.iterdir() if p.suffix in (".xml", ".rdf", ".html"))


def both_readers(body: bytes) -> tuple[list[Paper] | str, list[Paper] | str | None]:
    """Papers (or the ParseError message) from feedparser's reader and from the fast one."""

    def papers(read: Callable[[], list[RawEntry] | None]) -> list[Paper] | str | None:
        try:
            entries = read()
        except ParseError as exc:
            return str(exc)
        if entries is None:
            return None
        return build_papers(entries, source="src", announce_types=ANNOUNCE_TYPES)

    slow = papers(lambda: read_entries(body, source="src"))
    assert slow is not None
    return slow, papers(lambda: feed_fast.read_entries(body, source="src"))


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fast_reader_gives_identical_papers(name: str) -> None:
    slow, fast = both_readers(read(name))
    if name in FAST_READS or "feed_error" in name or "api_error" in name:
        assert fast is not None, "the fast reader declined a feed it is meant to read"
    if fast is not None:
        assert fast == slow


def test_fast_reader_declines_what_it_does_not_model() -> None:
    declined = ("arxiv_legacy.rdf", "blog_rss.xml", "journal_rss.xml", "journal_atom.xml", "truncated.xml")
    for name in declined:
        assert feed_fast.read_entries(read(name), source="src") is None, name


def test_fast_reader_agrees_on_a_large_synthetic_listing() -> None:
    items = "".join(
        f"<item><title>T{i} &lt;sub&gt;x&lt;/sub&gt; Ünïcode</title><link>https://arxiv.org/abs/2401.{i:05d}</link>"
        f"<description>arXiv:2401.{i:05d}v2 Announce Type: {('new', 'cross', 'replace')[i % 3]}\n"
        f"Abstract: a &lt;RET&gt; b\n  c</description><guid isPermaLink=\"false\">oai:arXiv.org:2401.{i:05d}v2</guid>"
        f"<pubDate>Tue, 23 Jan 2024 00:00:00 -0500</pubDate>"
        f"<arxiv:announce_type>{('new', 'cross', 'replace')[i % 3]}</arxiv:announce_type>"
        f"<category>{('cs.LG', 'math.OC', 'hep-ph')[i % 3]}</category><category>stat.ML</category>"
        f"<dc:creator>A{i}, B (X, Y), C</dc:creator></item>"
        for i in range(300)
    )
    body = (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" xmlns:arxiv="http://arxiv.org/schemas/atom" '
        f'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>t</title>{items}</channel></rss>'
    ).encode()
    slow, fast = both_readers(body)
    assert isinstance(fast, list) and len(fast) == 300
    assert fast == slow


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fast_reader_in_one_pass_gives_what_entries_then_papers_give(name: str) -> None:
    """``read_papers`` (a paper per item as it is parsed) = ``build_papers(read_entries(...))``, warnings included."""
    body = read(name)

    def outcome(read_all: Callable[[list[str]], list[Paper] | None]) -> tuple[list[Paper] | str | None, list[str]]:
        warnings: list[str] = []
        try:
            return read_all(warnings), warnings
        except ParseError as exc:
            return str(exc), warnings

    def two_passes(warnings: list[str]) -> list[Paper] | None:
        entries = feed_fast.read_entries(body, source="src")
        return None if entries is None else build_papers(entries, source="src", warn=warnings.append)

    one = outcome(lambda warnings: feed_fast.read_papers(body, source="src", warn=warnings.append))
    assert one == outcome(two_passes)


def test_one_pass_reader_warns_only_when_it_keeps_the_feed() -> None:
    untitled = b"<item><title></title><link>https://arxiv.org/abs/2401.00001</link></item>"
    head = b'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>t</title>'
    kept: list[str] = []
    assert feed_fast.read_papers(head + untitled + b"</channel></rss>", source="src", warn=kept.append) == []
    assert kept == ["src: entry 1 has no title; skipped"]
    declined: list[str] = []  # a permalink guid after it: the feed goes to feedparser, which warns itself
    body = head + untitled + b'<item><title>x</title><guid>https://example.org/x</guid></item></channel></rss>'
    assert feed_fast.read_papers(body, source="src", warn=declined.append) is None
    assert declined == []


@pytest.mark.parametrize("piece", [1, 2, 3, 7, 1 << 20])
def test_the_piecewise_utf8_check_names_the_byte_a_whole_decode_names(piece: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from digest.sources import body as body_module

    monkeypatch.setattr(body_module, "PIECE", piece)
    text = "Ünïcode €uro 😀 ".encode()
    runs = (text + b"\x80" * 50 + text, b"\xf0\x9f" + b"\x80" * 40, b"\xbf" * 30)  # continuation bytes without end
    for data in (text * 3, text + b"\xff" + text, text + b"\xe2\x82", b"ab\xe2\x82c" + text, text + b"\x80", b"\xc3", text[:-3] + b"\xc3\x28", b"", b"ascii only", *runs):
        try:
            data.decode("utf-8")
            expected, reason = None, None
        except UnicodeDecodeError as exc:
            expected, reason = exc.start, exc.reason
        for content in (body_module.Body(data), body_module.Body(io.BytesIO(data))):
            found = content.invalid_utf8()
            assert (found.start if found else None) == expected, data
            assert (found.reason if found else None) == reason, data
            if expected is not None:
                assert content.count(b"\n", expected) == data.count(b"\n", 0, expected)


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_a_spooled_body_parses_like_the_bytes(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """parse_feed on a file (a spooled response), read in small pieces, = parse_feed on the bytes."""
    from digest.sources import body as body_module

    data = read(name)

    def outcome(body: bytes | io.BytesIO) -> list[Paper] | str:
        try:
            return parse_feed(body, source="src", announce_types=ANNOUNCE_TYPES)
        except ParseError as exc:
            return str(exc)

    whole = outcome(data)
    monkeypatch.setattr(body_module, "PIECE", 7)
    monkeypatch.setattr(feed_fast, "_CHUNK", 5)
    assert outcome(io.BytesIO(data)) == whole


@pytest.mark.parametrize(
    "data", [b"", b" \t\r\n\x0b\x0c", b"  x  ", b"<rss/>"]
)
def test_a_blank_body_is_what_strip_leaves_empty(data: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    from digest.sources import body as body_module

    monkeypatch.setattr(body_module, "PIECE", 2)
    for content in (body_module.Body(data), body_module.Body(io.BytesIO(data))):
        assert content.is_blank() == (not data.strip())
        assert content.read() == data and content.head(3) == data[:3] and b"".join(content.pieces()) == data
        assert content.sha256() == hashlib.sha256(data).hexdigest()


def arxiv_listing(titles: tuple[str, ...]) -> bytes:
    items = "".join(
        f"<item><title>{t}</title><link>https://arxiv.org/abs/2401.{i:05d}</link>"
        f"<description>arXiv:2401.{i:05d}v1 Announce Type: new\nAbstract: text {i}</description>"
        f"<arxiv:announce_type>new</arxiv:announce_type></item>"
        for i, t in enumerate(titles)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" xmlns:arxiv="http://arxiv.org/schemas/atom">'
        f"<channel><title>t</title>{items}</channel></rss>"
    ).encode()


def test_fast_reader_applies_feedparsers_text_fixups_without_importing_it_for_plain_text() -> None:
    titles = (
        "Plain title, no markup",
        "C1 controls \u0093quoted\u0094 and \u0080 sign",  # windows-1252 codes read as Latin-1
        "An entity &amp;amp; only",  # HTML by feedparser's test: an entity reference
        "Markup &lt;b&gt;bold&lt;/b&gt; here",
        "Mojibake cafÃ© au lait",  # UTF-8 read as Latin-1
    )
    slow, fast = both_readers(arxiv_listing(titles))
    assert isinstance(fast, list) and len(fast) == len(titles)
    assert fast == slow
    assert "\u201cquoted\u201d" in fast[1].title and "\u20ac" in fast[1].title and "café" in fast[4].title
    script = (
        "import sys; from digest.sources.feed import parse_feed\n"
        f"papers = parse_feed({arxiv_listing(titles[:1])!r}, source='s')\n"
        "print(len(papers), 'feedparser' in sys.modules)\n"
    )
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert ran.stdout.split() == ["1", "False"]  # a plain listing never imports feedparser (~85 ms)


# --- arXiv categories ------------------------------------------------------------------------------

API_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?><feed xmlns="http://www.w3.org/2005/Atom" '
    'xmlns:arxiv="http://arxiv.org/schemas/atom"><title>ArXiv Query</title><id>http://arxiv.org/api/x</id>'
)


def api_entry(ident: str, categories: str) -> str:
    return (
        f'<entry><id>{ident}</id><link href="https://example.org/{ident[-5:]}" rel="alternate" type="text/html"/>'
        f"<title>T {ident[-5:]}</title><updated>2024-01-25T18:01:02Z</updated>"
        f"<summary>S.</summary>{categories}</entry>"
    )


def test_the_primary_category_comes_first_and_only_arxiv_papers_keep_codes() -> None:
    body = (
        API_HEAD
        # the primary named after the others, which list it second, beside an MSC class
        + api_entry("http://arxiv.org/abs/2401.00001v1", '<category term="cs.LG"/><category term="math.OC"/>'
                    '<category term="90C25"/><arxiv:primary_category term="math.OC"/>')
        # the same codes on an entry that is no arXiv paper: a journal's subjects, not arXiv's taxonomy
        + api_entry("tag:journal.example.org,2024:1", '<category term="cs.LG"/><category term="math.OC"/>')
        + "</feed>"
    ).encode()
    slow, fast = both_readers(body)
    assert fast is not None and fast == slow
    assert [p.categories for p in fast] == [("math.OC", "cs.LG"), ()]


def test_a_category_named_by_its_label_alone_goes_to_feedparser_and_is_not_a_code() -> None:
    body = (API_HEAD + api_entry("http://arxiv.org/abs/2401.00002v1", '<category label="cs.LG"/><category term="stat.ML"/>') + "</feed>").encode()
    assert feed_fast.read_entries(body, source="src") is None
    (paper,) = parse_feed(body, source="src")
    assert paper.categories == ("stat.ML",)

from __future__ import annotations

import datetime as dt
import html.parser
from pathlib import Path

import markdown

from digest.models import Digest, DigestCounts, Paper, TopicGroup
from digest.render import Renderer, RenderOptions, escape_markdown, excerpt, paper_url, subject_line

DAY = dt.date(2025, 3, 14)
HOSTILE = Paper(
    title="Tokens like <RET>\nand C# in a title",
    abstract="We append <RET> after each step; <script>alert(1)</script> never runs. Sizes 256*256 and 512*512 use block_out [1] & more.",
    url="https://arxiv.org/abs/2401.00001",
    arxiv_id="2401.00001",
    authors=("Ada <ada@example.org>",),
)


def digest_with(*papers: Paper, per_group: int | None = None) -> Digest:
    return Digest(DAY, (TopicGroup("inference", "Inference & serving", tuple(papers)),), DigestCounts(len(papers), len(papers), 0, 0))


class TextOf(html.parser.HTMLParser):
    """The visible text of an HTML document and its <script> elements."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        self.scripts += tag == "script"

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def visible(html_text: str) -> TextOf:
    parser = TextOf()
    parser.feed(html_text)
    return parser


def test_feed_text_is_data_in_html() -> None:
    rendered = Renderer().render(digest_with(HOSTILE), RenderOptions())
    seen = visible(rendered.html)
    text = " ".join(seen.text)
    assert seen.scripts == 0
    assert "<RET>" in text and "<script>alert(1)</script>" in text
    assert "&lt;RET&gt;" in rendered.html
    assert "256*256 and 512*512 use block_out" in text


def test_feed_text_stays_literal_in_markdown() -> None:
    rendered = Renderer().render(digest_with(HOSTILE), RenderOptions())
    body = markdown.markdown(rendered.markdown.split("---", 2)[2], extensions=["attr_list"])
    seen = visible(body)
    text = " ".join(seen.text)
    assert seen.scripts == 0
    assert "<RET>" in text
    assert "256*256 and 512*512 use block_out [1] & more" in text
    abstract = next(p for p in body.split("<p>") if "We append" in p)
    assert "<em>" not in abstract and "<strong>" not in abstract and "<a " not in abstract


def test_escape_markdown_specials() -> None:
    assert escape_markdown("256*256 and 512*512") == r"256\*256 and 512\*512"
    assert escape_markdown("block_out") == r"block\_out"
    assert escape_markdown("<RET>") == "&lt;RET>"
    assert escape_markdown("# not a heading") == r"\# not a heading"
    assert escape_markdown("1. not a list") == r"1\. not a list"
    assert escape_markdown("[x](javascript:y)") == r"\[x\](javascript:y)"
    assert escape_markdown("C#") == "C#"
    assert escape_markdown("&copy; stays text") == "&amp;copy; stays text"


def test_newlines_in_titles_never_reach_a_line_of_their_own() -> None:
    rendered = Renderer().render(digest_with(HOSTILE), RenderOptions())
    assert "Tokens like &lt;RET&gt; and C# in a title" in rendered.html
    assert "* Tokens like <RET> and C# in a title" in rendered.text
    assert "### [Tokens like &lt;RET> and C# in a title](" in rendered.markdown
    assert "\n" not in subject_line(digest_with(HOSTILE), "Title\nInjected: yes")


def test_email_html_is_inlined_one_column_and_keeps_media_queries() -> None:
    rendered = Renderer().render(digest_with(HOSTILE), RenderOptions())
    assert 'width="600"' in rendered.html
    assert "prefers-color-scheme: dark" in rendered.html  # kept for dark mode
    assert "max-width: 620px" in rendered.html  # kept for phones
    assert 'class="paper-title" style="' in rendered.html  # inlined


def test_email_shows_at_most_max_per_topic_and_links_the_rest() -> None:
    papers = [Paper(title=f"Paper number {i}", abstract="An abstract.", position=i) for i in range(13)]
    options = RenderOptions(max_per_topic=10, site_url="https://digest.example.org/")
    rendered = Renderer().render(digest_with(*papers), options)
    assert "Paper number 9" in rendered.html and "Paper number 10" not in rendered.html
    assert "3 more in Inference &amp; serving" in rendered.html
    assert "https://digest.example.org/2025/03/2025-03-14.html#inference" in rendered.html
    assert "Paper number 12" in rendered.markdown  # the archive page has every paper
    assert "3 more in Inference & serving: https://digest.example.org/2025/03/2025-03-14.html#inference" in rendered.text


def test_table_of_contents_counts_per_topic() -> None:
    digest = Digest(
        DAY,
        (TopicGroup("inference", "Inference & serving", (Paper(title="A"), Paper(title="B"))), TopicGroup("other", "Other", (Paper(title="C"),))),
        DigestCounts(3, 3, 0, 0),
    )
    rendered = Renderer().render(digest, RenderOptions())
    assert "- [Inference & serving](#inference) (2)" in rendered.markdown
    assert "- [Other](#other) (1)" in rendered.markdown
    assert 'href="#topic-inference"' in rendered.html and ">Inference &amp; serving</a>" in rendered.html
    assert "count: 3" in rendered.markdown and "  inference: 2" in rendered.markdown


def test_user_templates_override_by_name(tmp_path: Path) -> None:
    (tmp_path / "email.txt.j2").write_text("Custom {{ size }} {{ date.isoformat() }}\n")
    rendered = Renderer(tmp_path).render(digest_with(HOSTILE), RenderOptions())
    assert rendered.text == "Custom 1 2025-03-14\n"
    assert "<html" in rendered.html  # the others still come from the built-in set


def test_links_are_safe_and_fall_back_to_a_search() -> None:
    assert paper_url(Paper(title="x", url="javascript:alert(1)", arxiv_id="2401.00001")) == "https://arxiv.org/abs/2401.00001"
    assert paper_url(Paper(title="Deep Nets & You")).startswith("https://arxiv.org/search/?searchtype=title&query=Deep+Nets+%26+You")


def test_excerpt_cuts_at_a_word() -> None:
    assert excerpt("one two three four", 9) == "one two\u2026"
    assert excerpt("short", 100) == "short"


def test_wordwrap_gives_jinjas_wrapping_and_remembers_it() -> None:
    import jinja2

    env = Renderer().env
    plain = jinja2.Environment()
    texts = [
        "A state-of-the-art mixture-of-experts model for long-context retrieval-augmented generation " * 3,
        "first paragraph\nsecond paragraph with a https://example.org/a/very/long/url/that/does/not/fit/on/one/line/at/all",
        "tabs\tand  double  spaces\u00a0and no-break spaces",
        "",
    ]
    for text in texts:
        for width, wrapstring in ((76, "\n  "), (20, None)):
            expected = plain.filters["wordwrap"](plain, text, width, wrapstring=wrapstring)
            source = "{{ text|wordwrap(%d%s) }}" % (width, ", wrapstring=w" if wrapstring else "")
            template = env.from_string(source)
            assert template.render(text=text, w=wrapstring) == expected
            assert template.render(text=text, w=wrapstring) == expected  # the remembered result
    from markupsafe import Markup

    html = jinja2.Environment(autoescape=True)
    ours = Renderer().env.overlay(autoescape=True)
    source = "{{ text|wordwrap(10, wrapstring=w) }}"
    for text, wrapstring in (("aaaa bbbb cccc", Markup("<br>")), ("aaaa bbbb cccc", "<br>"), (Markup("<b>x</b> y z"), None)):
        assert ours.from_string(source).render(text=text, w=wrapstring) == html.from_string(source).render(text=text, w=wrapstring)


TAGGED = Paper(
    title="Tagged paper",
    abstract="An abstract.",
    arxiv_id="2401.00007",
    authors=("Ada",),
    categories=("cs.LG", "cs.CL", "stat.ML", "cs.AI", "math.OC"),
)


def tag_spans(html_text: str) -> list[str]:
    import re

    return re.findall(r'<span class="tag"[^>]*>([^<]*)</span>', html_text)


def test_categories_are_small_tags_primary_first_three_then_a_count() -> None:
    untagged = Paper(title="Untagged paper", abstract="Another abstract.", arxiv_id="2401.00008")
    one = Paper(title="One category", arxiv_id="2401.00009", categories=("hep-ph",))
    rendered = Renderer().render(digest_with(TAGGED, untagged, one), RenderOptions())
    assert tag_spans(rendered.html) == ["cs.LG", "cs.CL", "stat.ML", "hep-ph"]
    assert rendered.html.count('<p class="tags"') == 2  # none for the paper without categories
    assert "</span> +2</p>" in rendered.html
    assert "\n  [cs.LG] [cs.CL] [stat.ML] +2\n" in rendered.text
    assert "\n  [hep-ph]\n" in rendered.text
    assert rendered.text.count("[") == 4  # nothing for the untagged paper
    assert "\n`cs.LG` `cs.CL` `stat.ML` +2\n" in rendered.markdown
    body = markdown.markdown(rendered.markdown.split("---", 2)[2], extensions=["attr_list"])
    assert "<p><code>cs.LG</code> <code>cs.CL</code> <code>stat.ML</code> +2</p>" in body
    assert "<p><code>hep-ph</code></p>" in body


def test_categories_are_data_in_every_format() -> None:
    hostile = Paper(title="Hostile tags", arxiv_id="2401.00010", categories=("<b>cs.LG</b>", "a`b", "x\ny"))
    rendered = Renderer().render(digest_with(hostile), RenderOptions())
    assert tag_spans(rendered.html) == ["&lt;b&gt;cs.LG&lt;/b&gt;", "a`b", "x y"]
    assert "<b>cs.LG</b>" not in rendered.html
    assert "\n  [<b>cs.LG</b>] [a`b] [x y]\n" in rendered.text  # the text part is plain text, on one line
    body = markdown.markdown(rendered.markdown.split("---", 2)[2], extensions=["attr_list"])
    assert "<p><code>&lt;b&gt;cs.LG&lt;/b&gt;</code> <code>a`b</code> <code>x y</code></p>" in body


def test_code_span_fences_any_backticks() -> None:
    from digest.render import code_span

    assert code_span("cs.LG") == "`cs.LG`"
    assert code_span("a`b") == "``a`b``"
    assert code_span("`x``") == "``` `x`` ```"
    assert code_span("two\nlines") == "`two lines`"
    assert code_span("") == ""
    for text in ("a`b", "`x``", "**bold** <i>"):
        assert markdown.markdown(code_span(text)) == f"<p><code>{text.replace('<', '&lt;').replace('>', '&gt;')}</code></p>"

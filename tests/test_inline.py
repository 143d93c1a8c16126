"""CSS inlining once per template: the inlined template gives the HTML premailer makes of each rendering."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

from digest.inline import UNSAFE, cached_inlined_source, inline_styles, inline_template_source, same_html
from digest.models import Digest, DigestCounts
from digest.render import EMAIL_HTML, Renderer, RenderOptions, template_context
from digest.topics import Grouper, default_taxonomy_path, group_papers, load_taxonomy
from tests.conftest import REPO, SEEDS
from tests.seed_papers import load_seed_file

TEMPLATE = (REPO / "templates" / EMAIL_HTML).read_text(encoding="utf-8")


def seed_digest(path: Path) -> Digest:
    papers = load_seed_file(path)
    groups, placements = group_papers(papers, Grouper(load_taxonomy(default_taxonomy_path())), order="source")
    return Digest(dt.date(2025, 3, 14), groups, DigestCounts(len(papers) + 2, len(papers), 2, 1), placements)


def inlined_per_rendering(renderer: Renderer, digest: Digest, options: RenderOptions) -> str:
    return inline_styles(renderer.render_template(EMAIL_HTML, **template_context(digest, options)))


@pytest.mark.parametrize("seed", sorted(p.name for p in SEEDS.glob("*.txt")))
def test_the_email_of_every_seed_is_what_premailer_makes_of_it(seed: str, tmp_path: Path) -> None:
    renderer = Renderer()
    digest = seed_digest(SEEDS / seed)
    for options in (RenderOptions(), RenderOptions(site_url="https://papers.example.org", max_per_topic=3, unsubscribe="mailto:u@example.org")):
        html = renderer.render(digest, options, markdown=False).html
        assert 'style="' in html and 'class="paper"' in html
        assert same_html(html, inlined_per_rendering(renderer, digest, options))
    assert (Path(os.environ["XDG_CACHE_HOME"]) / "digest" / "inlined").is_dir()


def test_same_html_tells_a_changed_style_text_or_element_apart() -> None:
    page = '<html><body><p class="a" style="color:red">One <b>two</b></p></body></html>'
    assert same_html(page, page.replace("One <b>", "One\n   <b>"))  # a run of whitespace is one space
    assert not same_html(page, page.replace("red", "blue"))
    assert not same_html(page, page.replace("One", "Uno"))
    assert not same_html(page, page.replace("<b>two</b>", "<i>two</i>"))
    assert not same_html(page, page.replace("One <b>", "One<b>"))


def test_jinja_tags_survive_inlining_and_feed_text_stays_escaped() -> None:
    inlined = inline_template_source(TEMPLATE)
    assert inlined is not None
    assert "{% for paper in group.papers[:max_per_topic] %}" in inlined and "{{ paper|paper_url }}" in inlined
    assert '<p class="abstract" style="' in inlined and "<style" in inlined  # media queries kept in a block
    html = Renderer().render(seed_digest(sorted(SEEDS.glob("*.txt"))[0]), RenderOptions(), markdown=False).html
    from tests.test_render import HOSTILE, digest_with

    hostile = Renderer().render(digest_with(HOSTILE), RenderOptions(), markdown=False).html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in hostile and "<script>" not in hostile
    assert "{{" not in html and "{%" not in html


def test_a_template_that_cannot_be_inlined_ahead_is_inlined_per_rendering(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    dynamic_css = TEMPLATE.replace("background: #f3f4f6;", "background: {{ '#f3f4f6' }};", 1)
    assert inline_template_source(dynamic_css) is None  # a Jinja tag inside the stylesheet
    assert inline_template_source(TEMPLATE.replace("<body>", '<body>{% include "banner.html" %}')) is None  # another file
    computed_class = TEMPLATE.replace('<p class="abstract">', "<p class=\"{{ 'abstract' }}\">")
    inlined = inline_template_source(computed_class)
    assert inlined is not None  # premailer keeps it, but it no longer knows the element is an abstract

    for name, source in (("css", dynamic_css), ("class", computed_class)):
        (templates / EMAIL_HTML).write_text(source, encoding="utf-8")
        renderer = Renderer(templates)
        digest = seed_digest(sorted(SEEDS.glob("*.txt"))[1])
        html = renderer.render(digest, RenderOptions(), markdown=False).html
        assert same_html(html, inlined_per_rendering(renderer, digest, RenderOptions())), name
        assert 'class="abstract" style="font-size:15px' in html, name  # the rendering was inlined
    cache = Path(os.environ["XDG_CACHE_HOME"]) / "digest" / "inlined"
    assert sum(p.read_text(encoding="utf-8") == UNSAFE for p in cache.iterdir()) >= 2  # the verdicts are kept


def test_the_cache_is_keyed_by_the_template_source_and_survives_a_bad_folder(tmp_path: Path) -> None:
    checks: list[str] = []

    def check(candidate: str) -> bool:
        checks.append(candidate)
        return True

    first = cached_inlined_source(TEMPLATE, check, tmp_path / "cache")
    assert first is not None and cached_inlined_source(TEMPLATE, check, tmp_path / "cache") == first
    assert len(checks) == 1  # the second came from the cache
    edited = TEMPLATE.replace("#1d4ed8", "#b91c1c")
    assert "#b91c1c" in (cached_inlined_source(edited, check, tmp_path / "cache") or "")
    assert len(checks) == 2
    blocked = tmp_path / "file"
    blocked.write_text("not a folder", encoding="utf-8")
    assert cached_inlined_source(TEMPLATE, check, blocked / "cache") == first  # made again, not kept
    assert cached_inlined_source(TEMPLATE, lambda candidate: False, tmp_path / "other") is None


def test_a_run_with_the_inlined_template_cached_never_imports_premailer(tmp_path: Path) -> None:
    script = (
        "import sys, datetime as dt\n"
        "from digest.models import Digest, DigestCounts, Paper, TopicGroup\n"
        "from digest.render import Renderer, RenderOptions\n"
        "d = Digest(dt.date(2025, 3, 14), (TopicGroup('other', 'Other', (Paper(title='One'),)),), DigestCounts(1, 1, 0, 0))\n"
        "html = Renderer().render(d, RenderOptions(), markdown=False).html\n"
        "print('premailer' in sys.modules, 'class=\"paper\" style=' in html)\n"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    runs = [subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True).stdout.split() for _ in range(2)]
    assert runs == [["True", "True"], ["False", "True"]]  # the first run inlines and checks; the next only renders

"""The HTML email as a reader sees it: laid out by a real browser (Debian's headless Chromium)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from digest.models import Digest, DigestCounts, MachineSummary, Paper, TopicGroup
from digest.render import Renderer, RenderOptions
from tests.browser import measure

# The email is laid out in an iframe of the wanted width (see tests/browser.py).
WRAPPER = """<!DOCTYPE html><html><head><title>pending</title></head><body style="margin:0">
<iframe id="frame" width="{width}" height="900" style="border:0" srcdoc="{srcdoc}"></iframe>
<script>
document.getElementById('frame').onload = () => {{
  const d = document.getElementById('frame').contentDocument;
  const c = d.querySelector('.container');
  const t = d.querySelector('.paper-title a');
  const tags = [...d.querySelectorAll('.tag')];
  const tldrs = [...d.querySelectorAll('.tldr')];
  document.title = JSON.stringify({{
    scroll: d.documentElement.scrollWidth,
    container: Math.round(c.getBoundingClientRect().width),
    containerRight: Math.round(c.getBoundingClientRect().right),
    background: getComputedStyle(c).backgroundColor,
    link: getComputedStyle(t).color,
    tags: tags.length,
    tagsRight: Math.round(Math.max(0, ...tags.map(e => e.getBoundingClientRect().right))),
    tagText: tags.length ? getComputedStyle(tags[0]).color : null,
    tagBackground: tags.length ? getComputedStyle(tags[0]).backgroundColor : null,
    tagHeight: tags.length ? Math.round(tags[0].getBoundingClientRect().height) : null,
    tldrs: tldrs.length,
    tldrRight: Math.round(Math.max(0, ...tldrs.map(e => e.getBoundingClientRect().right))),
    tldrText: tldrs.length ? getComputedStyle(tldrs[0]).color : null,
  }});
}};
</script></body></html>"""


def layout(html: str, tmp_path: Path, width: int, dark: bool = False) -> dict[str, object]:
    """Lay the email out at ``width`` CSS pixels and return what the browser measured."""
    return measure(WRAPPER, html, tmp_path / f"email-{width}-{dark}.html", dark=dark, width=width)


@pytest.fixture(scope="module")
def email_html() -> str:
    long_word = "Hyper" + "parameter" * 9  # no break opportunity: must still fit a phone
    papers = tuple(
        Paper(
            title=f"{long_word} study number {i}", abstract="We measure things carefully. " * 20, url=f"https://arxiv.org/abs/2401.{i:05d}",
            position=i, categories=("cond-mat.stat-mech", "physics.data-an", "cond-mat.dis-nn", "cs.LG", "stat.ML")[: 1 + i % 5],
            summary=MachineSummary(f"Tunes the {long_word} of a model in one pass.", "llama3.1:8b-instruct-q4_K_M") if i % 2 else None,
        )
        for i in range(12)
    )
    digest = Digest(dt.date(2025, 3, 14), (TopicGroup("inference", "Inference & serving", papers),), DigestCounts(12, 12, 0, 0))
    return Renderer().render(digest, RenderOptions(max_per_topic=10)).html


def luminance(css_color: object) -> float:
    r, g, b = (int(v) for v in str(css_color)[str(css_color).index("(") + 1 : -1].split(",")[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_one_column_of_600_px_on_a_desktop(email_html: str, tmp_path: Path) -> None:
    seen = layout(email_html, tmp_path, 1000)
    assert seen["container"] == 600


def test_fits_a_375_px_phone_without_sideways_scrolling(email_html: str, tmp_path: Path) -> None:
    seen = layout(email_html, tmp_path, 375)
    assert int(str(seen["scroll"])) <= 375
    assert int(str(seen["container"])) <= 375
    # The category tags (three of the longest codes on one paper) wrap inside the column.
    assert seen["tags"] == 24
    assert int(str(seen["tagsRight"])) <= int(str(seen["containerRight"]))
    # The machine-written summaries (under five of the ten titles shown) wrap inside the column too.
    assert seen["tldrs"] == 5
    assert int(str(seen["tldrRight"])) <= int(str(seen["containerRight"]))


def test_dark_mode_turns_the_page_dark_and_keeps_links_light(email_html: str, tmp_path: Path) -> None:
    light = layout(email_html, tmp_path, 600)
    dark = layout(email_html, tmp_path, 600, dark=True)
    assert luminance(light["background"]) > 200
    assert luminance(dark["background"]) < 60
    assert luminance(dark["link"]) > 150  # readable on the dark background
    # Tags: small, dark text on a light chip by day, light text on a dark chip by night.
    assert int(str(light["tagHeight"])) <= 20
    assert luminance(light["tagBackground"]) - luminance(light["tagText"]) > 120
    assert luminance(dark["tagText"]) - luminance(dark["tagBackground"]) > 120
    # A machine summary reads dark on light by day and light on dark by night.
    assert luminance(light["background"]) - luminance(light["tldrText"]) > 120
    assert luminance(dark["tldrText"]) - luminance(dark["background"]) > 120

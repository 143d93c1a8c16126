"""The subscriber pages as a visitor sees them: served by the real ``digest serve`` and laid out by
Debian's headless Chromium at 375 px, light and dark."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from digest.tokens import Signer
from tests.browser import measure
from tests.test_web import SECRET, Served, serve  # noqa: F401 - the fixture

# As in tests/browser.py: the page goes in an iframe of the wanted width, the parent reports
# what it measured through its title.
WRAPPER = """<!DOCTYPE html><html><head><title>pending</title></head><body style="margin:0">
<iframe id="frame" width="375" height="900" style="border:0" srcdoc="{srcdoc}"></iframe>
<script>
document.getElementById('frame').onload = () => {{
  const d = document.getElementById('frame').contentDocument;
  const buttons = [...d.querySelectorAll('button')].map(b => b.getBoundingClientRect());
  document.title = JSON.stringify({{
    scroll: d.documentElement.scrollWidth,
    client: d.documentElement.clientWidth,
    background: getComputedStyle(d.body).backgroundColor,
    text: getComputedStyle(d.body).color,
    buttons: buttons.map(r => [Math.round(r.width), Math.round(r.height), Math.round(r.right)]),
  }});
}};
</script></body></html>"""


def layout(page: str, tmp_path: Path, name: str, dark: bool) -> dict[str, object]:
    return measure(WRAPPER, page, tmp_path / f"{name}-{dark}.html", dark=dark)


def test_every_page_fits_375_px_in_light_and_dark(serve: Callable[..., Served], tmp_path: Path) -> None:
    served = serve()
    served.cli("subscribers", "add", "a-rather-long-address.for.testing@subdomain.example.org", "--cadence", "weekly",
               "--weekday", "friday", "--category", "cs.CL", "--category", "cond-mat.stat-mech")
    signer = Signer([SECRET.encode()])
    pages = {
        "subscribe": httpx.get(f"{served.base}/subscribe").text,
        "preferences": httpx.get(f"{served.base}/preferences?t={signer.subscriber_token('preferences', 1, 1)}").text,
        "unsubscribe": httpx.get(f"{served.base}/unsubscribe?t={signer.subscriber_token('unsubscribe', 1, 1)}").text,
        "refused": httpx.get(f"{served.base}/unsubscribe?t={'A' * 48}").text,
    }
    assert "Your digest" in pages["preferences"] and "This link does not work" in pages["refused"]
    # the preferences page offers topics, categories and the cadence with its weekday, as stored
    assert '<input type="radio" name="cadence" value="weekly" checked>' in pages["preferences"]
    assert '<option value="friday" selected>' in pages["preferences"]
    assert 'name="categories" value="cs.CL cond-mat.stat-mech"' in pages["preferences"]
    for name, page in pages.items():
        light, dark = layout(page, tmp_path, name, False), layout(page, tmp_path, name, True)
        for seen in (light, dark):
            assert seen["scroll"] == seen["client"] <= 375, (name, seen)  # nothing wider than the screen
            for width, height, right in seen["buttons"]:  # type: ignore[attr-defined]
                assert height >= 44 and right <= 375, (name, seen)  # big enough to tap, on screen
        assert light["background"] == "rgb(255, 255, 255)" and dark["background"] == "rgb(17, 24, 39)", name
        assert dark["text"] == "rgb(229, 231, 235)", name  # light text on the dark background

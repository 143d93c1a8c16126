"""Feed text is data everywhere it goes: one set of hostile entries through a whole run.

Titles and abstracts with HTML, script and ``javascript:`` links, Markdown and Jinja syntax, CR/LF,
bidi controls and zero-width characters, 4-byte emoji, a 100 kB title and a 10,000-author list go
through a real run (a feed on 127.0.0.1, email to a real SMTP server) and ``digest site``; every
output is checked: the HTML and text email, the subject, the Markdown page, the archive's HTML and
text pages, the feed, the site and the ``--json`` summary.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from xml.sax.saxutils import escape

from digest.identity import paper_keys
from digest.sources.text import visible
from tests.conftest import StoreBackend, run_digest
from tests.httpserver import Reply, TestServer
from tests.smtp_sink import Sink, smtp_server

HIDDEN = "\u202e\u202a\u202b\u202c\u202d\u2066\u2067\u2068\u2069\u200e\u200f\u061c\u200b\u2060\ufeff\u00ad\U000e0041"


def test_bidi_controls_and_invisible_characters_are_removed_and_identity_keys_do_not_change() -> None:
    title = "Invoice\u200b \u202egnp.exe\u202c and \u2066isolated\u2069 \U000e0068\U000e0069"
    assert visible(title) == "Invoice gnp.exe and isolated "
    assert paper_keys(arxiv_id=None, doi=None, title=title) == paper_keys(arxiv_id=None, doi=None, title=visible(title))
    family, persian = "family \U0001f468\u200d\U0001f469\u200d\U0001f467", "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"
    assert visible(family) == family and visible(persian) == persian  # joiners that shape emoji and words stay
    assert visible("A NUL\x00 title") == visible("A NUL\x00 title \u00e9")[:-2] == "A NUL title"  # (PostgreSQL's text cannot hold one)
    assert visible("a\u200db\u200c c") == "ab c"


def rss_item(title: str, link: str, description: str, authors: list[str]) -> str:
    creators = "".join(f"<dc:creator>{escape(name)}</dc:creator>" for name in authors)
    return f"<item><title>{escape(title)}</title><link>{escape(link)}</link><description>{escape(description)}</description>{creators}</item>"


HOSTILE = [
    ("<script>alert('title')</script> Scripted Sparse Attention", "javascript:alert(1)",
     "Abstract with `code`, *stars*, [a link](javascript:alert(2)) and {{ 1234*1000 }} {% if true %}jinja{% endif %}.",
     ["Mallory <script>x</script>"]),
    ("Header\r\nBcc: victim@example.org injection {{ 1234*1000 }}", "https://arxiv.org/abs/2501.00001",
     "Line one\r\nline two # not a heading\n\n---\n\n> not a quote", ["Eve"]),
    ("Invoice \u202egnp.exe\u202c via zero\u200bwidth\u2060 joiners \u2066isolated\u2069", "https://arxiv.org/abs/2501.00002",
     "Hidden\u200b text \u202ereversed\u202c here.", ["Tr\u200budy \u202eRLO\u202c"]),
    ("Emoji \U0001f9ea\U0001f680 models for \U0001d54f-transforms", "https://arxiv.org/abs/2501.00003",
     "Four-byte characters \U0001f9ea\U0001f680 \U0001d54f survive.", ["\U0001f600 Smiley"]),
    ("Very long title " + "word " * 20_000, "https://arxiv.org/abs/2501.00004", "A title of 100 kB.", ["Long"]),
    ("A paper by ten thousand authors", "https://arxiv.org/abs/2501.00005", "Many hands.",
     [f"Author Number{n}" for n in range(10_000)]),
]

LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE rss [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol9 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
]>
<rss version="2.0"><channel><title>laughs</title>
<item><title>&lol9;</title><link>https://example.org/a</link><description>&lol9; more</description></item>
<item><title>A Real Paper Beside the Laughs</title><link>https://arxiv.org/abs/2501.00009</link><description>Plain.</description></item>
</channel></rss>
"""


def test_hostile_entries_through_a_whole_run_are_data_in_every_output(
    write_config: Callable[..., Path], http_server: TestServer, tmp_path: Path, backend: StoreBackend
) -> None:
    feed = ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">'
            "<channel><title>hostile</title>" + "".join(rss_item(*item) for item in HOSTILE) + "</channel></rss>")
    hostile = http_server.add("/hostile", Reply(body=feed.encode("utf-8"), headers={"Content-Type": "application/rss+xml"}))
    laughs = http_server.add("/laughs", Reply(body=LAUGHS, headers={"Content-Type": "application/rss+xml"}))
    sink = Sink()
    with smtp_server(sink) as port:
        write_config(
            f'[[sources]]\nname = "hostile"\nkind = "feed"\nurl = "{hostile}"\n\n'
            f'[[sources]]\nname = "laughs"\nkind = "feed"\nurl = "{laughs}"\n\n'
            '[archive]\nsite_url = "https://papers.example.org"\n\n'
            f'[email]\nenabled = true\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
            'from = "Paper digest <digest@example.org>"\n\n[[email.recipients]]\naddress = "reader@example.org"\n\n'
            + backend.toml,
            inbox=False,
        )
        result = run_digest(tmp_path, "run", "--date", "2025-03-14", "--json")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "warning: source 'laughs': laughs: entry '&lol9;' skipped: it uses the entity &lol9; that the feed declares "
        "in its DOCTYPE, and digest does not expand entities a feed declares"
    ]
    summary = json.loads(result.stdout)
    papers = {p["title"]: p for g in summary["groups"] for p in g["papers"]}
    assert len(papers) == len(HOSTILE) + 1 and not any("&lol" in title for title in papers)
    assert "Invoice gnp.exe via zerowidth joiners isolated" in papers
    assert "Emoji \U0001f9ea\U0001f680 models for \U0001d54f-transforms" in papers
    assert len(papers["A paper by ten thousand authors"]["authors"]) == 10_000
    assert any(len(title) > 100_000 for title in papers)
    assert run_digest(tmp_path, "site").returncode == 0

    (received,) = sink.messages
    message = received.message
    html_part, text_part = _parts(message)
    archive, site = tmp_path / "archive", tmp_path / "site"
    outputs = {
        "json": result.stdout,
        "subject": str(message["Subject"]),
        "email html": html_part,
        "email text": text_part,
        **{str(p.relative_to(tmp_path)): p.read_text(encoding="utf-8") for p in sorted(archive.rglob("*")) if p.is_file()},
        **{str(p.relative_to(tmp_path)): p.read_text(encoding="utf-8") for p in sorted(site.rglob("*.html"))},
    }
    assert "archive/2025/03/2025-03-14.md" in outputs and "archive/feed.xml" in outputs and "site/index.html" in outputs
    for name, text in outputs.items():
        assert not set(HIDDEN) & set(text), name  # no bidi control or invisible character anywhere
        if name == "email html" or name.endswith((".html", ".md", ".xml")):  # markup: feed text is escaped in it
            assert "<script>alert" not in text and "<script>x" not in text, name
        assert not re.search(r"""(?:href|src)\s*=\s*["']?\s*javascript:""", text, re.I), name
        assert "1234000" not in text, name  # Jinja syntax in feed text is never evaluated
        assert "\nBcc: victim" not in text and "\r" not in text.replace("\r\n", "\n"), name  # no line of its own
    shown = [outputs[n] for n in ("email text", "email html", "archive/2025/03/2025-03-14.md", "archive/2025/03/2025-03-14.txt")]
    for text in shown:
        assert "gnp.exe via zero" in text  # the neutralised title, the same in each
        assert "\U0001f9ea\U0001f680" in text or "&#129514;&#128640;" in text
    assert "{{ 1234*1000 }}" in outputs["email text"]
    for name in ("email html", "archive/2025/03/2025-03-14.html", "site/2025/03/2025-03-14.html"):
        assert "&lt;script&gt;alert(" in outputs[name] and "&lt;/script&gt; Scripted" in outputs[name], name  # shown as text
    assert "Author Number3, et al." not in outputs["email text"] and "et al." in outputs["email text"]
    assert "Author Number9999" not in outputs["email text"] and "Author Number9999" in outputs["archive/2025/03/2025-03-14.md"]
    day_page = outputs["archive/2025/03/2025-03-14.md"]
    assert not re.search(r"^#+ *not a heading", day_page, re.M) and not re.search(r"^> *not a quote", day_page, re.M)


def _parts(message: EmailMessage) -> tuple[str, str]:
    """The HTML and the text part of a multipart/alternative message."""
    html = text = ""
    for part in message.walk():
        if part.get_content_type() == "text/html":
            html = part.get_content()
        elif part.get_content_type() == "text/plain":
            text = part.get_content()
    return html, text

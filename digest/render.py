"""Render a Digest as an HTML email (CSS inlined, by a template inlined once: digest.inline), a
plain-text part and Markdown.

Templates are found by name: the user's folder (``[render] templates``) first, then the built-in
``templates/``.  Every string from a feed is data: HTML is autoescaped, Markdown goes through the
``md`` filter, and anything that becomes a single line (titles, headers) through ``oneline``.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus


from digest.categories import shown as shown_tags
from digest.errors import TemplateError
from digest.fileio import user_cache_dir
from digest.inline import inline_styles
from digest.models import Digest, DigestCounts, MachineSummary, Paper, TopicGroup

if TYPE_CHECKING:  # jinja2 is imported when the first template is rendered
    import jinja2

EMAIL_HTML = "email.html.j2"
EMAIL_TEXT = "email.txt.j2"
DIGEST_MD = "digest.md.j2"
INLINED = "inlined:"  # the prefix that names a template with its CSS inlined ahead

_SAFE_URL = re.compile(r"^https?://[^\s<>\"'`]+$")
# Characters CommonMark (and Python-Markdown) may read as markup anywhere in a line.  With
# brackets escaped no link can form, so parentheses and "!" stay as they are (readable source).
_MD_INLINE = re.compile(r"([\\`*_\[\]{}])")
_ENTITY = re.compile(r"&(?=#?[A-Za-z0-9]+;)")
# Markup that only counts at the start of a line: headings, quotes, lists, rules, tables.
_MD_LINE_START = re.compile(r"^(\s*)([#>+=|-]|\d+(?=[.)]))", re.MULTILINE)
_NOT_ANCHOR = re.compile(r"[^a-z0-9]+")
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_BACKTICKS = re.compile(r"`+")


def builtin_templates_dir() -> Path:
    """The built-in templates (installed package data, else the source checkout's ``templates/``)."""
    here = Path(__file__).parent
    installed = here / "_data" / "templates"
    return installed if installed.is_dir() else here.parent / "templates"


def oneline(text: str | None) -> str:
    """Collapse every run of whitespace, newlines included, into one space."""
    return " ".join(text.split()) if text else ""  # str.split() splits on what ``\s`` matches


def escape_markdown(text: str | None) -> str:
    """Make feed text literal in Markdown: ``256*256`` stays ``256*256``, ``<RET>`` stays ``<RET>``."""
    text = _ENTITY.sub("&amp;", text or "").replace("<", "&lt;")
    text = _MD_INLINE.sub(r"\\\1", text)
    if "\n" not in text:  # one line (the usual case): only its start can be line-start markup
        found = _MD_LINE_START.match(text)
        return text if found is None else _escape_line_start(found) + text[found.end() :]
    return _MD_LINE_START.sub(_escape_line_start, text)


def _escape_line_start(found: re.Match[str]) -> str:
    return f"{found[1]}\\{found[2]}" if not found[2][0].isdigit() else f"{found[1]}{found[2]}\\"


def code_span(text: str | None) -> str:
    """``text`` on one line as a Markdown code span: literal whatever it holds (a tag such as ``cs.LG``).

    The fence is one backtick longer than the longest run inside, padded with a space when the
    text starts or ends with a backtick (CommonMark's rule); an empty text is an empty string.
    """
    text = oneline(text)
    if not text:
        return ""
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def excerpt(text: str | None, limit: int = 320) -> str:
    """The first ``limit`` characters of ``text``, cut at a word boundary, with an ellipsis."""
    text = oneline(text)
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(",;:-")
    return cut + "\u2026"


def paper_url(paper: Paper) -> str:
    """Where a paper's title links: its own page, else an arXiv title search."""
    if paper.url and _SAFE_URL.match(paper.url):
        return paper.url
    if paper.arxiv_id:
        return f"https://arxiv.org/abs/{paper.arxiv_id}"
    return "https://arxiv.org/search/?searchtype=title&query=" + quote_plus(oneline(paper.title))


def anchor(paper: Paper) -> str:
    """A stable HTML/Markdown anchor for a paper, made from its key (never raw feed text)."""
    return anchor_for_key(paper.key)


def anchor_for_key(key: str) -> str:
    """The anchor of the paper whose strongest identity key is ``key`` (see :func:`anchor`)."""
    return "p-" + _NOT_ANCHOR.sub("-", key.lower()).strip("-")[:80]


def yaml_string(text: str | None) -> str:
    """``text`` on one line as a double-quoted YAML scalar (JSON's escapes are YAML's)."""
    return json.dumps(oneline(text), ensure_ascii=False)


def long_date(date: dt.date) -> str:
    """A date as archive pages name it: "Tuesday 6 May 2025"."""
    return f"{date:%A} {date.day} {date:%B %Y}"


def xml_text(text: str | None) -> str:
    """``text`` without the control characters XML 1.0 forbids (autoescaping does the rest)."""
    return _NOT_XML.sub("", text or "")


def day_path(date: dt.date, suffix: str) -> str:
    """The archive path of a day's page: ``YYYY/MM/YYYY-MM-DD<suffix>``."""
    return f"{date:%Y}/{date:%m}/{date.isoformat()}{suffix}"


@dataclass(frozen=True, slots=True)
class RenderOptions:
    """What the templates need beyond the digest."""

    title: str = "Daily papers digest"
    site_url: str = ""
    max_per_topic: int = 10
    excerpt_chars: int = 320
    generated_at: dt.datetime | None = None
    unsubscribe: str = ""  # the email footer's unsubscribe link: a mailto, or the reader's tokenised page ("" for the archive)
    preferences: str = ""  # the email footer's link to the reader's preferences page ("" for none)


@dataclass(frozen=True, slots=True)
class Rendered:
    """A digest rendered in every format."""

    html: str
    text: str
    markdown: str


class Renderer:
    """The Jinja environment and the three renderings of a digest."""

    def __init__(self, user_templates: Path | None = None) -> None:
        self.user_templates = user_templates
        self._env: jinja2.Environment | None = None
        # Each HTML template as inlined ahead, or None when inlined per rendering: looked up once
        # for the renderer's life (a run), as Jinja does not remember a template it could not find.
        self._inlined: dict[str, jinja2.Template | None] = {}

    @property
    def env(self) -> jinja2.Environment:
        """The Jinja environment, made on first use (a run with nothing to render never imports jinja2)."""
        if self._env is None:
            self._env = _environment(self.user_templates)
        return self._env

    def render_template(self, name: str, **context: Any) -> str:
        """Render one template by name; a broken template is a TemplateError naming it."""
        with _reported(name):
            return self.env.get_template(name).render(**context)

    def render_inlined(self, name: str, **context: Any) -> str:
        """Render an HTML template with its CSS inlined: through the template inlined ahead
        (``inlined:NAME``, see :mod:`digest.inline`), else by premailer on this rendering."""
        import jinja2

        if name not in self._inlined:
            try:
                self._inlined[name] = self.env.get_template(INLINED + name)
            except jinja2.TemplateError:  # inlined per rendering (a broken template is reported by name there)
                self._inlined[name] = None
        template = self._inlined[name]
        if template is None:
            return inline_styles(self.render_template(name, **context))
        with _reported(name):
            return template.render(**context)

    def render(
        self, digest: Digest, options: RenderOptions, *, inline_css: bool = True, markdown: bool = True
    ) -> Rendered:
        """The digest as HTML email, plain text and Markdown (``""`` with ``markdown=False``: email only).

        The HTML has its CSS inlined for mail clients unless ``inline_css`` is False (a page for a
        browser keeps its ``<style>`` block).
        """
        context = template_context(digest, options)
        html = self.render_inlined(EMAIL_HTML, **context) if inline_css else self.render_template(EMAIL_HTML, **context)
        return Rendered(
            html=html,
            text=self.render_template(EMAIL_TEXT, **context),
            markdown=self.render_template(DIGEST_MD, **context) if markdown else "",
        )

    def stream_markdown(self, digest: Digest, options: RenderOptions) -> Iterator[str]:
        """The Markdown page piece by piece, to write a big day without holding it whole."""
        with _reported(DIGEST_MD):
            yield from self.env.get_template(DIGEST_MD).generate(**template_context(digest, options))


def template_context(digest: Digest, options: RenderOptions) -> dict[str, Any]:
    """The variables every template sees."""
    site = options.site_url.rstrip("/")
    day_page = f"{site}/{day_path(digest.date, '.html')}" if site else f"{digest.date.isoformat()}.md"
    return {
        "digest": digest,
        "groups": digest.groups,
        "date": digest.date,
        "title": options.title,
        "subject": subject_line(digest, options.title),
        "preheader": preheader(digest),
        "counts": digest.counts,
        "size": digest.size,
        "max_per_topic": options.max_per_topic,
        "excerpt_chars": options.excerpt_chars,
        "day_page": day_page,
        "site_url": site,
        "generated_at": options.generated_at,
        "placements": digest.placements,
        "unsubscribe": options.unsubscribe,
        "preferences": options.preferences,
    }


@contextmanager
def _reported(name: str) -> Iterator[None]:
    """Jinja's errors as one TemplateError naming the template (and the line, for syntax errors)."""
    import jinja2

    try:
        yield
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"{exc.filename or name}:{exc.lineno}: template syntax error: {exc.message}") from None
    except jinja2.TemplateError as exc:
        raise TemplateError(f"{name}: template error: {exc}") from None


def _environment(user_templates: Path | None) -> jinja2.Environment:
    """Templates by name: the user's folder first, then the built-in ones; autoescaped HTML/XML."""
    import jinja2

    loaders: list[jinja2.BaseLoader] = []
    if user_templates is not None:
        loaders.append(jinja2.FileSystemLoader(user_templates))
    loaders.append(jinja2.FileSystemLoader(builtin_templates_dir()))
    by_name = jinja2.ChoiceLoader(loaders)
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader([_inlined_loader(by_name), by_name]),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2", "xml", "xml.j2"), default=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        bytecode_cache=_bytecode_cache(),
    )
    env.filters.update(
        md=escape_markdown, oneline=oneline, excerpt=excerpt, paper_url=paper_url, anchor=anchor, xml_text=xml_text,
        yaml_str=yaml_string, long_date=long_date, wordwrap=_remembered_wordwrap(env), md_code=code_span, tags=shown_tags,
    )
    return env


def _remembered_wordwrap(env: jinja2.Environment) -> Callable[..., str]:
    """Jinja's ``wordwrap`` filter, remembering its recent results.

    textwrap costs ~0.12 ms an abstract, and a run wraps the same excerpts again and again: in
    the day's text page, in the email's text part, and once more for each recipient's topics.
    """
    import jinja2

    original = env.filters["wordwrap"]
    remembered = functools.lru_cache(maxsize=4096)(functools.partial(original, env))

    @jinja2.pass_environment
    def wordwrap(
        environment: jinja2.Environment,
        text: Any,
        width: int = 79,
        break_long_words: bool = True,
        wrapstring: str | None = None,
        break_on_hyphens: bool = True,
    ) -> Any:
        # Plain strings only: Markup compares equal to its str but wraps to Markup (and a
        # Markup wrapstring keeps the result safe), so those go to the filter itself.
        if type(text) is str and (wrapstring is None or type(wrapstring) is str):
            return remembered(text, width, break_long_words, wrapstring, break_on_hyphens)
        return original(environment, text, width, break_long_words, wrapstring, break_on_hyphens)

    return wordwrap


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiled templates kept in ``$XDG_CACHE_HOME/digest/templates`` (compiling costs ~65 ms a run).

    Entries are keyed by template file and checked against its source, so an edited template is
    compiled again.  A cache that cannot be created, read or written is simply not used.
    """
    import jinja2

    class QuietCache(jinja2.FileSystemBytecodeCache):
        def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
            try:
                super().load_bytecode(bucket)
            except (OSError, EOFError, ValueError):
                bucket.reset()

        def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
            try:
                super().dump_bytecode(bucket)
            except OSError:
                pass

    folder = user_cache_dir("templates")
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError:
        return None
    return QuietCache(str(folder))


def subject_line(digest: Digest, title: str) -> str:
    """The email subject: the title, the date and the count, on one line."""
    count = digest.size
    noun = "paper" if count == 1 else "papers"
    return oneline(f"{title} \u2014 {digest.date:%a %d %b %Y}: {count} new {noun}")


def preheader(digest: Digest) -> str:
    """The inbox preview line: the biggest topics and their counts."""
    parts = [f"{g.title} ({len(g.papers)})" for g in sorted(digest.groups, key=lambda g: -len(g.papers))[:4]]
    return oneline(", ".join(parts))


def _inlined_loader(by_name: jinja2.BaseLoader) -> jinja2.BaseLoader:
    """Serves ``inlined:NAME``: the template NAME with its CSS inlined ahead (:mod:`digest.inline`);
    not found when NAME has to be inlined per rendering."""
    import jinja2

    from digest.inline import cached_inlined_source

    class InlinedLoader(jinja2.BaseLoader):
        def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str | None, Any]:
            if not template.startswith(INLINED):
                raise jinja2.TemplateNotFound(template)
            name = template[len(INLINED) :]
            source, _, uptodate = by_name.get_source(environment, name)
            inlined = cached_inlined_source(source, lambda candidate: renders_alike(environment, name, candidate))
            if inlined is None:
                raise jinja2.TemplateNotFound(template)
            return inlined, None, uptodate

    return InlinedLoader()


# Probe contexts for HTML templates other than the email's (``register_probes``), by template name.
_PROBES: dict[str, Callable[[], list[dict[str, Any]]]] = {}


def register_probes(name: str, make: Callable[[], list[dict[str, Any]]]) -> None:
    """Give an HTML template its own probe contexts (taking every branch of it), so that it can be
    inlined ahead as the email template is (see :func:`renders_alike`)."""
    _PROBES[name] = make


def renders_alike(env: jinja2.Environment, name: str, inlined: str) -> bool:
    """True when the template source ``inlined`` renders every probe digest (or the contexts
    registered for ``name``) as the HTML premailer makes of template ``name``'s rendering (the
    check an inlined template must pass to be used)."""
    import jinja2

    from digest.inline import same_html

    try:
        ahead = env.template_class.from_code(env, env.compile(inlined, name=INLINED + name), env.make_globals(None))
        raw = env.get_template(name)
        contexts = _PROBES[name]() if name in _PROBES else [template_context(d, o) for d, o in probe_digests()]
        return all(same_html(inline_styles(raw.render(**context)), ahead.render(**context)) for context in contexts)
    except jinja2.TemplateError:
        return False


def probe_digests() -> list[tuple[Digest, RenderOptions]]:
    """Digests that take every branch of the email template: a topic over ``max_per_topic``, papers
    with and without authors (over four and fewer), upvotes, abstract, categories (over three and
    fewer), a machine summary; with and without a site and an unsubscribe link; and markup-like feed text."""
    papers = (
        Paper(
            title="<b>Probe</b> & 'quotes' \"here\" <RET>",
            abstract="An abstract that is long enough to be cut. " * 12,
            url="https://arxiv.org/abs/2401.00001",
            arxiv_id="2401.00001",
            authors=("Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra", "Barbara Liskov"),
            upvotes=3,
            categories=("cs.LG", "<b>cs.CL</b>", "stat.ML", "cs.AI", "math.OC"),
            summary=MachineSummary("A <b>probe</b> & its 'summary'.", "probe-model <x>"),
        ),
        Paper(
            title="Second probe", abstract="Short <i>abstract</i>.", authors=("Ada Lovelace", "Alan Turing"), categories=("hep-ph",)
        ),
        Paper(title="Third probe", upvotes=0),
        Paper(title="Fourth probe", abstract="Only an abstract.", arxiv_id="2401.00004"),
    )
    digest = Digest(
        dt.date(2025, 3, 14),
        (TopicGroup("inference", "Inference & serving", papers[:3]), TopicGroup("other", "Other", papers[3:])),
        DigestCounts(entries=9, new=4, already_seen=3, duplicates=2),
    )
    single = Digest(dt.date(2025, 3, 15), (TopicGroup("other", "Other", papers[1:2]),), DigestCounts(1, 1, 0, 0))
    return [
        (digest, RenderOptions(site_url="https://papers.example.org", max_per_topic=2, unsubscribe="mailto:off@example.org")),
        (single, RenderOptions()),
        (single, RenderOptions(site_url="https://papers.example.org", unsubscribe="https://papers.example.org/unsubscribe?t=x",
                               preferences="https://papers.example.org/preferences?t=x")),
    ]

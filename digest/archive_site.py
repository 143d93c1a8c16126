"""``digest site``: the archive as a static HTML site, built incrementally.

Layout of the out folder (relative links only, so it works from disk and from any host)::

    index.html                  every day, newest first, grouped by month, and the topics
    YYYY/MM/YYYY-MM-DD.html     a day page: the archive's Markdown through python-markdown
    topics/<code>.html          a topic's landing page: its months, newest first, with their counts
    topics/<code>/YYYY-MM.html  every paper filed under the topic that month, newest day first
    feed.xml                    the archive's Atom feed, copied
    search/index.json           the search shards, newest first; search/YYYY-MM.json: [title, date, anchor]
    assets/style.css, assets/search.js
    .digest-site.json           the manifest: each page's key

Every page has a *key*: a hash of everything it is made from (its Markdown source, or the store
rows it lists; the templates; the options).  A page whose key is in the manifest is not rendered
again, so after one new day only that day, its neighbour, the index, the landing pages and the
month pages of the topics it touches, one search shard and the feed are.  Topic pages and the
index are rendered from light store rows (no abstracts), never parsed back from Markdown.  A day
page whose Markdown did not change but whose neighbours did is re-wrapped around its previous
body instead of converted again, and a month page keeps its unchanged day sections (each marked
with its own key), so after a new day only that day's papers are read and rendered.  Only what
the manifest vouches for is reused: a file as the last build wrote it (its size and time are
recorded) and whose links passed the check.

After the build, every internal ``href``/``src`` of the new parts of the pages rendered (not a
reused body or section: its links were checked when it was made) is checked against the files of
the site, and its fragment against the ids of the page it names (read from that page as it is on
disk, once, only for pages linked to with a fragment); a broken one raises :class:`SiteError` (the
page stays out of the manifest, so the next build renders and checks it again, whole).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import json
import posixpath
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields, is_dataclass, replace
from itertools import groupby
from operator import attrgetter
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from markupsafe import Markup

from digest import faults
from digest.config import Config
from digest.deliver.archive import (
    ArchiveDay,
    ArchiveIndex,
    ArchiveTopic,
    TopicMonth,
    archive_context,
    load_archive_index,
    month_key,
    month_papers,
    papers_by_day,
    render_options,
    sync_archive,
    topic_month_path,
    topic_path,
)
from digest.deliver.weeks import iso_week, monday_of, week_path
from digest.fileio import AtomicBatch, write_atomic
from digest.errors import OutputError, SiteError
from digest.render import Renderer, anchor_for_key, day_path
from digest.store import SeenStore, open_store
from digest.topics import Taxonomy, configured_taxonomy

MANIFEST = ".digest-site.json"
MANIFEST_VERSION = 2
# Version 1 also listed each page's ids (2.7 MB to read and write on every build of a year's site);
# its keys are version 2's, so a version 1 manifest is read without them.
READABLE_MANIFESTS = (1, 2)
PAGES_PER_BATCH = 256  # pages written, fsynced and renamed together
LAYOUT = "site/base.html.j2"
DAY_HTML = "site/day.html.j2"
WEEK_HTML = "site/week.html.j2"
_LOCAL_MD_LINK = re.compile(r'href="((?!https?:|mailto:)[^"#]+)\.md(#[^"]*)?"')  # a link to a page of the archive
INDEX_HTML = "site/index.html.j2"
TOPIC_HTML = "site/topic.html.j2"
TOPIC_MONTH_HTML = "site/topic-month.html.j2"
TOPIC_DAY_HTML = "site/topic-day.html.j2"
ASSETS = ("style.css", "search.js")
BODY_START = "<!-- digest:body -->"
BODY_END = "<!-- /digest:body -->"
# A month page's day sections, each marked with its key so that the next build can reuse it.
SECTIONS = "<!-- digest:sections -->"
SECTION_START = "<!-- digest:day "
SECTION_END = "<!-- /digest:day -->\n"

# What our templates and python-markdown write: ` href="..."`, ` src="..."`, ` id="..."` (literal
# prefixes keep the scan fast on large pages).
_LINK = re.compile(r' (?:href|src)="([^"]*)"')
_ID = re.compile(r' id="([^"]*)"')
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_ENTRY = re.compile(r"<entry[ >].*?</entry>", re.DOTALL)  # an Atom entry (feed text in it is escaped)


@dataclass(frozen=True, slots=True)
class SiteReport:
    """What a build did."""

    out_dir: Path
    pages: int
    rendered: tuple[str, ...]
    removed: tuple[str, ...]
    links: int
    archive_days_written: int = 0

    @property
    def index(self) -> Path:
        """The site's front page."""
        return self.out_dir / "index.html"


@dataclass(frozen=True, slots=True)
class Rendering:
    """A rendered page, and the part of it that is new (what the link check reads)."""

    text: str
    fresh: str


@dataclass(frozen=True, slots=True)
class Page:
    """One output file: where it goes, the key of its inputs and how to render it."""

    path: str
    key: str
    render: Callable[[], Rendering]
    extra: dict[str, Any] = field(default_factory=dict)
    reused: bool = False  # its next rendering may reuse this one: the manifest records the file's size and time


def whole(text: str) -> Rendering:
    """A page rendered from scratch: all of it is new."""
    return Rendering(text, text)


def build_site(config: Config, *, out_dir: Path | None = None, rebuild: bool = False) -> SiteReport:
    """Bring ``archive/`` in line with the store, then build the HTML site (only what changed).

    ``rebuild`` recreates every archive file from the store alone and renders every page again.
    """
    out = out_dir or config.archive.site
    taxonomy = configured_taxonomy(config.topics.file)
    renderer = Renderer(config.render.templates)
    with open_store(config.store, readonly=True) as store:
        try:
            written = sync_archive(store, config, taxonomy, renderer, rebuild=rebuild)
            report = SiteBuilder(store, config, taxonomy, renderer, out).build(rebuild=rebuild)
        except OSError as exc:  # a full disk, a read-only folder: every file is whole, old or new
            raise OutputError(
                f"{exc.filename or out}: cannot write: {exc.strerror or exc}",
                hint="free some space (or fix the folder's permissions) and run `digest site` again: it writes what is missing",
            ) from exc
    return replace(report, archive_days_written=written)


def page_key(*parts: object) -> str:
    """A stable hash of a page's inputs (their ``repr``: tuples, dates, strings; see :func:`plain`)."""
    return hashlib.sha256(repr(parts).encode("utf-8")).hexdigest()


_FIELDS: dict[type, Callable[[Any], tuple[Any, ...]] | None] = {}  # a dataclass's field getter; None for other types


def plain(value: Any) -> Any:
    """A dataclass as the tuple of its class name and field values, recursively (and a tuple of
    dataclasses as a tuple of those): the same information, but its ``repr`` is C code."""
    cls = type(value)
    getter = _field_getter(cls)
    if getter is not None:
        return (cls.__name__, *(plain(item) for item in getter(value)))
    if cls is tuple and value and _field_getter(type(value[0])) is not None:
        return tuple(plain(item) for item in value)
    return value


def _field_getter(cls: type) -> Callable[[Any], tuple[Any, ...]] | None:
    """The values of a dataclass's fields, in order, as one call (None for other types)."""
    try:
        return _FIELDS[cls]
    except KeyError:
        pass
    getter: Callable[[Any], tuple[Any, ...]] | None = None
    if is_dataclass(cls):
        names = [f.name for f in fields(cls)]
        getter = attrgetter(*names) if len(names) > 1 else (lambda value: tuple(getattr(value, name) for name in names))
    _FIELDS[cls] = getter
    return getter


def root_of(path: str) -> str:
    """The relative prefix from a page back to the site's root ("" or "../../")."""
    return "../" * path.count("/")


class SiteBuilder:
    """Plans the pages of the site from the store and the archive, renders those whose key changed."""

    def __init__(self, store: SeenStore, config: Config, taxonomy: Taxonomy, renderer: Renderer, out: Path) -> None:
        self.store = store
        self.config = config
        self.renderer = renderer
        self.out = out
        self.options = render_options(config)
        self.index: ArchiveIndex = load_archive_index(store, taxonomy)
        self.theme = page_key(self.options, [self._source(name) for name in (LAYOUT, DAY_HTML, INDEX_HTML, TOPIC_HTML, TOPIC_MONTH_HTML, TOPIC_DAY_HTML)])
        self._markdown: Any = None
        self._shared = archive_context(self.index, self.options)
        self._dates = {digest_id: day.date for day in self.index.days for digest_id in day.digest_ids}

    # -- the build -----------------------------------------------------------------------------

    def build(self, *, rebuild: bool = False) -> SiteReport:
        """Render the pages whose key changed, drop pages that are gone, check links, save the manifest."""
        old = {} if rebuild else self._read_manifest()
        manifest: dict[str, dict[str, Any]] = {}
        rendered: list[tuple[str, str]] = []
        pages = self.pages(old)
        # Written in batches (fsynced together, then renamed): a batch's temp files are what the
        # disk holds twice, so a whole rebuild does not double the site's size at once.
        for first in range(0, len(pages), PAGES_PER_BATCH):
            reused = []
            with AtomicBatch() as files:
                for page in pages[first : first + PAGES_PER_BATCH]:
                    entry = old.get(page.path)
                    if entry is not None and entry.get("key") == page.key and (self.out / page.path).is_file():
                        manifest[page.path] = entry
                        continue
                    rendering = page.render()
                    files.write(self.out / page.path, rendering.text)
                    manifest[page.path] = {"key": page.key, **page.extra}
                    if page.reused:
                        reused.append(page.path)
                    rendered.append((page.path, rendering.fresh))
            for path in reused:  # (the mark of the file as renamed into place)
                manifest[path]["written"] = file_mark(self.out / path)
            faults.crash_point("site-batch")
        removed = tuple(sorted(set(old) - set(manifest)))
        for path in removed:
            (self.out / path).unlink(missing_ok=True)
        checked, broken = check_links(self.out, rendered, manifest)
        for path in {page for page, _ in broken}:
            manifest.pop(path, None)
        write_atomic(self.out / MANIFEST, json.dumps({"version": MANIFEST_VERSION, "pages": manifest}, sort_keys=True))
        if broken:
            listed = "\n".join(f"{page}: broken link {link}" for page, link in broken[:20])
            more = f"\n… and {len(broken) - 20} more" if len(broken) > 20 else ""
            raise SiteError(f"{self.out}: {len(broken)} broken internal link(s)\n{listed}{more}")
        return SiteReport(self.out, len(manifest), tuple(path for path, _ in rendered), removed, checked)

    def _read_manifest(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads((self.out / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("version") not in READABLE_MANIFESTS:
            return {}
        pages = data.get("pages")
        if not isinstance(pages, dict):
            return {}
        for entry in pages.values():
            if isinstance(entry, dict):
                entry.pop("ids", None)
        return pages

    # -- the plan ------------------------------------------------------------------------------

    def pages(self, old: dict[str, dict[str, Any]]) -> list[Page]:
        """Every page of the site with its key; nothing is rendered until ``render`` is called.

        Keys hash the pages' inputs as plain tuples (:func:`plain`), each made once: the repr of a
        year of days and months as dataclasses cost more than the rest of the plan.
        """
        days = self.index.days
        plain_days = [plain(day) for day in days]
        plain_topics = {topic.code: plain(topic) for topic in self.index.topics}
        pages = [self._asset(name) for name in ASSETS]
        pages.append(self._feed(old.get("feed.xml", {})))
        pages.append(Page("index.html", page_key(self.theme, "index", plain_days, list(plain_topics.values())), self._render_index))
        for topic in self.index.topics:
            pages.append(self._topic(topic, plain_topics[topic.code]))
            for month in topic.months:
                pages.append(self._topic_month(topic, month, old.get(topic_month_path(topic.code, month.month, ".html"), {})))
        for i, day in enumerate(days):
            older = days[i + 1].date if i + 1 < len(days) else None
            newer = days[i - 1].date if i > 0 else None
            path = day_path(day.date, ".html")
            pages.append(self._day(path, day, plain_days[i], older, newer, old.get(path, {})))
        for monday in sorted({monday_of(day.date) for day in days}, reverse=True):
            pages.append(self._week(monday))
        pages.extend(self._search(old, plain_days))
        return pages

    def _week(self, monday: dt.date) -> Page:
        """A week page: the archive's Markdown (``weeks/YYYY-Www.md``) as HTML, its links to day pages made .html."""
        path = week_path(monday, ".html")
        source_path = self.config.archive.dir / week_path(monday, ".md")
        source = hashlib.sha256(source_path.read_bytes()).hexdigest() if source_path.is_file() else ""

        def render() -> Rendering:
            text = source_path.read_text(encoding="utf-8") if source_path.is_file() else ""
            body = _LOCAL_MD_LINK.sub(r'href="\1.html\2"', self.markdown_body(text))
            context = self._context(path, f"{self.options.title} — week {iso_week(monday)}")
            return whole(self.renderer.render_template(WEEK_HTML, **context, body=Markup(body)))

        return Page(path, page_key(self.theme, "week", source, self._source(WEEK_HTML)), render)

    def _source(self, name: str) -> str:
        loader = self.renderer.env.loader
        assert loader is not None
        return loader.get_source(self.renderer.env, name)[0]

    def _asset(self, name: str) -> Page:
        text = self._source(f"site/{name}")
        return Page(f"assets/{name}", page_key(text), lambda: whole(text))

    def _feed(self, previous: dict[str, Any]) -> Page:
        """The archive's feed, copied; the link check reads only its entries that the previous copy did not have."""
        data = (self.config.archive.dir / "feed.xml").read_bytes()

        def render() -> Rendering:
            text = data.decode("utf-8")
            before = self._vouched("feed.xml", previous)
            if before is None:
                return whole(text)
            known = set(_ENTRY.findall(before))
            return Rendering(text, _ENTRY.sub(lambda m: "" if m[0] in known else m[0], text))

        return Page("feed.xml", hashlib.sha256(data).hexdigest(), render, reused=True)

    def _vouched(self, path: str, previous: dict[str, Any]) -> str | None:
        """The page as the previous build wrote it, if the manifest vouches for it (written whole, its links
        checked: a page with a broken link is not in the manifest), else None."""
        mark = previous.get("written")
        if mark is None:
            return None
        try:
            target = self.out / path
            if file_mark(target) != mark:
                return None
            return target.read_text(encoding="utf-8")
        except OSError:
            return None

    def _context(self, path: str, page_title: str) -> dict[str, Any]:
        return {
            **self._shared,
            "root": root_of(path),
            "page_title": page_title,
            "site_title": self.options.title,
        }

    def _render_index(self) -> Rendering:
        return whole(self.renderer.render_template(INDEX_HTML, **self._context("index.html", self.options.title)))

    def _topic(self, topic: ArchiveTopic, inputs: tuple[Any, ...]) -> Page:
        """A topic's landing page: its months with their counts (small: one line per month)."""
        path = topic_path(topic.code, ".html")

        def render() -> Rendering:
            context = self._context(path, f"{topic.title} — {self.options.title}")
            return whole(self.renderer.render_template(TOPIC_HTML, **context, topic=topic))

        return Page(path, page_key(self.theme, "topic", inputs), render)

    def _topic_month(self, topic: ArchiveTopic, month: TopicMonth, previous: dict[str, Any]) -> Page:
        """A topic's month page, keyed by the digests it lists: after a new day only that month's is rendered.

        The page is one section per day (newest first), each keyed by the digests (and counts) it
        lists.  Sections whose key is in the previous page are reused as they are; only the others
        are read from the store and rendered (after a new day: that day's section).
        """
        path = topic_month_path(topic.code, month.month, ".html")

        def render() -> Rendering:
            per_day: dict[dt.date, list[tuple[int, int]]] = {}
            for digest_id, count in month.filed:
                per_day.setdefault(self._dates[digest_id], []).append((digest_id, count))
            order = sorted(per_day, reverse=True)
            prefix = f"{self.theme}/{path}/{topic.title}/"
            keys = {date: page_key(prefix, date.toordinal(), per_day[date]) for date in order}
            before = self._previous_sections(path, previous)
            missing = [date for date in order if keys[date] not in before]
            fresh: dict[dt.date, str] = {}
            if missing:
                rows = self.store.filed_papers(topic=topic.code, digest_ids=[i for date in missing for i, _ in per_day[date]])
                context = self._context(path, "")
                for day in papers_by_day(rows):
                    section = self.renderer.render_template(TOPIC_DAY_HTML, **context, topic=topic, day=day)
                    fresh[day.date] = f"{SECTION_START}{keys[day.date]} -->{section}{SECTION_END}"
            context = self._context(path, f"{topic.title}: {month.label} — {self.options.title}")
            by_day = Lazy(lambda: month_papers(self.store, topic, month))  # for a template of the user's that lists them itself
            shell = self.renderer.render_template(
                TOPIC_MONTH_HTML, **context, topic=topic, month=month, sections=Markup(SECTIONS), by_day=by_day
            )
            sections = "".join(fresh.get(date) or before.get(keys[date], "") for date in order)
            return Rendering(shell.replace(SECTIONS, sections, 1), shell.replace(SECTIONS, "".join(fresh.values()), 1))

        return Page(path, page_key(self.theme, "topic-month", topic.code, topic.title, plain(month)), render, reused=True)

    def _previous_sections(self, path: str, previous: dict[str, Any]) -> dict[str, str]:
        """The day sections of the page as the previous build wrote it, by key (none if the manifest does not vouch for it)."""
        text = self._vouched(path, previous)
        if text is None:
            return {}
        sections = {}
        for chunk in text.split(SECTION_START)[1:]:
            end = chunk.find(SECTION_END)
            if end >= 68 and chunk[64:68] == " -->":  # a 64-digit key
                sections[chunk[:64]] = SECTION_START + chunk[: end + len(SECTION_END)]
        return sections

    def _day(self, path: str, day: ArchiveDay, inputs: tuple[Any, ...], older: Any, newer: Any, previous: dict[str, Any]) -> Page:
        source_path = self.config.archive.dir / (path.removesuffix(".html") + ".md")
        mark = file_mark(source_path)
        # The Markdown's hash, re-read only when the file's size or time changed.
        if previous.get("stat") == mark and isinstance(previous.get("source"), str):
            source = previous["source"]
        else:
            source = hashlib.sha256(source_path.read_bytes()).hexdigest()
        reuse_body = previous.get("source") == source

        def render() -> Rendering:
            body = self._previous_body(path) if reuse_body else None
            reused = body is not None
            if body is None:
                body = self.markdown_body(source_path.read_text(encoding="utf-8"))
            context = self._context(path, f"{self.options.title} — {day.date.isoformat()}")
            text = self.renderer.render_template(
                DAY_HTML, **context, day=day, older=older, newer=newer,
                body=Markup(body), body_start=Markup(BODY_START), body_end=Markup(BODY_END),
            )
            # A reused body was checked when it was converted; its ids stay in the page.
            return Rendering(text, text.replace(body, "", 1) if reused else text)

        return Page(path, page_key(self.theme, "day", inputs, source, older, newer), render, {"source": source, "stat": mark})

    def _previous_body(self, path: str) -> str | None:
        try:
            text = (self.out / path).read_text(encoding="utf-8")
        except OSError:
            return None
        start, end = text.find(BODY_START), text.find(BODY_END)
        return text[start + len(BODY_START) : end] if 0 <= start < end else None

    def markdown_body(self, text: str) -> str:
        """A day page's Markdown (front matter dropped) as HTML; feed text in it is already escaped."""
        if self._markdown is None:
            import markdown
            from markdown.extensions.attr_list import AttrListExtension

            # The extension itself, not its name: a name makes python-markdown scan every installed
            # package's entry points (importlib.metadata), ~50 ms a process.
            self._markdown = markdown.Markdown(extensions=[AttrListExtension()], output_format="html")
        self._markdown.reset()
        return "\n" + str(self._markdown.convert(strip_front_matter(text))) + "\n"

    def _search(self, old: dict[str, dict[str, Any]], plain_days: list[tuple[Any, ...]]) -> list[Page]:
        """A search shard per month, then ``search/index.json``: the shards' names, newest first."""
        shards = []
        for month, group in groupby(zip(self.index.days, plain_days), key=lambda pair: month_key(pair[0].date)):
            days, inputs = zip(*group)
            shards.append(self._shard(f"search/{month}.json", days, inputs, old.get(f"search/{month}.json", {})))
        names = [posixpath.basename(p.path) for p in shards]
        shards.append(Page("search/index.json", page_key("search", names), lambda: whole(_json(names))))
        return shards

    def _shard(self, path: str, days: tuple[ArchiveDay, ...], inputs: tuple[tuple[Any, ...], ...], previous: dict[str, Any]) -> Page:
        """A month's search shard: ``[title, date, anchor]`` rows, newest day first.

        Each day's rows are keyed; when the only change is new days, newer than every day of the
        previous shard, only their rows are read from the store, put in front of the previous shard's.
        """
        keys = [page_key("search", day) for day in inputs]
        known = previous.get("days")
        reusable = isinstance(known, list) and 0 < len(known) < len(keys) and keys[len(keys) - len(known) :] == known
        new_days = days[: len(keys) - len(known)] if reusable and isinstance(known, list) else days

        def rows(of: tuple[ArchiveDay, ...]) -> str:
            filed = self.store.filed_papers(digest_ids=[i for day in of for i in day.digest_ids])
            return _json([[p.title, p.date.isoformat(), anchor_for_key(p.key)] for p in filed])

        def render() -> Rendering:
            before = self._vouched(path, previous) if reusable else None
            if before is None or not (before.startswith("[") and before.endswith("]\n")):
                return whole(rows(days))
            # Compact JSON lists join as text: "[a,b]" and "[c]" make "[a,b,c]".
            return whole("[" + ",".join(part for part in (rows(new_days)[1:-2], before[1:-2]) if part) + "]\n")

        return Page(path, page_key("search", keys), render, {"days": keys}, reused=True)


class Lazy(Sequence[Any]):
    """A list computed on first use (a template that never reads it costs nothing)."""

    def __init__(self, make: Callable[[], Sequence[Any]]) -> None:
        self._make = make
        self._items: Sequence[Any] | None = None

    @property
    def items(self) -> Sequence[Any]:
        """The list, computed once."""
        if self._items is None:
            self._items = self._make()
        return self._items

    def __getitem__(self, index: Any) -> Any:
        return self.items[index]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.items)


def file_mark(path: Path) -> list[int]:
    """A file's modification time (ns) and size: it changes when the file is written again."""
    stat = path.stat()
    return [stat.st_mtime_ns, stat.st_size]


def strip_front_matter(text: str) -> str:
    """``text`` without a leading YAML front matter block (``---`` ... ``---``)."""
    if text.startswith("---\n"):
        end = text.find("\n---\n", 4)
        if end >= 0:
            return text[end + 5 :]
    return text


def check_links(out: Path, pages: Iterable[tuple[str, str]], manifest: Collection[str]) -> tuple[int, list[tuple[str, str]]]:
    """Check every internal link of ``pages`` (path, html); return how many and the broken ones.

    A link resolves when its file is in the site (``manifest``: the paths of the site) or on disk
    under ``out``, and its fragment, if any, is an id of that page (as it is on disk).  Links with
    a scheme (``https:``, ``mailto:``) are external.  Each target is resolved and each page's ids
    read once, whatever the number of links to it.
    """
    broken: list[tuple[str, str]] = []
    checked = 0
    ids: dict[str, set[str]] = {}
    resolved_by: dict[tuple[str, str], str | None] = {}  # (folder, target) -> site path, None if missing
    for path, text in pages:
        base = posixpath.dirname(path)
        for link in sorted(set(_LINK.findall(text))):
            url = html.unescape(link) if "&" in link else link
            if not url or _SCHEME.match(url) or url.startswith("//"):
                continue
            checked += 1
            target, _, fragment = url.partition("#")
            target = unquote(target.split("?", 1)[0])
            if not target:
                resolved: str | None = path
            elif (base, target) in resolved_by:
                resolved = resolved_by[base, target]
            else:
                resolved = resolved_by[base, target] = _resolve(out, base, target, manifest)
            if resolved is None:
                broken.append((path, link))
            elif fragment and resolved.endswith(".html"):
                if resolved not in ids:
                    ids[resolved] = page_ids(out / resolved)
                if unquote(fragment) not in ids[resolved]:
                    broken.append((path, link))
    return checked, broken


def _resolve(out: Path, base: str, target: str, manifest: Collection[str]) -> str | None:
    """The site path a relative link ``target`` from folder ``base`` names, or None if there is no such file."""
    resolved = posixpath.normpath(posixpath.join(base, target))
    if target.endswith("/") or (resolved not in manifest and (out / resolved).is_dir()):
        resolved = posixpath.join(resolved, "index.html")
    if resolved.startswith("../") or (resolved not in manifest and not (out / resolved).is_file()):
        return None
    return resolved


def page_ids(path: Path) -> set[str]:
    """The ids of an HTML page on disk (none if it cannot be read)."""
    try:
        return set(_ID.findall(path.read_text(encoding="utf-8")))
    except OSError:
        return set()


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n"

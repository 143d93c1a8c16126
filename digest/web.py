"""``digest serve``: the archive site and the subscriber pages in one web process (Starlette on uvicorn).

    GET  /subscribe            the form (a CSRF token in a cookie and a hidden field)
    POST /subscribe            same answer whatever the address; a confirmation mail when allowed
    GET  /confirm?t=           a page with a button (mail scanners follow links: GET changes nothing)
    POST /confirm?t=           pending -> active (double opt-in)
    GET  /unsubscribe?t=       a confirm page; changes nothing
    POST /unsubscribe?t=       RFC 8058 one-click: takes effect at once, answers 200
    GET  /preferences?t=       topics, cadence, leave
    POST /preferences?t=       saves them (or leaves)
    /...                       the static site ``digest site`` builds (``[archive] site_dir``)

Every ``t`` is a signed token (:mod:`digest.tokens`); a forged, expired or stale one gets a page
saying so (400) and changes nothing.  Limits: ``[serve] client_limit`` subscribe attempts per
client per ``limit_window`` (429 past it) and ``address_limit`` confirmation mails per address
per window (past it the same answer, no mail).  Endpoints are plain functions: Starlette runs them
in its thread pool, each with its own SQLite connection.  Pages are Jinja templates under
``templates/serve/`` that ``[render] templates`` overrides by name.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hmac
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from digest.config import Config
from digest.errors import DigestError
from digest.render import Renderer, oneline
from digest.store import SeenStore, open_store
from digest.subscribers import (
    WEEKDAYS,
    Preferences,
    SubscriberError,
    Subscribers,
    known_topics,
    normalise_address,
    parse_preferences,
)
from digest.tokens import RECIPIENT, SUBSCRIBER, Claims, Signer, TokenError, load_signer

Clock = Callable[[], dt.datetime]
CSRF_COOKIE = "digest_csrf"
_log = logging.getLogger("digest.serve")
MAX_FORM_BYTES = 16_384
REASONS = {
    "malformed": "This link is incomplete or damaged. Copy the whole link from the email, or use the newest email.",
    "forged": "This link was not made by this site (or was changed). Nothing was changed.",
    "expired": "This link has expired. Subscribe again to get a new one.",
    "purpose": "This link is for something else. Nothing was changed.",
    "stale": "This link is no longer valid (a newer one was sent). Nothing was changed.",
    "unknown": "This subscription no longer exists. Nothing was changed.",
}


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class RateLimit:
    """At most ``limit`` events per key in any ``window`` seconds (in this process's memory)."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        """Count one event for ``key``; False when it goes past the limit."""
        now = self.clock()
        with self._lock:
            if len(self._seen) > 100_000:  # forget idle keys rather than grow without bound
                self._seen = {k: v for k, v in self._seen.items() if v and v[-1] > now - self.window}
            times = self._seen.setdefault(key, deque())
            while times and times[0] <= now - self.window:
                times.popleft()
            if len(times) >= self.limit:
                return False
            times.append(now)
            return True


@dataclass(frozen=True, slots=True)
class Who:
    """The person a valid token is about: a subscriber (``subscriber_id``) or a config recipient."""

    claims: Claims
    address: str
    subscriber_id: int | None


class SubscriberPages:
    """The endpoints; one instance per app, holding the config, the signer and the limits."""

    def __init__(self, config: Config, signer: Signer, *, now: Clock = _utcnow, send_mail: Callable[[str, str, str], None] | None = None) -> None:
        self.config = config
        self.signer = signer
        self.now = now
        self.send_mail = send_mail or self._send_mail
        self.renderer = Renderer(config.render.templates)
        self.topics = known_topics(config)
        self.topic_titles = _topic_titles(config, self.topics)
        self.clients = RateLimit(config.serve.client_limit, config.serve.limit_window)
        self.address_lock = threading.Lock()
        self.recipients = {signer.recipient_subject(r.address): r for r in config.email.recipients}
        self.site = config.archive.site_url.rstrip("/")
        self._local = threading.local()

    # -- plumbing ---------------------------------------------------------------------------------

    @contextmanager
    def subscribers(self) -> Iterator[Subscribers]:
        """The subscriber queries on this thread's own connection (SQLite connections stay in their
        thread), kept open for the thread's life: closing the last connection would checkpoint
        and delete the WAL on every request (~20 ms).  A PostgreSQL connection the server has ended
        (a restart, an idle connection cut) is opened again, not kept failing every request."""
        store: SeenStore | None = getattr(self._local, "store", None)
        if store is not None and not store.alive():
            with contextlib.suppress(Exception):
                store.close()
            store = self._local.store = None
        if store is None:
            store = self._local.store = open_store(self.config.store)
        yield Subscribers(store)

    def page(self, name: str, status: int = 200, *, background: BackgroundTask | None = None, **context: Any) -> HTMLResponse:
        """A page from ``templates/serve/NAME.html.j2`` (``background``: work done after it is sent)."""
        context.setdefault("link", None)
        html = self.renderer.render_template(f"serve/{name}.html.j2", title=self.config.archive.title, site_url=self.site, **context)
        return HTMLResponse(
            html, status_code=status, background=background,
            headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"},
        )

    def refused(self, reason: str) -> HTMLResponse:
        """The page for a token that cannot be used (400); nothing changed."""
        return self.page("message", 400, heading="This link does not work", text=REASONS[reason])

    def who(self, request: Request, purpose: str, form: dict[str, str] | None = None) -> Who | str:
        """The person the request's token names, or the reason it cannot be used."""
        token = request.query_params.get("t") or (form or {}).get("t", "")
        try:
            claims = self.signer.verify(token, purpose, now=self.now())
        except TokenError as exc:
            return exc.reason
        if claims.kind == RECIPIENT:
            recipient = self.recipients.get(claims.subject)
            return Who(claims, recipient.address, None) if recipient is not None else "unknown"
        if claims.kind != SUBSCRIBER:
            return "malformed"
        with self.subscribers() as subs:
            found = subs.get(claims.subject)
        if found is None:
            return "unknown"
        return Who(claims, found.address, found.id)

    # -- subscribe --------------------------------------------------------------------------------

    def subscribe_form(self, request: Request) -> Response:
        """GET /subscribe: the form, with a fresh CSRF token (cookie + hidden field)."""
        if not self.config.serve.subscribe:
            return self.page("message", 404, heading="Not open", text="This list does not take subscriptions here.")
        csrf = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
        response = self.page("subscribe", csrf=csrf, topics=self._topic_choices(()), error=None)
        response.set_cookie(CSRF_COOKIE, csrf, httponly=True, samesite="strict", secure=self.site.startswith("https://"), path="/")
        return response

    async def subscribe(self, request: Request) -> Response:
        """POST /subscribe: the same answer for any valid address; a confirmation mail when allowed."""
        if not self.config.serve.subscribe:
            return self.page("message", 404, heading="Not open", text="This list does not take subscriptions here.")
        form = await _form(request)
        cookie = request.cookies.get(CSRF_COOKIE, "")
        if not cookie or not hmac.compare_digest(cookie, form.get("csrf", "")):
            return self.page("message", 403, heading="Please try again", text="The form had expired. Reload the page and send it again.")
        client = request.client.host if request.client else "unknown"
        if not self.clients.allow(client):
            return self.page("message", 429, heading="Too many attempts", text="Please wait a while before trying again.")
        try:
            address = normalise_address(form.get("address", ""))
        except SubscriberError:
            return self.page("subscribe", 400, csrf=cookie, topics=self._topic_choices(()), error="That does not look like an email address.")
        chosen = tuple(t for t in form.get("topics", "").split(",") if t in self.topics)
        task = await _in_thread(lambda: self._request(address, chosen))
        return self.page(
            "message", heading="Check your inbox",
            text=f"If {address} can subscribe, a message with a confirmation link is on its way. "
            f"The link works for {self.config.serve.confirm_hours} hours.",
            background=task,
        )

    def _request(self, address: str, topics: tuple[str, ...]) -> BackgroundTask | None:
        """Record the request and, within the address's limit, the mail to send after answering."""
        now = self.now()
        window = dt.timedelta(seconds=self.config.serve.limit_window)
        with self.address_lock, self.subscribers() as subs:
            pending = subs.request(address, now=now, source="web")
            if pending is None:  # already receiving the digest: nothing to confirm, and no mail to a stranger's box
                return None
            if subs.count_events(pending.id, "confirm-mail", now - window) >= self.config.serve.address_limit:
                return None
            if topics:
                subs.set_preferences(pending.id, Preferences(topics), now=now, source="web")
            subs.log(pending.id, "confirm-mail", now=now, source="web")
        expires = now + dt.timedelta(hours=self.config.serve.confirm_hours)
        token = self.signer.subscriber_token("confirm", pending.id, pending.epoch, expires=expires)
        link = f"{self.site}/confirm?t={token}"
        text = self.renderer.render_template(
            "serve/confirm-email.txt.j2", title=self.config.archive.title, address=address, link=link,
            hours=self.config.serve.confirm_hours, site_url=self.site,
        )
        return BackgroundTask(self.send_mail, address, f"Confirm your subscription to {oneline(self.config.archive.title)}", text)

    def _send_mail(self, address: str, subject: str, text: str) -> None:
        """Send one plain-text mail through ``[email]`` (after the answer: its time never shows)."""
        from email.message import EmailMessage
        from email.utils import format_datetime, make_msgid

        from digest.deliver.email import connect_smtp, header_policy

        if not address.isascii():
            # The digests go without SMTPUTF8 (such an address is refused, 553, and soon disabled):
            # a confirmation by SMTPUTF8 would confirm a reader no digest can reach.
            _log.warning("digest serve: confirmation mail to %s not sent: the address needs SMTPUTF8, which digest does not use", address)
            return
        msg = EmailMessage(policy=header_policy())
        msg["From"] = self.config.email.sender
        msg["To"] = address
        msg["Subject"] = subject
        msg["Date"] = format_datetime(self.now())
        msg["Message-ID"] = make_msgid(domain=self.config.email.sender.rsplit("@", 1)[-1].rstrip(">"))
        msg["Auto-Submitted"] = "auto-generated"
        msg.set_content(text)
        try:
            client = connect_smtp(self.config.email)
            try:
                client.send_message(msg)
            finally:
                with contextlib.suppress(OSError):  # (smtplib's errors are OSErrors)
                    client.quit()
        except (OSError, UnicodeError, DigestError) as exc:
            # After the answer: nobody to tell but the log, in one line (an address that needs
            # SMTPUTF8 the server lacks, a server down); the address stays pending.
            reason = exc.message if isinstance(exc, DigestError) else str(exc) or type(exc).__name__
            _log.warning("digest serve: confirmation mail to %s not sent: %s", address, " ".join(reason.split()))

    def _topic_choices(self, chosen: tuple[str, ...]) -> list[dict[str, Any]]:
        return [{"code": code, "title": self.topic_titles[code], "checked": code in chosen} for code in self.topics]

    # -- confirm ----------------------------------------------------------------------------------

    def confirm_page(self, request: Request) -> Response:
        """GET /confirm: a button that confirms (a scanner following the link confirms nothing)."""
        who = self.who(request, "confirm")
        if isinstance(who, str):
            return self.refused(who)
        return self.page("confirm", address=who.address, token=request.query_params["t"])

    async def confirm(self, request: Request) -> Response:
        """POST /confirm: the pending address becomes active."""
        form = await _form(request)
        who = self.who(request, "confirm", form)
        if isinstance(who, str):
            return self.refused(who)
        assert who.subscriber_id is not None
        subscriber_id = who.subscriber_id

        def confirm() -> Response:
            with self.subscribers() as subs:
                changed = subs.confirm(subscriber_id, epoch=who.claims.epoch, now=self.now(), source="web")
                found = subs.get(subscriber_id)
            if found is None or (not changed and found.status != "active"):
                return self.refused("stale")
            prefs = self.signer.subscriber_token("preferences", found.id, found.epoch)
            return self.page(
                "message", heading="You are subscribed" if changed else "Already confirmed",
                text=f"{found.address} will receive the next digest.", link=f"{self.site}/preferences?t={prefs}",
                link_text="Choose your topics",
            )

        return await _in_thread(confirm)

    # -- unsubscribe ------------------------------------------------------------------------------

    def unsubscribe_page(self, request: Request) -> Response:
        """GET /unsubscribe: a confirm page; changes nothing."""
        who = self.who(request, "unsubscribe")
        if isinstance(who, str):
            return self.refused(who)
        return self.page("unsubscribe", address=who.address, token=request.query_params["t"])

    async def unsubscribe(self, request: Request) -> Response:
        """POST /unsubscribe: RFC 8058 one-click (or the confirm page's button), at once."""
        form = await _form(request)
        who = self.who(request, "unsubscribe", form)
        if isinstance(who, str):
            return self.refused(who)
        source = "one-click" if form.get("List-Unsubscribe") == "One-Click" and "from_page" not in form else "web"
        return await _in_thread(lambda: self._leave(who, source))

    def _leave(self, who: Who, source: str) -> Response:
        with self.subscribers() as subs:
            if who.subscriber_id is None:
                subs.unsubscribe_address(who.address, now=self.now(), source=source)
            else:
                found = subs.get(who.subscriber_id)
                if found is None or found.epoch != who.claims.epoch:
                    return self.refused("stale")
                subs.unsubscribe(found.id, epoch=who.claims.epoch, now=self.now(), source=source)
        return self.page("message", heading="You are unsubscribed", text=f"{who.address} will get no more digests.")

    # -- preferences ------------------------------------------------------------------------------

    def preferences_page(self, request: Request) -> Response:
        """GET /preferences: the reader's topics and cadence, and a way to leave."""
        who = self.who(request, "preferences")
        if isinstance(who, str):
            return self.refused(who)
        return self._preferences(who, request.query_params["t"], saved=False)

    def _preferences(self, who: Who, token: str, *, saved: bool, status: int = 200, error: str | None = None) -> Response:
        chosen: tuple[str, ...] = ()
        current = None
        if who.subscriber_id is not None:
            with self.subscribers() as subs:
                current = subs.get(who.subscriber_id)
            if current is None or current.epoch != who.claims.epoch:
                return self.refused("stale")
            chosen = current.topics
        return self.page(
            "preferences", status, address=who.address, token=token, topics=self._topic_choices(chosen),
            fixed=who.subscriber_id is None, subscriber=current, saved=saved, error=error, weekdays=WEEKDAYS,
        )

    async def preferences(self, request: Request) -> Response:
        """POST /preferences: save the topics, arXiv categories and cadence (each one the form
        leaves out is kept as it was), or leave."""
        form = await _form(request)
        who = self.who(request, "preferences", form)
        if isinstance(who, str):
            return self.refused(who)
        if "leave" in form:
            return await _in_thread(lambda: self._leave(who, "preferences"))
        token = request.query_params.get("t") or form.get("t", "")
        if who.subscriber_id is None:
            return self._preferences(who, token, saved=False, status=400, error="These settings are fixed by the list's owner.")
        subscriber_id = who.subscriber_id

        def save() -> Response:
            with self.subscribers() as subs:
                found = subs.get(subscriber_id)
                if found is None or found.epoch != who.claims.epoch or not found.mailed:
                    return self.refused("stale")
                try:
                    categories = form["categories"].replace(",", " ").split() if "categories" in form else found.categories
                    weekday = form.get("weekday") or (WEEKDAYS[found.weekday] if found.weekday is not None else None)
                    prefs = parse_preferences(
                        form.get("topics", "").split(","), categories, form.get("cadence") or found.cadence, weekday, self.topics
                    )
                except SubscriberError as exc:
                    return self._preferences(who, token, saved=False, status=400, error=exc.message)
                subs.set_preferences(found.id, prefs, now=self.now(), source="web")
            return self._preferences(who, token, saved=True)

        return await _in_thread(save)


def _topic_titles(config: Config, codes: tuple[str, ...]) -> dict[str, str]:
    """The title of each topic code the forms offer, read once with the codes themselves (loading
    the taxonomy stats and parses the topics file: ~5 ms a request otherwise)."""
    from digest.topics import configured_taxonomy

    taxonomy = configured_taxonomy(config.topics.file)
    return {code: taxonomy.title_of(code) for code in codes}


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form body (repeated keys joined by commas); a multipart one-click body is read
    as its one field.  Bodies past MAX_FORM_BYTES are cut."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            break
    text = body[:MAX_FORM_BYTES].decode("utf-8", "replace")
    if "multipart/form-data" in request.headers.get("content-type", ""):
        return {"List-Unsubscribe": "One-Click"} if 'name="List-Unsubscribe"' in text and "One-Click" in text else {}
    return {key: ",".join(values) for key, values in parse_qs(text, keep_blank_values=True).items()}


T = TypeVar("T")


async def _in_thread(func: Callable[[], T]) -> T:
    """Run blocking work (SQLite, SMTP) in Starlette's thread pool."""
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(func)


class _Site:
    """The static site ``digest site`` builds; until it exists, a 404 page instead of an error."""

    def __init__(self, folder: Path, pages: SubscriberPages) -> None:
        self.folder = folder
        self.pages = pages
        self.files = StaticFiles(directory=folder, html=True, check_dir=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.folder.is_dir():
            await self.files(scope, receive, send)
            return
        text = "The archive site has not been built yet (digest site builds it)."
        await self.pages.page("message", 404, heading="Not found", text=text)(scope, receive, send)


def create_app(config: Config, *, now: Clock = _utcnow, send_mail: Callable[[str, str, str], None] | None = None) -> Starlette:
    """The ASGI app: subscriber pages, then the static site.  Needs the signing secret."""
    signer = load_signer(config, required=True)
    assert signer is not None
    with open_store(config.store):  # create or migrate the store once, before any request
        pass
    pages = SubscriberPages(config, signer, now=now, send_mail=send_mail)
    site = config.archive.site
    routes = [
        Route("/subscribe", pages.subscribe_form, methods=["GET"]),
        Route("/subscribe", pages.subscribe, methods=["POST"]),
        Route("/confirm", pages.confirm_page, methods=["GET"]),
        Route("/confirm", pages.confirm, methods=["POST"]),
        Route("/unsubscribe", pages.unsubscribe_page, methods=["GET"]),
        Route("/unsubscribe", pages.unsubscribe, methods=["POST"]),
        Route("/preferences", pages.preferences_page, methods=["GET"]),
        Route("/preferences", pages.preferences, methods=["POST"]),
        Mount("/", _Site(site, pages), name="site"),
    ]
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=list(config.serve.trusted_hosts))] if config.serve.trusted_hosts else []
    return Starlette(routes=routes, middleware=middleware)


def run_server(config: Config, *, host: str | None = None, port: int | None = None) -> None:
    """Serve until SIGINT/SIGTERM; X-Forwarded-For/-Proto believed only from ``[serve] forwarded_allow_ips``."""
    import uvicorn

    app = create_app(config)
    uvicorn.run(
        app, host=host or config.serve.host, port=config.serve.port if port is None else port,
        proxy_headers=True, forwarded_allow_ips=config.serve.forwarded_allow_ips, server_header=False, log_level="info",
    )

"""HTTP fetching for the live sources, with one shared ``httpx.Client``.

``fetch`` gets one URL within a total time budget per source (``timeout``, retries and waits
included), reads at most ``max_bytes`` (checked while streaming, after gzip decoding), retries
connection failures, timeouts, 429 and 5xx with exponential backoff and jitter (honouring
``Retry-After``), sends conditional-GET validators and follows at most ``max_redirects``
redirects, reporting a loop as a loop.

Errors: every failure is a :class:`~digest.errors.SourceError` whose message is one line that
starts with the URL, e.g. ``https://…: HTTP 503 Service Unavailable after 4 attempts``::

    SourceError
    ├── HTTP 4xx (not 429)                 at once, no retry
    ├── HTTP 429 / 5xx, network, timeout   after the last attempt, or when the next wait
    │                                      would pass the time budget
    ├── too large                          Content-Length or streamed bytes over max_bytes
    └── too many redirects / loop, bad URL, undecodable body

``fetch_all`` runs several jobs (usually fetch + parse of one source each) on a small thread
pool; one failure never stops the others.  ``httpx.Client`` is safe to share between threads.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import random
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import IO, TypeVar

import httpx

from digest import __version__
from digest.errors import SourceError
from digest.sources.text import clip, one_line

#: Connecting never gets more than this many seconds of the budget.
CONNECT_TIMEOUT = 10.0

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class FetchSettings:
    """The ``[fetch]`` config: per-source time budget, size cap, contact, retry policy."""

    timeout: float = 30.0  # seconds for one source, all attempts and waits included
    max_bytes: int = 20_000_000  # of the decoded body
    contact: str = ""  # an e-mail address for the User-Agent
    retries: int = 3  # further attempts after the first one
    backoff: float = 1.0  # first wait in seconds; doubles each retry, with jitter
    max_redirects: int = 5
    max_retry_after: float = 120.0  # a longer Retry-After is cut to this


@dataclass(frozen=True, slots=True)
class Validators:
    """Conditional-GET state remembered per source between runs."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What one fetch got: the final URL, status and body, or ``not_modified`` for a 304.

    Fetched with ``spool=True``, the body is in ``file`` (at its start; the caller closes it)
    and ``body`` is ``b""``.
    """

    url: str
    status: int
    body: bytes
    validators: Validators
    not_modified: bool
    content_type: str
    file: IO[bytes] | None = field(default=None, compare=False, repr=False)


class _Retry(Exception):
    """An attempt failed in a way another attempt may not (5xx, 429, network, timeout)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def user_agent(contact: str) -> str:
    """The honest User-Agent: ``digest/<version> (+mailto:<contact>)``, the contact from ``[fetch]``."""
    return f"digest/{__version__} (+mailto:{contact})" if contact else f"digest/{__version__}"


def make_client(settings: FetchSettings) -> httpx.Client:
    """The one ``httpx.Client`` all sources share: User-Agent, timeouts, redirects, gzip."""
    return httpx.Client(
        headers={"User-Agent": user_agent(settings.contact)},
        timeout=httpx.Timeout(settings.timeout, connect=min(settings.timeout, CONNECT_TIMEOUT)),
        follow_redirects=True,
        max_redirects=settings.max_redirects,
        # httpx reads the *_proxy variables only for its own default transport.
        transport=None if proxies_in_environment() else PoolPerScheme(),
    )


def proxies_in_environment() -> bool:
    """Whether a ``*_proxy`` variable (``HTTPS_PROXY``, ``all_proxy``, ...) names a proxy to go through
    (read as httpx reads them, through urllib's ``getproxies_environment``)."""
    from urllib.request import getproxies_environment

    return any(scheme != "no" for scheme in getproxies_environment())


class PoolPerScheme(httpx.BaseTransport):
    """httpx's own transport, one connection pool per URL scheme, each made on its first request.

    An HTTPS pool's TLS context loads and parses the CA bundle (~40 ms), which a run that only
    fetches ``http://`` URLs (a feed on the local network) or fetches nothing has no use for.
    Used unless the environment names a proxy (then httpx's default transport and its proxy
    handling, ``NO_PROXY`` included, are used as they are).
    The HTTPS pool verifies certificates as httpx's default does (honouring ``SSL_CERT_FILE`` /
    ``SSL_CERT_DIR``); a plain-HTTP pool never makes a TLS connection.
    """

    def __init__(self) -> None:
        self._pools: dict[str, httpx.HTTPTransport] = {}
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through the pool of its scheme."""
        scheme = request.url.scheme
        with self._lock:
            pool = self._pools.get(scheme)
            if pool is None:
                pool = self._pools[scheme] = httpx.HTTPTransport(verify=scheme != "http", trust_env=True)
        return pool.handle_request(request)

    def close(self) -> None:
        """Close every pool made."""
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()


def fetch(
    client: httpx.Client,
    url: str,
    *,
    settings: FetchSettings,
    validators: Validators | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    jitter: Callable[[], float] = random.random,
    spool: bool = False,
) -> FetchResult:
    """GET ``url`` within ``settings.timeout`` seconds, retrying what may pass; raise SourceError.

    ``validators`` from the previous fetch make it conditional: a 304 gives
    ``FetchResult(not_modified=True, body=b"")``.  ``sleep``, ``clock`` and ``jitter``
    (a number in [0, 1)) are injectable for tests.  With ``spool`` the body is written to a
    temporary file as it arrives (``FetchResult.file``), never held in memory whole.
    """
    deadline = clock() + settings.timeout
    attempts = max(0, settings.retries) + 1
    for attempt in range(1, attempts + 1):
        try:
            return _attempt(client, url, settings, validators or Validators(), deadline, clock, spool)
        except _Retry as failed:
            if attempt == attempts:
                raise SourceError(f"{url}: {failed.reason} after {_plural(attempt, 'attempt')}") from failed
            wait = _wait(failed, attempt, settings, jitter)
            if clock() + wait >= deadline:
                raise SourceError(
                    f"{url}: {failed.reason} after {_plural(attempt, 'attempt')}; "
                    f"no time left to retry within {settings.timeout:g}s"
                ) from failed
            sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


def fetch_all(
    jobs: Sequence[tuple[str, Callable[[], T]]],
    *,
    max_workers: int = 4,
    on_done: Callable[[str, T | SourceError], None] | None = None,
) -> dict[str, T | SourceError]:
    """Run named jobs on at most ``max_workers`` threads; each gets its result or its SourceError.

    A job that raises anything else (a bug) gets a SourceError naming the exception, so one
    source never stops the others.  The result keeps the jobs' order; ``on_done(name, outcome)``
    is called in the calling thread as each job finishes (for a progress bar).

    A single job runs on the calling thread: no pool to start, and what it allocates (a big
    body, its papers) stays in the main thread's malloc arena, where later stages reuse the
    space it frees instead of leaving it idle in a worker's arena.
    """
    names = [name for name, _ in jobs]
    if len(set(names)) != len(names):
        raise ValueError("job names must be unique")
    outcomes: dict[str, T | SourceError] = {}
    if len(jobs) == 1:
        name, job = jobs[0]
        outcomes[name] = _run_job(name, job)
        if on_done is not None:
            on_done(name, outcomes[name])
        return outcomes
    with ThreadPoolExecutor(max_workers=max(1, max_workers), thread_name_prefix="digest-fetch") as pool:
        futures = {pool.submit(_run_job, name, job): name for name, job in jobs}
        for future in as_completed(futures):
            name = futures[future]
            outcomes[name] = future.result()
            if on_done is not None:
                on_done(name, outcomes[name])
    return {name: outcomes[name] for name in names}


# --- internals -------------------------------------------------------------------------------


def _run_job(name: str, job: Callable[[], T]) -> T | SourceError:
    try:
        return job()
    except SourceError as exc:
        return exc
    except Exception as exc:  # noqa: BLE001 - one broken source must not stop the others
        error = SourceError(f"{name}: unexpected {type(exc).__name__}: {clip(str(exc))}")
        error.__cause__ = exc
        return error


def _attempt(
    client: httpx.Client,
    url: str,
    settings: FetchSettings,
    validators: Validators,
    deadline: float,
    clock: Callable[[], float],
    spool: bool = False,
) -> FetchResult:
    headers = {}
    if validators.etag:
        headers["If-None-Match"] = validators.etag
    if validators.last_modified:
        headers["If-Modified-Since"] = validators.last_modified
    try:
        request = client.build_request("GET", url, headers=headers)
    except httpx.InvalidURL as exc:
        raise SourceError(f"{url}: not a valid URL ({one_line(str(exc))})") from exc
    hops = [str(request.url)]
    while True:
        request.extensions = {**request.extensions, "timeout": _timeout(deadline - clock())}
        response = _send(client, request, url)
        try:
            if response.next_request is None:
                return _read(response, url, settings, validators, deadline, clock, spool)
            request = response.next_request
            target = str(request.url)
            if target in hops:
                chain = " -> ".join([*hops[hops.index(target) :], target])
                raise SourceError(f"{url}: redirect loop ({clip(chain, 300)})")
            if len(hops) > settings.max_redirects:
                raise SourceError(f"{url}: more than {settings.max_redirects} redirects (last to {target})")
            hops.append(target)
        finally:
            response.close()


def _send(client: httpx.Client, request: httpx.Request, url: str) -> httpx.Response:
    try:
        return client.send(request, stream=True, follow_redirects=False)
    except httpx.TimeoutException as exc:
        raise _Retry(_timeout_reason(exc)) from exc
    except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
        if _name_not_resolved(exc):
            raise _Retry(f"cannot resolve the host name {request.url.host!r} ({clip(str(exc))})") from exc
        raise _Retry(f"connection failed ({clip(str(exc)) or type(exc).__name__})") from exc
    except httpx.HTTPError as exc:  # unsupported scheme, local protocol error…
        raise SourceError(f"{url}: {clip(str(exc)) or type(exc).__name__}") from exc


def _name_not_resolved(exc: BaseException) -> bool:
    """True when the error comes from a failed name lookup (``socket.gaierror`` somewhere in its chain)."""
    seen: BaseException | None = exc
    for _ in range(8):  # httpx -> httpcore -> the socket error
        if seen is None:
            return False
        if isinstance(seen, socket.gaierror):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _read(
    response: httpx.Response,
    url: str,
    settings: FetchSettings,
    validators: Validators,
    deadline: float,
    clock: Callable[[], float],
    spool: bool = False,
) -> FetchResult:
    status = response.status_code
    at = "" if str(response.url) == url else f" (at {response.url})"
    if status == 304:
        return FetchResult(
            url=str(response.url),
            status=status,
            body=b"",
            validators=_validators(response, validators),
            not_modified=True,
            content_type=response.headers.get("content-type", ""),
        )
    if status == 429 or status >= 500:
        raise _Retry(_status(response) + at, _retry_after(response, settings))
    if status >= 300:
        raise SourceError(f"{url}: {_status(response)}{at}")
    file = _spool_file() if spool else None
    try:
        body = _read_body(response, url, settings, deadline, clock, file)
    except BaseException:
        if file is not None:
            file.close()
        raise
    return FetchResult(
        url=str(response.url),
        status=status,
        body=body,
        validators=_validators(response, Validators()),
        not_modified=False,
        content_type=response.headers.get("content-type", ""),
        file=file,
    )


def _spool_file() -> IO[bytes]:
    """A temporary file for a body: in memory up to 1 MiB, then on disk (deleted when closed)."""
    return tempfile.SpooledTemporaryFile(max_size=1 << 20)


def _read_body(
    response: httpx.Response,
    url: str,
    settings: FetchSettings,
    deadline: float,
    clock: Callable[[], float],
    into: IO[bytes] | None = None,
) -> bytes:
    """The body (``b""`` when it is written ``into`` a file, which is then rewound)."""
    limit = settings.max_bytes
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise SourceError(f"{url}: the response is {int(declared):,} bytes, over the {limit:,}-byte limit")
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > limit:
                raise SourceError(f"{url}: the response is over the {limit:,}-byte limit")
            if clock() > deadline:
                raise SourceError(f"{url}: the response did not complete within {settings.timeout:g}s")
            if into is not None:
                into.write(chunk)
            else:
                chunks.append(chunk)
    except httpx.TimeoutException as exc:
        raise _Retry(_timeout_reason(exc)) from exc
    except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
        raise _Retry(f"connection broken while reading ({clip(str(exc)) or type(exc).__name__})") from exc
    except httpx.DecodingError as exc:
        raise SourceError(f"{url}: cannot decode the response ({clip(str(exc))})") from exc
    if into is not None:
        into.seek(0)
    return b"".join(chunks)


def _validators(response: httpx.Response, previous: Validators) -> Validators:
    return Validators(
        etag=response.headers.get("etag") or previous.etag,
        last_modified=response.headers.get("last-modified") or previous.last_modified,
    )


def _retry_after(response: httpx.Response, settings: FetchSettings) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date), capped; None if absent."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    seconds: float | None
    try:
        seconds = float(value)
    except ValueError:
        seconds = _seconds_until(value, response.headers.get("date", ""))
    if seconds is None:
        return None
    return min(max(0.0, seconds), settings.max_retry_after)


def _seconds_until(http_date: str, server_now: str) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(http_date)
    except (TypeError, ValueError, IndexError):
        return None
    try:  # the server's own clock, when it says, avoids skew between the two machines
        now = email.utils.parsedate_to_datetime(server_now)
    except (TypeError, ValueError, IndexError):
        now = dt.datetime.now(dt.timezone.utc)
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.timezone.utc)
    return (when - now).total_seconds()


def _wait(failed: _Retry, attempt: int, settings: FetchSettings, jitter: Callable[[], float]) -> float:
    if failed.retry_after is not None:
        return failed.retry_after
    # Exponential backoff with jitter: between half and all of backoff * 2**(attempt - 1).
    return settings.backoff * 2.0 ** (attempt - 1) * (0.5 + jitter() / 2)


def _timeout(remaining: float) -> dict[str, float | None]:
    budget = max(0.001, remaining)
    return httpx.Timeout(budget, connect=min(budget, CONNECT_TIMEOUT)).as_dict()


def _timeout_reason(exc: httpx.TimeoutException) -> str:
    if isinstance(exc, httpx.ConnectTimeout):
        return "timed out connecting"
    if isinstance(exc, httpx.PoolTimeout):
        return "timed out waiting for a free connection"
    return "timed out waiting for the server"


def _status(response: httpx.Response) -> str:
    return f"HTTP {response.status_code} {response.reason_phrase}".rstrip()


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"

"""fetch / fetch_all against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import email.utils
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from digest import __version__
from digest.errors import SourceError
from digest.sources.fetch import (
    FetchResult,
    FetchSettings,
    Validators,
    fetch,
    fetch_all,
    make_client,
    user_agent,
)
from tests.httpserver import Reply, Seen, TestServer

FAST = FetchSettings(timeout=5.0, retries=3, backoff=1.0, contact="ops@example.org")


class Sleeps:
    """A fake ``sleep`` that records the waits instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with make_client(FAST) as c:
        yield c


def get(
    client: httpx.Client,
    url: str,
    settings: FetchSettings = FAST,
    *,
    sleeps: Sleeps | None = None,
    validators: Validators | None = None,
) -> FetchResult:
    return fetch(
        client,
        url,
        settings=settings,
        validators=validators,
        sleep=sleeps if sleeps is not None else Sleeps(),
        jitter=lambda: 0.0,
    )


def fails(client: httpx.Client, url: str, settings: FetchSettings = FAST, sleeps: Sleeps | None = None) -> str:
    with pytest.raises(SourceError) as caught:
        get(client, url, settings, sleeps=sleeps)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(url + ": ")
    return message


def test_fetch_returns_body_type_and_validators(http_server: TestServer, client: httpx.Client) -> None:
    url = http_server.add(
        "/feed",
        Reply(
            body=b"<rss/>",
            headers={"Content-Type": "application/rss+xml; charset=utf-8", "ETag": '"v1"', "Last-Modified": "Mon, 22 Jan 2024 10:00:00 GMT"},
        ),
    )
    result = get(client, url)
    assert result == FetchResult(
        url=url,
        status=200,
        body=b"<rss/>",
        validators=Validators(etag='"v1"', last_modified="Mon, 22 Jan 2024 10:00:00 GMT"),
        not_modified=False,
        content_type="application/rss+xml; charset=utf-8",
    )


def test_user_agent_is_honest(http_server: TestServer, client: httpx.Client) -> None:
    url = http_server.add("/ua", Reply(body=b"ok"))
    get(client, url)
    sent = http_server.requests[0].headers["user-agent"]
    assert sent == user_agent("ops@example.org")
    assert sent.startswith(f"digest/{__version__} ")
    assert sent.endswith("(+mailto:ops@example.org)")
    assert user_agent("ops@example.org").endswith("(+mailto:ops@example.org)")
    assert "mailto" not in user_agent("")  # no contact, no mailto


def test_conditional_get_gives_not_modified(http_server: TestServer, client: httpx.Client) -> None:
    def conditional(seen: Seen) -> Reply:
        if seen.headers.get("if-none-match") == '"v1"':
            return Reply(status=304, headers={"ETag": '"v1"'})
        return Reply(body=b"<feed/>", headers={"ETag": '"v1"', "Last-Modified": "Mon, 22 Jan 2024 10:00:00 GMT"})

    url = http_server.add("/cond", conditional)
    first = get(client, url)
    second = get(client, url, validators=first.validators)
    assert first.body == b"<feed/>" and not first.not_modified
    assert second.not_modified and second.status == 304 and second.body == b""
    assert second.validators == first.validators
    sent = http_server.requests[1].headers
    assert sent["if-none-match"] == '"v1"'
    assert sent["if-modified-since"] == "Mon, 22 Jan 2024 10:00:00 GMT"


def test_500_then_200_is_retried_after_a_backoff(http_server: TestServer, client: httpx.Client) -> None:
    url = http_server.add("/flaky", Reply(status=500), Reply(body=b"fine"))
    sleeps = Sleeps()
    assert get(client, url, sleeps=sleeps).body == b"fine"
    assert http_server.hits("/flaky") == 2
    assert sleeps.waits == [0.5]  # backoff 1.0, jitter 0 -> half of it


def test_backoff_grows_exponentially_with_jitter_inside_bounds(http_server: TestServer, client: httpx.Client) -> None:
    url = http_server.add("/down", Reply(status=503))
    sleeps = Sleeps()
    with pytest.raises(SourceError, match=r"HTTP 503 Service Unavailable after 4 attempts$"):
        fetch(client, url, settings=FAST, sleep=sleeps, jitter=lambda: 0.999)
    assert http_server.hits("/down") == 4
    assert [round(w, 2) for w in sleeps.waits] == [1.0, 2.0, 4.0]


def test_503_message_names_url_and_attempts(http_server: TestServer, client: httpx.Client) -> None:
    url = http_server.add("/down", Reply(status=503))
    settings = FetchSettings(timeout=5.0, retries=2, backoff=0.1)
    assert fails(client, url, settings) == f"{url}: HTTP 503 Service Unavailable after 3 attempts"


def test_429_retry_after_seconds_is_honoured(http_server: TestServer, client: httpx.Client) -> None:
    url = http_server.add("/busy", Reply(status=429, headers={"Retry-After": "7"}), Reply(body=b"now"))
    sleeps = Sleeps()
    settings = FetchSettings(timeout=30.0)
    assert get(client, url, settings, sleeps=sleeps).body == b"now"
    assert sleeps.waits == [7.0]


def test_429_retry_after_http_date_uses_the_server_clock(http_server: TestServer, client: httpx.Client) -> None:
    server_now = 1_700_000_000.0
    headers = {
        "Date": email.utils.formatdate(server_now, usegmt=True),
        "Retry-After": email.utils.formatdate(server_now + 12, usegmt=True),
    }
    url = http_server.add("/busy", Reply(status=429, headers=headers), Reply(body=b"now"))
    sleeps = Sleeps()
    get(client, url, FetchSettings(timeout=30.0), sleeps=sleeps)
    assert sleeps.waits == [12.0]


def test_retry_after_is_capped(http_server: TestServer, client: httpx.Client) -> None:
    url = http_server.add("/busy", Reply(status=429, headers={"Retry-After": "86400"}), Reply(body=b"ok"))
    sleeps = Sleeps()
    get(client, url, FetchSettings(timeout=30.0, max_retry_after=5.0), sleeps=sleeps)
    assert sleeps.waits == [5.0]


def test_retry_after_past_the_time_budget_gives_up_at_once(http_server: TestServer, client: httpx.Client) -> None:
    url = http_server.add("/busy", Reply(status=429, headers={"Retry-After": "60"}))
    sleeps = Sleeps()
    message = fails(client, url, FetchSettings(timeout=10.0), sleeps)
    assert message == f"{url}: HTTP 429 Too Many Requests after 1 attempt; no time left to retry within 10s"
    assert sleeps.waits == [] and http_server.hits("/busy") == 1


def test_4xx_fails_at_once(http_server: TestServer, client: httpx.Client) -> None:
    url = http_server.add("/gone", Reply(status=404, body=b"nope"))
    assert fails(client, url) == f"{url}: HTTP 404 Not Found"
    assert http_server.hits("/gone") == 1


def test_slow_response_times_out_within_the_budget(http_server: TestServer, client: httpx.Client) -> None:
    url = http_server.add("/slow", Reply(body=b"late", delay=3.0))
    started = time.monotonic()
    message = fails(client, url, FetchSettings(timeout=0.5, retries=3))
    assert time.monotonic() - started < 2.0
    assert "timed out waiting for the server" in message


def test_trickling_body_is_cut_at_the_deadline(http_server: TestServer, client: httpx.Client) -> None:
    url = http_server.add("/trickle", Reply(chunks=itertools.repeat(b"x"), chunk_delay=0.05))
    started = time.monotonic()
    assert fails(client, url, FetchSettings(timeout=0.5)) == f"{url}: the response did not complete within 0.5s"
    assert time.monotonic() - started < 2.0


def test_too_large_content_length_is_rejected_before_reading(http_server: TestServer, client: httpx.Client) -> None:
    url = http_server.add("/big", Reply(body=b"x" * 2_000))
    message = fails(client, url, FetchSettings(max_bytes=1_000))
    assert message == f"{url}: the response is 2,000 bytes, over the 1,000-byte limit"


def test_size_cap_is_enforced_while_streaming_chunked(http_server: TestServer, client: httpx.Client) -> None:
    url = http_server.add("/endless", Reply(chunks=itertools.repeat(b"x" * 1024)))
    message = fails(client, url, FetchSettings(max_bytes=10_000))
    assert message == f"{url}: the response is over the 10,000-byte limit"


def test_size_cap_counts_decoded_bytes_of_a_gzip_stream(http_server: TestServer, client: httpx.Client) -> None:
    zeros = itertools.islice(itertools.repeat(b"\0" * 65536), 100)  # 6.5 MB that gzips to ~7 KB
    url = http_server.add("/bomb", Reply(chunks=zeros, gzip=True))
    assert "over the 100,000-byte limit" in fails(client, url, FetchSettings(max_bytes=100_000))


def test_gzip_body_is_decoded(http_server: TestServer, client: httpx.Client, fixtures_dir: Path) -> None:
    body = (fixtures_dir / "feeds" / "arxiv_rss.xml").read_bytes()
    url = http_server.add("/gz", Reply(body=body, gzip=True))
    assert get(client, url).body == body
    assert "gzip" in http_server.requests[0].headers["accept-encoding"]


def test_broken_gzip_is_a_source_error(http_server: TestServer, client: httpx.Client) -> None:
    url = http_server.add("/badgz", Reply(body=b"this is not gzip", headers={"Content-Encoding": "gzip"}))
    assert fails(client, url).startswith(f"{url}: cannot decode the response")


def test_redirects_are_followed(http_server: TestServer, client: httpx.Client) -> None:
    http_server.add("/old", Reply(status=301, headers={"Location": "/new"}))
    target = http_server.add("/new", Reply(body=b"moved"))
    result = get(client, http_server.url("/old"))
    assert (result.url, result.body) == (target, b"moved")


def test_redirect_loop_is_reported(http_server: TestServer, client: httpx.Client) -> None:
    http_server.add("/a", Reply(status=302, headers={"Location": "/b"}))
    http_server.add("/b", Reply(status=302, headers={"Location": "/a"}))
    url = http_server.url("/a")
    message = fails(client, url)
    assert message == f"{url}: redirect loop ({url} -> {http_server.url('/b')} -> {url})"
    assert http_server.hits("/a") == 1  # not retried


def test_too_many_redirects(http_server: TestServer, client: httpx.Client) -> None:
    for n in range(10):
        http_server.add(f"/r{n}", Reply(status=302, headers={"Location": f"/r{n + 1}"}))
    url = http_server.url("/r0")
    message = fails(client, url, FetchSettings(max_redirects=3))
    assert message == f"{url}: more than 3 redirects (last to {http_server.url('/r4')})"


def test_connection_refused_is_retried_then_reported(client: httpx.Client) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/feed"
    sleeps = Sleeps()
    message = fails(client, url, FetchSettings(timeout=5.0, retries=2), sleeps)
    assert message.startswith(f"{url}: connection failed (")
    assert message.endswith("after 3 attempts")
    assert len(sleeps.waits) == 2


def test_a_connection_reset_mid_body_is_retried_then_reported(http_server: TestServer, client: httpx.Client) -> None:
    url = http_server.add("/reset", Reply(body=b"<rss>" + b"x" * 5000, reset_after=100))
    sleeps = Sleeps()
    message = fails(client, url, FetchSettings(timeout=5.0, retries=1), sleeps)
    assert message == f"{url}: connection broken while reading ([Errno 104] Connection reset by peer) after 2 attempts"
    assert http_server.hits("/reset") == 2


def test_a_name_that_does_not_resolve_is_reported_as_such(client: httpx.Client, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A real resolver failure without leaving the machine: glibc's HOSTALIASES turns the name
    into one no DNS query can be made of, so getaddrinfo fails here, as for an unknown host."""
    aliases = tmp_path / "hostaliases"
    aliases.write_text("digest-test-no-such-host bad..name\n", encoding="utf-8")
    monkeypatch.setenv("HOSTALIASES", str(aliases))
    url = "http://digest-test-no-such-host/feed"
    message = fails(client, url, FetchSettings(timeout=5.0, retries=0))
    assert message.startswith(f"{url}: cannot resolve the host name 'digest-test-no-such-host' (")


def test_bad_url_is_a_source_error(client: httpx.Client) -> None:
    with pytest.raises(SourceError, match=r"^ftp://example\.org/feed: "):
        get(client, "ftp://example.org/feed")


def test_fetch_all_isolates_failures_and_keeps_order() -> None:
    def ok() -> int:
        return 1

    def broken() -> int:
        raise SourceError("https://x.example/feed: HTTP 500 after 4 attempts")

    def buggy() -> int:
        raise KeyError("paper")

    done: list[str] = []
    results = fetch_all(
        [("b", broken), ("a", ok), ("c", buggy)], on_done=lambda name, outcome: done.append(name)
    )
    assert list(results) == ["b", "a", "c"]
    assert results["a"] == 1
    assert str(results["b"]) == "https://x.example/feed: HTTP 500 after 4 attempts"
    assert isinstance(results["c"], SourceError)
    assert str(results["c"]) == "c: unexpected KeyError: 'paper'"
    assert sorted(done) == ["a", "b", "c"]


def test_fetch_all_runs_jobs_concurrently_but_bounded() -> None:
    running = 0
    peak = 0
    lock = threading.Lock()

    def job() -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.2)
        with lock:
            running -= 1

    started = time.monotonic()
    fetch_all([(str(n), job) for n in range(6)], max_workers=3)
    assert peak == 3
    assert time.monotonic() - started < 1.0  # 2 rounds of 0.2 s, not 6


def test_fetch_all_rejects_duplicate_names() -> None:
    with pytest.raises(ValueError):
        fetch_all([("x", lambda: 1), ("x", lambda: 2)])



def test_fetch_all_runs_a_single_job_on_the_calling_thread() -> None:
    def where() -> str:
        return threading.current_thread().name

    def buggy() -> str:
        raise KeyError("paper")

    done: list[str] = []
    assert fetch_all([("only", where)], on_done=lambda name, outcome: done.append(name)) == {"only": threading.current_thread().name}
    assert done == ["only"]
    failed = fetch_all([("only", buggy)])["only"]
    assert isinstance(failed, SourceError) and str(failed) == "only: unexpected KeyError: 'paper'"
    several = fetch_all([("a", where), ("b", where)])
    assert all(name.startswith("digest-fetch") for name in several.values())


def test_a_spooled_fetch_gives_the_body_in_a_file(http_server: TestServer, client: httpx.Client) -> None:
    body = b"<rss>" + b"x" * (3 << 20) + b"</rss>"  # past the in-memory part of the spool
    url = http_server.add("/big", Reply(body=body, headers={"ETag": '"v2"'}))
    result = fetch(client, url, settings=FAST, spool=True)
    assert result.body == b"" and result.file is not None
    try:
        assert result.file.read() == body
    finally:
        result.file.close()
    assert result.validators.etag == '"v2"' and get(client, url).body == body  # without spool: the bytes
    small = fetch(client, http_server.add("/small", Reply(body=b"<rss/>")), settings=FAST, spool=True)
    assert small.file is not None and small.file.read() == b"<rss/>"
    small.file.close()


def test_https_verifies_the_certificate_and_trusts_ssl_cert_file(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, _ = certificate
    with TestServer(tls=certificate) as server:
        url = server.add("/feed", Reply(body=b"<rss/>", headers={"Content-Type": "application/rss+xml"}))
        assert url.startswith("https://127.0.0.1:")
        with make_client(FAST) as client:
            assert "certificate verify failed" in fails(client, url, FetchSettings(timeout=5.0, retries=0))
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the trust store a user points httpx at
        with make_client(FAST) as client:
            assert get(client, url).body == b"<rss/>"
        assert len(server.requests) == 1  # the refused handshake never got to a request


def test_plain_http_and_https_share_one_client(certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, http_server: TestServer) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    with TestServer(tls=certificate) as secure, make_client(FAST) as client:
        plain = http_server.add("/a", Reply(body=b"plain"))
        tls = secure.add("/b", Reply(body=b"secure"))
        assert [get(client, u).body for u in (plain, tls, plain, tls)] == [b"plain", b"secure", b"plain", b"secure"]
        redirect = http_server.add("/to-tls", Reply(status=301, headers={"Location": tls}))
        assert get(client, redirect).url == tls  # a redirect from http:// to https:// goes through the verifying pool


def test_a_proxy_named_in_the_environment_is_used(http_server: TestServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # The test server plays the proxy: it gets the request line with the absolute URL.
    http_server.add("http://papers.invalid/feed", Reply(body=b"<rss/>", headers={"Content-Type": "application/rss+xml"}))
    monkeypatch.setenv("HTTP_PROXY", http_server.base_url)
    with make_client(FAST) as client:
        assert get(client, "http://papers.invalid/feed").body == b"<rss/>"
    assert [seen.path for seen in http_server.requests] == ["http://papers.invalid/feed"]  # never resolved here

"""A real HTTP server on 127.0.0.1 for tests: scripted replies per path, requests recorded.

Use the ``http_server`` fixture (``tests/conftest.py``) or ``with TestServer() as server:``::

    server.add("/feed", Reply(body=b"<rss …>", headers={"Content-Type": "application/rss+xml"}))
    server.add("/flaky", Reply(status=500), Reply(body=b"ok"))    # 500 first, then 200 for ever
    server.add("/slow", Reply(body=b"late", delay=2.0))           # headers only after 2 s
    server.add("/stream", Reply(chunks=iter(lambda: b"x" * 1024, None)))  # chunked, never ends
    server.add("/echo", lambda seen: Reply(body=seen.headers.get("user-agent", "").encode()))
    server.add("/api", lambda seen: Reply(body=seen.body))                 # POST: the request body is seen.body
    server.add("/reset", Reply(body=b"x" * 1000, reset_after=100))  # 100 bytes of 1000, then a TCP reset
    client.get(server.url("/feed")); server.requests  # what arrived, in order

Replies are given in turn; the last one repeats.  Every reply closes its connection, so
tests see one request per connection and a slow reply never holds up the next test.
"""

from __future__ import annotations

import gzip as gzip_module
import socket
import ssl
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType


@dataclass
class Reply:
    """One scripted HTTP response."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before sending anything
    chunks: Iterable[bytes] | None = None  # sent with chunked encoding, no Content-Length
    chunk_delay: float = 0.0  # seconds between chunks
    gzip: bool = False  # compress the body (or each chunk) and say Content-Encoding: gzip
    reset_after: int | None = None  # send this many bytes of the body, then reset the connection (RST)


@dataclass(frozen=True)
class Seen:
    """One request as the server received it (header names lower-cased)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""  # a POST's body (Content-Length bytes)


Responder = Reply | Callable[[Seen], Reply]


class TestServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 and a free port, serving scripted replies."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    def __init__(self, tls: tuple[Path, Path] | None = None) -> None:
        """``tls``: a (certificate, key) pair to serve HTTPS with instead of plain HTTP."""
        self.requests: list[Seen] = []
        self._routes: dict[str, list[Responder]] = {}
        self._served: dict[str, int] = {}
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self.scheme = "http"
        if tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
            self.scheme = "https"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="test-http", daemon=True
        )

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` (``https://`` when serving TLS)."""
        host, port = self._httpd.server_address[:2]
        return f"{self.scheme}://{host!s}:{port}"

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` on this server."""
        return self.base_url + path

    def add(self, path: str, *replies: Responder) -> str:
        """Serve ``replies`` in turn at ``path`` (the last one repeats); return its URL."""
        if not replies:
            raise ValueError("add() needs at least one reply")
        with self._lock:
            self._routes[path] = list(replies)
            self._served[path] = 0
        return self.url(path)

    def add_file(self, path: str, file: Path, content_type: str = "application/xml") -> str:
        """Serve a file's bytes at ``path``; return its URL."""
        return self.add(path, Reply(body=file.read_bytes(), headers={"Content-Type": content_type}))

    def hits(self, path: str) -> int:
        """How many requests arrived for ``path`` (query string ignored)."""
        return sum(1 for seen in self.requests if seen.path.split("?", 1)[0] == path)

    def start(self) -> TestServer:
        """Start serving in a daemon thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (replies still sleeping are abandoned)."""
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> TestServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _reply_for(self, seen: Seen) -> Reply:
        path = seen.path.split("?", 1)[0]
        with self._lock:
            self.requests.append(seen)
            replies = self._routes.get(path)
            if replies is None:
                return Reply(status=404, body=b"no such test route\n")
            index = min(self._served[path], len(replies) - 1)
            self._served[path] += 1
        chosen = replies[index]
        return chosen(seen) if callable(chosen) else chosen


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    owner: TestServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - the http.server naming scheme
        self._serve()

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve()

    def do_POST(self) -> None:  # noqa: N802
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0) if self.command == "POST" else 0
        body = self.rfile.read(length) if length else b""
        seen = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        reply = self.server.owner._reply_for(seen)
        self.close_connection = True
        try:
            if reply.delay:
                time.sleep(reply.delay)
            self.log_request(reply.status)
            self.send_response_only(reply.status)
            given = {name.lower() for name in reply.headers}
            if "date" not in given:
                self.send_header("Date", self.date_time_string())
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if reply.gzip:
                self.send_header("Content-Encoding", "gzip")
            self.send_header("Connection", "close")
            if reply.chunks is None:
                body = gzip_module.compress(reply.body) if reply.gzip else reply.body
                if "Content-Length" not in reply.headers:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if reply.reset_after is not None:
                    self.wfile.write(body[: reply.reset_after])
                    self.wfile.flush()
                    # SO_LINGER 0: closing sends a reset, not a clean end of stream
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    return
                if self.command != "HEAD":
                    self.wfile.write(body)
            else:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self._send_chunks(reply)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout or size-cap test): nothing to report

    def _send_chunks(self, reply: Reply) -> None:
        assert reply.chunks is not None
        compressor = _GzipStream() if reply.gzip else None
        for chunk in reply.chunks:
            data = compressor.feed(chunk) if compressor else chunk
            if data:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()
            if reply.chunk_delay:
                time.sleep(reply.chunk_delay)
        if compressor:
            tail = compressor.finish()
            self.wfile.write(f"{len(tail):x}\r\n".encode() + tail + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - base signature
        pass  # keep pytest output clean


class _GzipStream:
    """Gzip a body chunk by chunk, flushing after each so the client sees data as it comes."""

    def __init__(self) -> None:
        self._compressor = zlib.compressobj(wbits=31)  # 31 = gzip container

    def feed(self, chunk: bytes) -> bytes:
        return self._compressor.compress(chunk) + self._compressor.flush(zlib.Z_SYNC_FLUSH)

    def finish(self) -> bytes:
        return self._compressor.flush()

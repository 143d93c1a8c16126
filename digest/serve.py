"""Serve a folder of rendered files on 127.0.0.1 (``digest preview --serve``)."""

from __future__ import annotations

import functools
import http.server
from collections.abc import Callable
from pathlib import Path


def make_server(folder: Path, port: int = 0, host: str = "127.0.0.1") -> http.server.ThreadingHTTPServer:
    """An HTTP server for ``folder`` on ``host:port`` (port 0: any free port); call serve_forever()."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    return http.server.ThreadingHTTPServer((host, port), handler)


def serve_folder(folder: Path, port: int, announce: Callable[[str], None]) -> None:
    """Serve ``folder`` until interrupted, after announcing its URL."""
    with make_server(folder, port) as server:
        host, bound = server.server_address[:2]
        announce(f"http://{host!s}:{bound}/")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's name
        pass

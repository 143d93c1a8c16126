"""Shared pytest fixtures: fixture paths and a real HTTP server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.httpserver import TestServer

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def http_server() -> Iterator[TestServer]:
    """A started :class:`tests.httpserver.TestServer`, stopped after the test."""
    with TestServer() as server:
        yield server


@pytest.fixture
def fixtures_dir() -> Path:
    """The ``tests/fixtures`` folder."""
    return FIXTURES

"""The one outside edge of :mod:`digest.llm`: ``POST <base_url>/chat/completions``, the
OpenAI chat-completions protocol that hosted services and local servers (Ollama, llama.cpp's
server, vLLM) all speak, over ``httpx`` (already a dependency; no client package needed).

Failures are caught by category::

    LlmError                a request that gave no usable answer
    ├── Unreachable         no connection, a timeout or a broken response: stop asking this run
    ├── RateLimited         HTTP 429; ``retry_after``: the seconds the server asked to wait, or None
    ├── ServerError         HTTP 5xx, or another status that is not 2xx
    └── BadAnswer           a 2xx that is no chat completion, or whose content is off the schema

The API key comes from the environment variable ``[llm] api_key_env`` names, never the file.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Sequence
from typing import Any

import httpx

from digest import __version__
from digest.config import LlmConfig


class LlmError(Exception):
    """A request that gave no usable answer; ``reason`` is a few words for the warning line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Unreachable(LlmError):
    """No connection, a timeout or a broken response."""


class RateLimited(LlmError):
    """HTTP 429."""

    def __init__(self, reason: str, retry_after: float | None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class ServerError(LlmError):
    """HTTP 5xx or another status that is not 2xx."""


class BadAnswer(LlmError):
    """A 2xx response that is no chat completion, or whose content is unusable."""


def api_key(settings: LlmConfig, environ: dict[str, str]) -> str | None:
    """The API key from the variable ``api_key_env`` names (None when unset or empty: a local server),
    without surrounding whitespace; an :class:`LlmError` naming the variable, never showing the
    key, when it is no word of printable ASCII (no HTTP header could carry it)."""
    key = environ.get(settings.api_key_env, "").strip()
    if key and not (key.isascii() and key.isprintable() and " " not in key):
        raise LlmError(f"the API key in ${settings.api_key_env} is not one word of printable ASCII")
    return key or None


class ChatClient:
    """Posts chat completions to one endpoint; use ``async with`` to close its connections."""

    def __init__(self, settings: LlmConfig, key: str | None, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        """``transport`` replaces the network (tests use the real thing on 127.0.0.1 instead)."""
        headers = {"User-Agent": f"digest/{__version__}", "Accept": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self.model = settings.model
        self._url = settings.base_url.rstrip("/") + "/chat/completions"
        self._client = httpx.AsyncClient(
            headers=headers,
            timeout=httpx.Timeout(settings.timeout),
            limits=httpx.Limits(max_connections=settings.max_concurrency),
            transport=transport,  # (the *_proxy variables apply, as for feeds; NO_PROXY for a local server)
        )

    async def __aenter__(self) -> ChatClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.aclose()

    async def complete(self, messages: Sequence[dict[str, str]], *, timeout: float) -> str:
        """The content of the model's reply to ``messages``, asking for a JSON object; an
        :class:`LlmError` when there is none within ``timeout`` seconds."""
        body = {"model": self.model, "messages": list(messages), "temperature": 0, "response_format": {"type": "json_object"}}
        try:
            response = await self._client.post(self._url, json=body, timeout=max(timeout, 0.001))
        except httpx.TimeoutException:
            raise Unreachable("timed out") from None
        except httpx.HTTPError as exc:
            raise Unreachable(f"no answer ({type(exc).__name__})") from None
        if response.status_code == 429:
            raise RateLimited("HTTP 429 (rate limited)", retry_after(response.headers.get("retry-after")))
        if not response.is_success:
            raise ServerError(f"HTTP {response.status_code}")
        return _content(response)


def _content(response: httpx.Response) -> str:
    """``choices[0].message.content`` of a chat completion."""
    try:
        data: Any = json.loads(response.content)
        content = data["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise BadAnswer("malformed response (not a chat completion)") from None
    if not isinstance(content, str):
        raise BadAnswer("malformed response (no text content)")
    return content


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))

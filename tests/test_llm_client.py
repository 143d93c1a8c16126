"""The chat-completions edge (digest/llm/client.py) against a real server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json

import pytest

from digest.config import LlmConfig
from digest.llm.client import BadAnswer, ChatClient, LlmError, RateLimited, ServerError, api_key, retry_after
from tests.chatserver import chat_server, completion
from tests.httpserver import Reply, TestServer


def complete(settings: LlmConfig, key: str | None) -> str:
    async def go() -> str:
        async with ChatClient(settings, key) as client:
            return await client.complete([{"role": "user", "content": "hi"}], timeout=5)

    return asyncio.run(go())


def test_the_request_is_openai_chat_completions_and_the_key_comes_from_the_environment(http_server: TestServer) -> None:
    settings = LlmConfig(enabled=True, base_url=chat_server(http_server, completion('{"papers": []}')) + "/", model="m-1")
    assert api_key(settings, {"DIGEST_LLM_API_KEY": "sk-test"}) == "sk-test"
    assert api_key(settings, {"DIGEST_LLM_API_KEY": ""}) is None and api_key(settings, {}) is None
    assert complete(settings, "sk-test") == '{"papers": []}'
    assert complete(settings, None) == '{"papers": []}'
    first, second = http_server.requests
    assert first.method == "POST" and first.path == "/v1/chat/completions"
    assert first.headers["authorization"] == "Bearer sk-test" and "authorization" not in second.headers
    body = json.loads(first.body)
    assert body["model"] == "m-1" and body["messages"] == [{"role": "user", "content": "hi"}]
    assert body["response_format"] == {"type": "json_object"} and body["temperature"] == 0


@pytest.mark.parametrize(
    ("reply", "error", "reason"),
    [
        (Reply(status=429, headers={"Retry-After": "7"}), RateLimited, "HTTP 429 (rate limited)"),
        (Reply(status=502), ServerError, "HTTP 502"),
        (Reply(status=401, body=b'{"error": "bad key"}'), ServerError, "HTTP 401"),
        (Reply(body=b"<html>gateway</html>"), BadAnswer, "malformed response (not a chat completion)"),
        (Reply(body=b'{"choices": [{"message": {"content": null}}]}'), BadAnswer, "malformed response (no text content)"),
    ],
)
def test_failures_by_category(http_server: TestServer, reply: Reply, error: type[Exception], reason: str) -> None:
    settings = LlmConfig(enabled=True, base_url=chat_server(http_server, reply), model="m")
    with pytest.raises(error) as caught:
        complete(settings, None)
    assert caught.value.reason == reason  # type: ignore[attr-defined]
    if isinstance(caught.value, RateLimited):
        assert caught.value.retry_after == 7.0


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert retry_after("120") == 120.0
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0
    assert retry_after(None) is None and retry_after("soon") is None


def test_asking_from_code_that_runs_an_event_loop_works(http_server: TestServer) -> None:
    from digest.llm.ask import ask
    from digest.llm.prompt import Item
    from tests.chatserver import good

    settings = LlmConfig(enabled=True, base_url=chat_server(http_server, good()), model="m")
    batches = [[Item("1.1", "Four-Bit Weights", "We quantize.")]]

    async def inside_a_loop() -> object:
        return ask(settings, None, batches, None, seconds=5)

    asked = asyncio.run(inside_a_loop())
    assert asked.answers["1.1"].summary == "Shows Four-Bit Weights." and asked.requests == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize("key", ["sk-S\u00c9CRET-123", "sk-SECRET\x00-123", "sk-SECRET 123"])
def test_a_key_that_cannot_travel_in_a_header_is_named_by_its_variable_never_shown(key: str) -> None:
    """A key with a character no HTTP header carries fails before any request, and the reason
    names the variable: nothing of the key (not even the character at fault) reaches a warning."""
    settings = LlmConfig(enabled=True, model="m")
    with pytest.raises(LlmError) as caught:
        api_key(settings, {"DIGEST_LLM_API_KEY": key})
    assert caught.value.reason == "the API key in $DIGEST_LLM_API_KEY is not one word of printable ASCII"
    assert api_key(settings, {"DIGEST_LLM_API_KEY": " sk-SECRET-123\n"}) == "sk-SECRET-123"  # as a file gives it

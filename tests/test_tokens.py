"""Signed tokens: what a link carries instead of an address."""

from __future__ import annotations

import base64
import datetime as dt

import pytest

from digest.tokens import TOKEN_LENGTH, Claims, Signer, TokenError

NOW = dt.datetime(2025, 3, 14, 7, 0, tzinfo=dt.timezone.utc)
SIGNER = Signer([b"first-secret-0123456789"])


def reason(token: str, purpose: str = "unsubscribe", *, signer: Signer = SIGNER, now: dt.datetime = NOW) -> str:
    with pytest.raises(TokenError) as caught:
        signer.verify(token, purpose, now=now)
    return caught.value.reason


def test_a_token_round_trips_and_is_url_safe_and_fixed_length() -> None:
    token = SIGNER.subscriber_token("unsubscribe", 12345, 7)
    assert len(token) == TOKEN_LENGTH and token.replace("-", "").replace("_", "").isalnum()
    assert SIGNER.verify(token, "unsubscribe", now=NOW) == Claims("unsubscribe", 1, 12345, 7, 0)
    assert len(SIGNER.recipient_token("preferences", "reader@example.org")) == TOKEN_LENGTH
    assert b"reader" not in base64.urlsafe_b64decode(SIGNER.recipient_token("preferences", "reader@example.org"))


def test_forged_tampered_expired_and_misused_tokens_are_refused() -> None:
    token = SIGNER.subscriber_token("confirm", 1, 1, expires=NOW + dt.timedelta(hours=48))
    assert SIGNER.verify(token, "confirm", now=NOW + dt.timedelta(hours=47)).subject == 1
    assert reason(token, "confirm", now=NOW + dt.timedelta(hours=49)) == "expired"
    assert reason(token, "unsubscribe") == "purpose"  # a confirmation link cannot unsubscribe
    raw = bytearray(base64.urlsafe_b64decode(token))
    raw[6] ^= 1  # another subscriber id
    assert reason(base64.urlsafe_b64encode(bytes(raw)).decode(), "confirm") == "forged"
    other = Signer([b"another-secret-0123456789"])
    assert reason(other.subscriber_token("confirm", 1, 1), "confirm") == "forged"
    assert reason("short") == reason("!" * TOKEN_LENGTH) == "malformed"
    raw[0] = 2  # an unknown version
    assert reason(base64.urlsafe_b64encode(bytes(raw)).decode(), "confirm") == "malformed"


def test_a_rotated_secret_still_verifies_the_links_already_sent() -> None:
    old = SIGNER.subscriber_token("unsubscribe", 5, 2)
    rotated = Signer([b"the-new-secret-0123456789", b"first-secret-0123456789"])
    assert rotated.verify(old, "unsubscribe", now=NOW).subject == 5
    assert reason(rotated.subscriber_token("unsubscribe", 5, 2)) == "forged"  # the old list alone does not know the new one

"""Signed tokens: what every personal link carries instead of an address.

A token is 36 bytes, base64url without padding (48 characters, the same length for everybody,
made only of ``A-Z a-z 0-9 - _``)::

    version (1) | purpose (1) | kind (1) | subject (8) | epoch (4) | expires (4) | HMAC-SHA256 (17)

``version`` is 1.  ``purpose`` says what the link may do (unsubscribe, preferences, confirm): a
preferences token cannot confirm an address.  ``kind`` is a subscriber in the store (``subject``
its id) or a recipient of the config file (``subject`` a keyed hash of the address: the
address never appears in a link).  ``epoch`` is the subscriber's at signing time: subscribing
again or confirming changes it, and links of an older epoch are refused.  ``expires`` is a Unix
time, 0 for never (an unsubscribe link must work as long as the mail exists).  The MAC covers the
first 19 bytes, with the first secret of the list; every secret of the list is tried when
verifying, so a secret can be rotated without breaking the links already sent.

The secret comes from the environment variable ``[serve] secret_env`` names (several secrets
separated by spaces: the first signs).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from digest.config import Config
from digest.errors import ConfigError

VERSION = 1
PURPOSES = {"unsubscribe": 1, "preferences": 2, "confirm": 3}
SUBSCRIBER, RECIPIENT = 1, 2
_HEAD = struct.Struct(">BBBQII")
_MAC_BYTES = 17
TOKEN_LENGTH = 48
MIN_SECRET_BYTES = 16


class TokenError(Exception):
    """A token that cannot be used; ``reason`` is one of malformed, forged, expired, purpose."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Claims:
    """What a valid token says."""

    purpose: str
    kind: int
    subject: int
    epoch: int
    expires: int  # Unix time, 0 for never


class Signer:
    """Signs and verifies tokens with a list of secrets (the first signs, any verifies)."""

    def __init__(self, secrets: Sequence[bytes]) -> None:
        if not secrets:
            raise ValueError("at least one secret")
        self._keys = tuple(secrets)

    def sign(self, claims: Claims) -> str:
        """The token for ``claims``."""
        head = _HEAD.pack(VERSION, PURPOSES[claims.purpose], claims.kind, claims.subject, claims.epoch, claims.expires)
        mac = hmac.new(self._keys[0], head, hashlib.sha256).digest()[:_MAC_BYTES]
        return base64.urlsafe_b64encode(head + mac).decode("ascii")

    def subscriber_token(self, purpose: str, subscriber_id: int, epoch: int, *, expires: dt.datetime | None = None) -> str:
        """A token about subscriber ``subscriber_id`` of ``epoch``."""
        return self.sign(Claims(purpose, SUBSCRIBER, subscriber_id, epoch, _unix(expires)))

    def recipient_token(self, purpose: str, address: str) -> str:
        """A token about a config recipient (a keyed hash of the address, never the address)."""
        return self.sign(Claims(purpose, RECIPIENT, self.recipient_subject(address), 0, 0))

    def recipient_subject(self, address: str) -> int:
        """The 64-bit keyed hash that stands for a config recipient's address."""
        digest = hmac.new(self._keys[0], b"recipient\0" + address.strip().lower().encode("utf-8"), hashlib.sha256).digest()
        return int.from_bytes(digest[:8], "big")

    def verify(self, token: str, purpose: str, *, now: dt.datetime) -> Claims:
        """The claims of a genuine, unexpired token for ``purpose``; TokenError otherwise."""
        if len(token) != TOKEN_LENGTH:
            raise TokenError("malformed")
        try:
            raw = base64.urlsafe_b64decode(token.encode("ascii"))
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raise TokenError("malformed") from None
        head, mac = raw[: _HEAD.size], raw[_HEAD.size :]
        if len(mac) != _MAC_BYTES or head[0] != VERSION:
            raise TokenError("malformed")
        if not any(hmac.compare_digest(hmac.new(key, head, hashlib.sha256).digest()[:_MAC_BYTES], mac) for key in self._keys):
            raise TokenError("forged")
        _, number, kind, subject, epoch, expires = _HEAD.unpack(head)
        if PURPOSES.get(purpose) != number:
            raise TokenError("purpose")
        if expires and now.timestamp() > expires:
            raise TokenError("expired")
        return Claims(purpose, kind, subject, epoch, expires)


def _unix(moment: dt.datetime | None) -> int:
    return int(moment.timestamp()) if moment is not None else 0


def secrets_from_environment(config: Config) -> list[bytes] | None:
    """The secrets in ``[serve] secret_env``'s variable (None when it is unset or empty)."""
    value = os.environ.get(config.serve.secret_env, "")
    parts = value.split()
    return [p.encode("utf-8") for p in parts] or None


def load_signer(config: Config, *, required: bool) -> Signer | None:
    """The signer for the configured secret; without one, None, or a ConfigError when ``required``."""
    secrets = secrets_from_environment(config)
    name = config.serve.secret_env
    if secrets is None:
        if not required:
            return None
        raise ConfigError(
            f"serve.secret_env: the environment variable {name} is not set; it must hold the secret that signs "
            "subscribers' links",
            hint=f"export {name}=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))') "
            "(the same value for digest serve and digest run/schedule)",
        )
    short = [s for s in secrets if len(s) < MIN_SECRET_BYTES]
    if short:
        raise ConfigError(f"serve.secret_env: the secret in {name} is shorter than {MIN_SECRET_BYTES} bytes")
    return Signer(secrets)

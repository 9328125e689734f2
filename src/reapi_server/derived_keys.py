"""Keys for each purpose, derived from the fleet's one secret (`fleet_secret`): a key leaked
or misused in one place says nothing about another."""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["derive_key", "keyed_digest"]


def derive_key(root: bytes, purpose: str) -> bytes:
    """HMAC-SHA256(root, "reapi/" + purpose): csrf, throttle, totp-encryption, ..."""
    return hmac.new(root, b"reapi/" + purpose.encode(), hashlib.sha256).digest()


def keyed_digest(key: bytes, value: str) -> str:
    """HMAC-SHA256 of `value` under `key`, hex."""
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()

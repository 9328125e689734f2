"""Per-recipient unsubscribe tokens for newsletters (RFC 8058 one-click links).

A token is `<user id>.<HMAC(unsubscribe key, user id)>`: nothing is stored, it cannot be guessed
or made for another user without the installation's secret, and each user's differs. It only
turns a newsletter off (it signs nobody in), so it does not expire: an old newsletter's link
keeps working, as RFC 8058 expects.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from ..derived_keys import derive_key

__all__ = ["unsubscribe_key", "unsubscribe_token", "user_of_token"]

_SHAPE = re.compile(r"^(user_[0-9a-f]{1,64})\.([A-Za-z0-9_-]{43})$")


def unsubscribe_key(root: bytes) -> bytes:
    """The tokens' key, from the installation's secret (the web half and the CLI agree)."""
    return derive_key(root, "unsubscribe")


def _mac(key: bytes, user_id: str) -> str:
    digest = hmac.new(key, b"unsubscribe:" + user_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def unsubscribe_token(key: bytes, user_id: str) -> str:
    return f"{user_id}.{_mac(key, user_id)}"


def user_of_token(key: bytes, token: str) -> str | None:
    """The user a token was made for, or None when it was not made with `key`."""
    match = _SHAPE.match(token)
    if match is None:
        return None
    user_id, mac = match.groups()
    return user_id if hmac.compare_digest(mac, _mac(key, user_id)) else None

"""Backup codes: ten single-use codes a person keeps for when their authenticator app is out of
reach. Each is 10 characters of a 32-letter alphabet without look-alikes (50 random bits),
shown once as "xxxxx-xxxxx". Stored as a keyed hash (HMAC under a key derived from the
installation secret, bound to the user's id): with that much entropy a slow hash adds nothing,
and a stolen table without the key reveals no code."""

from __future__ import annotations

import secrets

from ..derived_keys import keyed_digest

__all__ = ["COUNT", "digest", "generate", "normalise"]

COUNT = 10
LENGTH = 10
#: a to z without l and o, and 2 to 9 (no 0 or 1): 32 characters, none mistaken for another.
ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"


def generate() -> list[str]:
    codes = []
    for _ in range(COUNT):
        raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def normalise(code: str) -> str | None:
    """The code as stored (lower case, no spaces or hyphens); None if it cannot be one."""
    raw = "".join(code.split()).replace("-", "").lower()
    if len(raw) != LENGTH or any(c not in ALPHABET for c in raw):
        return None
    return raw


def digest(key: bytes, user_id: str, code: str) -> str:
    return keyed_digest(key, f"{user_id}:{code}")

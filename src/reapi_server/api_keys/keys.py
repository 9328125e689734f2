"""The API key format: `rk_live_<43 base62 chars: 32 random bytes>_<6 base62 chars: CRC32>`;
management keys are `rk_mgmt_...`, the same otherwise (the prefix is part of the checksum).

The checksum lets the server refuse a mistyped or made-up key without a database lookup, and lets
secret scanners recognise real keys. Keys carry 256 bits of entropy, so a plain SHA-256 is a safe
way to store them (no password-style stretching needed).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import zlib
from dataclasses import dataclass

__all__ = [
    "KEY_PREFIX",
    "MANAGEMENT_PREFIX",
    "PREFIXES",
    "IssuedKey",
    "hash_key",
    "is_well_formed",
    "new_key",
]

KEY_PREFIX = "rk_live_"
MANAGEMENT_PREFIX = "rk_mgmt_"
#: Key kind → the prefix its keys carry.
PREFIXES = {"model": KEY_PREFIX, "management": MANAGEMENT_PREFIX}
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_RANDOM_BYTES = 32
_BODY_LENGTH = 43  # ceil(256 / log2(62))
_CHECK_LENGTH = 6  # ceil(32 / log2(62))
_SHAPE = re.compile(
    rf"^(rk_live_|rk_mgmt_)([0-9A-Za-z]{{{_BODY_LENGTH}}})_([0-9A-Za-z]{{{_CHECK_LENGTH}}})$"
)


def _base62(number: int, width: int) -> str:
    digits = []
    while number:
        number, remainder = divmod(number, 62)
        digits.append(_ALPHABET[remainder])
    return "".join(reversed(digits)).rjust(width, "0")


def _checksum(prefix: str, body: str) -> str:
    return _base62(zlib.crc32(f"{prefix}{body}".encode()), _CHECK_LENGTH)


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A freshly issued key: `plaintext` is shown once and never stored."""

    plaintext: str
    key_hash: str
    last4: str

    def __repr__(self) -> str:
        return f"IssuedKey(last4={self.last4!r})"


def new_key(kind: str = "model") -> IssuedKey:
    prefix = PREFIXES[kind]
    body = _base62(int.from_bytes(secrets.token_bytes(_RANDOM_BYTES), "big"), _BODY_LENGTH)
    plaintext = f"{prefix}{body}_{_checksum(prefix, body)}"
    return IssuedKey(plaintext, hash_key(plaintext), plaintext[-4:])


def is_well_formed(candidate: str) -> bool:
    """Prefix, length, alphabet and checksum: all checked without touching the database."""
    match = _SHAPE.match(candidate)
    return match is not None and secrets.compare_digest(
        match.group(3), _checksum(match.group(1), match.group(2))
    )


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()

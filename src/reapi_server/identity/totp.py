"""The TOTP second factor (RFC 6238: six digits, 30-second steps, SHA-1, as every authenticator
app reads an `otpauth://` URI). Secrets are stored sealed with AES-GCM under a key derived from
the installation secret, with the user's id as associated data: a sealed secret copied onto
another user's row does not open.

A code is accepted for the current step or one step either side (clock drift), and only for a
step later than the last one accepted: the same code never works twice.

cryptography (about 6 MiB resident) is imported when a secret is first sealed or opened, not
with this module: every gateway process builds the sign-in service, few ever see a second
factor (issue 15)."""

from __future__ import annotations

import base64
import hmac
import os
import re
from functools import cached_property
from typing import TYPE_CHECKING

import pyotp

from reapi.core import translated

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "PERIOD",
    "SecretBox",
    "matching_step",
    "new_secret",
    "provisioning_uri",
    "step_at",
]

PERIOD = 30
#: Steps accepted either side of the current one.
DRIFT = 1
_CODE = re.compile(r"\d{6}")
_VERSION = "v1."


def new_secret() -> str:
    """160 random bits in base32 (RFC 4226's recommended length)."""
    return pyotp.random_base32(32)


def step_at(now: float) -> int:
    return int(now // PERIOD)


def normalise_code(code: str) -> str | None:
    """Six digits, once spaces are taken out (apps show "123 456"); None if not that shape."""
    digits = "".join(code.split())
    return digits if _CODE.fullmatch(digits) else None


def matching_step(secret: str, code: str, now: float, *, after: int | None) -> int | None:
    """The step whose code `code` is, within the drift around `now` and later than `after`;
    None when it matches none (wrong, too old, or used already)."""
    digits = normalise_code(code)
    if digits is None:
        return None
    totp = pyotp.TOTP(secret, interval=PERIOD)
    current = step_at(now)
    for step in range(current - DRIFT, current + DRIFT + 1):
        if after is not None and step <= after:
            continue
        if hmac.compare_digest(totp.generate_otp(step), digits):
            return step
    return None


def provisioning_uri(secret: str, *, account: str, issuer: str) -> str:
    return pyotp.TOTP(secret, interval=PERIOD).provisioning_uri(name=account, issuer_name=issuer)


class SecretBox:
    """Seals TOTP secrets for the database: "v1." + base64url(nonce ‖ AES-256-GCM ciphertext)."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    @cached_property
    def _aead(self) -> AESGCM:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        return AESGCM(self._key)

    @staticmethod
    def _bound_to(user_id: str) -> bytes:
        return b"reapi/totp/" + user_id.encode()

    def seal(self, user_id: str, secret: str) -> str:
        nonce = os.urandom(12)
        sealed = nonce + self._aead.encrypt(nonce, secret.encode(), self._bound_to(user_id))
        return _VERSION + base64.urlsafe_b64encode(sealed).decode()

    def open(self, user_id: str, sealed: str) -> str:
        """The secret; ValueError if the value was altered, moved to another user or sealed
        under another key."""
        if not sealed.startswith(_VERSION):
            raise ValueError("unknown sealed secret format")
        raw = base64.urlsafe_b64decode(sealed[len(_VERSION) :])
        from cryptography.exceptions import InvalidTag

        plain = translated(
            lambda: self._aead.decrypt(raw[:12], raw[12:], self._bound_to(user_id)),
            InvalidTag,
            lambda _: ValueError("the sealed secret does not open"),
        )
        return plain.decode()

"""A key's signing secret, derived rather than stored: HMAC(webhook key, key id, salt), where
the webhook key is derived from the fleet's secret (`derived_keys`, `fleet_secret`).

The gateway must sign every delivery, so the secret must be at hand; deriving it from the
fleet's secret, the key id and a random salt kept on the key's row means the database never
holds it, and a new salt is a new secret (a rotation). Changing the fleet's secret changes every
key's webhook secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from reapi.webhooks import SECRET_PREFIX, Webhook

from ..derived_keys import derive_key

__all__ = ["KeySalts", "derive_secret", "new_salt", "signature_header"]


def new_salt() -> str:
    return secrets.token_hex(16)


def derive_secret(fleet_secret: bytes, key_id: str, salt: str) -> str:
    """`whsec_` + base64 of 32 bytes (the spec asks for 24 to 64)."""
    message = key_id.encode() + b"\0" + salt.encode()
    digest = hmac.new(derive_key(fleet_secret, "webhook-signing"), message, hashlib.sha256)
    return SECRET_PREFIX + base64.b64encode(digest.digest()).decode()


@dataclass(frozen=True, slots=True)
class KeySalts:
    """What a key's row says about its signing secrets (salts are not secrets)."""

    key_id: str
    salt: str
    previous_salt: str | None
    rotated_at: float | None

    def secrets(self, fleet_secret: bytes, now: float, overlap: float) -> list[str]:
        """The secrets that sign now: the current one, and the previous one for `overlap`
        seconds after a rotation (receivers still holding it keep verifying)."""
        current = [derive_secret(fleet_secret, self.key_id, self.salt)]
        recent = self.rotated_at is not None and now - self.rotated_at < overlap
        if self.previous_salt and recent:
            current.append(derive_secret(fleet_secret, self.key_id, self.previous_salt))
        return current


def signature_header(signing: list[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """`webhook-signature`: one `v1,<base64>` per secret, space-separated."""
    return " ".join(Webhook(secret).sign(msg_id, timestamp, body) for secret in signing)

"""Pages of an account's keys: those not revoked first, then the revoked ones, each newest
first. A cursor names the last key of a page, so a key made or revoked meanwhile neither repeats
nor hides a key of the next page (a key revoked meanwhile moves to the revoked part)."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["KeyCursor"]

_PARTS = {"a": False, "r": True}


@dataclass(frozen=True, slots=True)
class KeyCursor:
    revoked: bool
    created_at: float
    id: str

    def encode(self) -> str:
        return f"{'r' if self.revoked else 'a'}~{self.created_at!r}~{self.id}"

    @classmethod
    def decode(cls, text: str) -> KeyCursor | None:
        """None for anything that is not a cursor this module wrote."""
        if len(text) > 100:
            return None
        part, _, rest = text.partition("~")
        at, _, key_id = rest.partition("~")
        try:
            created_at = float(at)
        except ValueError:
            return None
        if part not in _PARTS or not math.isfinite(created_at):
            return None
        if not key_id or not key_id.isascii() or not key_id.replace("_", "").isalnum():
            return None
        return cls(_PARTS[part], created_at, key_id)

    def as_tuple(self) -> tuple[bool, float, str]:
        return (self.revoked, self.created_at, self.id)

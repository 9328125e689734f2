"""Identifiers: random, prefixed by kind, never derived from user data."""

from __future__ import annotations

import secrets

__all__ = ["new_id"]


def new_id(prefix: str, nbytes: int = 12) -> str:
    return f"{prefix}_{secrets.token_hex(nbytes)}"

"""Who performed an admin action: a signed-in admin (web), or whoever ran the command line on
the server (who already holds the database: the log names the channel, not a person)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Actor"]


@dataclass(frozen=True, slots=True)
class Actor:
    user_id: str | None
    via: Literal["web", "cli"]

    @classmethod
    def admin(cls, user_id: str) -> Actor:
        return cls(user_id, "web")

    @classmethod
    def cli(cls) -> Actor:
        return cls(None, "cli")

"""Server-side web sessions. The cookie holds 256 random bits; the database keeps only their
SHA-256, so a copy of the database signs nobody in. A session ends when idle too long or at its
absolute end, whichever comes first; a new id is made at sign-in and at every privilege change
(the old one ends), so an id planted before sign-in is worth nothing after it."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from ..config import Settings
from ..models import User, WebSession
from . import repository
from .user_agents import describe

__all__ = ["PENDING_SECONDS", "Client", "SessionPolicy", "find", "hash_token", "start"]

DAY = 86_400.0
#: How long a sign-in waits for its second factor.
PENDING_SECONDS = 10 * 60.0

_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")
#: What a Client keeps of a User-Agent (in memory: the device fingerprint and the session's
#: browser name are derived from it; the User-Agent itself is never stored).
_USER_AGENT_CHARS = 200


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    idle_seconds: float = 7 * DAY
    absolute_seconds: float = 30 * DAY
    #: `last_seen_at` is written at most this often (not on every page).
    touch_seconds: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings) -> SessionPolicy:
        return cls(
            idle_seconds=settings.session_idle_days * DAY,
            absolute_seconds=settings.session_max_days * DAY,
        )


@dataclass(frozen=True, slots=True)
class Client:
    """Where a request came from, as shown in the sessions list."""

    address: str = ""
    user_agent: str = ""

    def trimmed(self) -> Client:
        return Client(self.address[:64], self.user_agent[:_USER_AGENT_CHARS])


def hash_token(token: str) -> str | None:
    if _SHAPE.fullmatch(token) is None:
        return None
    return hashlib.sha256(token.encode()).hexdigest()


async def start(
    session: AsyncSession,
    user_id: str,
    client: Client,
    policy: SessionPolicy,
    now: float,
    *,
    replacing: str | None = None,
    awaiting_second_factor: bool = False,
) -> tuple[str, WebSession]:
    """A new session (its cookie value and row). `replacing`: the cookie value of the session
    this browser had, which ends here, whoever it belonged to. `awaiting_second_factor`: a
    pending sign-in, good for the code page only and for minutes."""
    if replacing is not None and (old := hash_token(replacing)) is not None:
        await repository.delete_sessions(session, token_hash=old)
    token = secrets.token_urlsafe(32)
    client = client.trimmed()
    row = await repository.insert_session(
        session,
        token_hash=hashlib.sha256(token.encode()).hexdigest(),
        user_id=user_id,
        now=now,
        expires_at=now + (PENDING_SECONDS if awaiting_second_factor else policy.absolute_seconds),
        client_address=client.address,
        browser=describe(client.user_agent),  # the name only: the policy's "browser name"
        awaiting_second_factor=awaiting_second_factor,
    )
    return token, row


async def find(
    session: AsyncSession, token: str, policy: SessionPolicy, now: float
) -> tuple[WebSession, User] | None:
    """The live session behind a cookie value, with its user; None when unknown, ended,
    expired (idle or absolute) or its user is disabled."""
    token_hash = hash_token(token)
    if token_hash is None:
        return None
    found = await repository.find_session(session, token_hash)
    if found is None:
        return None
    row, user = found
    if row.expires_at <= now or row.last_seen_at + policy.idle_seconds <= now:
        return None
    if user.disabled_at is not None:
        return None
    return row, user

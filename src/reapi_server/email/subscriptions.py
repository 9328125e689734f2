"""Who gets the newsletter: a user's choice (`users.newsletter`), made at sign-up, changed in
Settings → Notifications, or withdrawn in one click from any newsletter (RFC 8058).

Turning it off also drops the newsletters still queued for that address, in the same
transaction: nothing the person no longer wants goes out after they said so. Transactional mail
(verification, resets, security and policy notices) never looks at this choice.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from ..db import Database
from ..models import User
from .outbox import drop_newsletters
from .unsubscribe import unsubscribe_token, user_of_token

__all__ = ["Subscriber", "Subscriptions"]


@dataclass(frozen=True, slots=True)
class Subscriber:
    user_id: str
    email: str
    subscribed: bool


async def set_newsletter(session: AsyncSession, user_id: str, subscribed: bool) -> None:
    """In the caller's transaction."""
    user = await session.get(User, user_id)
    if user is None:
        return
    await session.execute(update(User).where(User.id == user_id).values(newsletter=subscribed))
    if not subscribed:
        await drop_newsletters(session, user.email)


class Subscriptions:
    def __init__(self, db: Database, *, key: bytes, offered: bool) -> None:
        self.db = db
        self.key = key
        #: False when the installation has no newsletter (`newsletter_default = "off"`).
        self.offered = offered

    def token(self, user_id: str) -> str:
        return unsubscribe_token(self.key, user_id)

    async def by_token(self, token: str) -> Subscriber | None:
        """The user an unsubscribe link names; None for a forged link or a deleted user."""
        user_id = user_of_token(self.key, token)
        if user_id is None:
            return None
        async with self.db.read() as session:
            user = await session.get(User, user_id)
            return Subscriber(user.id, user.email, user.newsletter) if user else None

    async def unsubscribe(self, token: str) -> Subscriber | None:
        """The one-click unsubscribe: the link is the proof, no session needed."""
        user_id = user_of_token(self.key, token)
        if user_id is None:
            return None
        async with self.db.write() as session:
            user = await session.get(User, user_id)
            if user is None:
                return None
            await set_newsletter(session, user_id, False)
            return Subscriber(user.id, user.email, False)

    async def set(self, user_id: str, subscribed: bool) -> None:
        async with self.db.write() as session:
            await set_newsletter(session, user_id, subscribed and self.offered)

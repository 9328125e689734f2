"""A person's time zone (an IANA name): the dashboard shows times and counts days in it."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from ..models import User
from ..usage.calendar import offered_zones
from .errors import FormInvalid

__all__ = ["set_time_zone"]


async def set_time_zone(session: AsyncSession, user_id: str, name: str) -> str:
    """Save `name` as the user's time zone; refused (FormInvalid) unless it is a zone this
    installation offers (`usage.calendar.zone_choices`)."""
    name = name.strip()
    if name not in offered_zones():
        raise FormInvalid({"time_zone": "Choose a time zone from the list."})
    await session.execute(update(User).where(User.id == user_id).values(time_zone=name))
    return name

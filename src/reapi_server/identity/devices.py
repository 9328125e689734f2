"""Knowing a user's devices, for the "new sign-in from a new device" mail, without a cookie of
our own (the site sets only the session and CSRF cookies, as its cookie policy says).

A device is a keyed hash (HMAC, key derived from the installation secret) of the user's id, the
browser's user agent with its version numbers masked (a browser update is not a new device) and
the client's network (IPv4 /24, IPv6 /64: a new address from the same provider is not one
either). Neither value is stored. A device unseen for 90 days is forgotten.

Devices are learnt only while the user has the alerts on: turning them on remembers the browser
that did it, turning them off forgets every device."""

from __future__ import annotations

import re

from sqlalchemy.ext.asyncio import AsyncSession

from ..derived_keys import keyed_digest
from . import repository
from .sessions import DAY, Client
from .throttle import client_network

__all__ = ["KNOWN_FOR", "device_hash", "remember"]

KNOWN_FOR = 90 * DAY
_VERSION = re.compile(r"\d+(?:[._]\d+)*")


def device_hash(key: bytes, user_id: str, client: Client) -> str:
    masked = _VERSION.sub("#", client.user_agent)
    network = client_network(client.address, ipv4_prefix=24)
    return keyed_digest(key, f"{user_id}\n{masked}\n{network}")


async def remember(
    session: AsyncSession, key: bytes, user_id: str, client: Client, now: float
) -> bool:
    """Note a sign-in from `client`; True when it is a device the user has not used in the
    last 90 days."""
    found = device_hash(key, user_id, client)
    last_seen = await repository.device_last_seen(session, user_id, found)
    await repository.upsert_known_device(session, user_id, found, now)
    return last_seen is None or last_seen <= now - KNOWN_FOR

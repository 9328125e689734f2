"""Limits on sign-in failures and on mail-sending requests, kept in the database so that every
server process counts together. A key is blocked once its count reaches the rule's limit, until
the window that began with its first attempt ends: never for ever, so the real owner of an
attacked address gets in again (and a password reset clears the address's count).

Keys never hold an email address as given: it is a keyed hash (HMAC) of it. Client addresses
are counted per address, IPv6 per /64 (what one subscriber usually holds).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from ..derived_keys import keyed_digest
from . import repository

__all__ = [
    "RESET_PER_ADDRESS",
    "RESET_PER_EMAIL",
    "SIGN_IN_PER_ADDRESS",
    "SIGN_IN_PER_EMAIL",
    "SIGN_UP_PER_ADDRESS",
    "VERIFY_RESEND_PER_USER",
    "Counter",
    "Rule",
    "Throttle",
]

MINUTE = 60.0


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    limit: int
    window: float


SIGN_IN_PER_EMAIL = Rule("signin_email", limit=5, window=15 * MINUTE)
SIGN_IN_PER_ADDRESS = Rule("signin_addr", limit=20, window=15 * MINUTE)
SIGN_UP_PER_ADDRESS = Rule("signup_addr", limit=10, window=60 * MINUTE)
RESET_PER_ADDRESS = Rule("reset_addr", limit=10, window=60 * MINUTE)
RESET_PER_EMAIL = Rule("reset_email", limit=3, window=60 * MINUTE)
VERIFY_RESEND_PER_USER = Rule("verify_user", limit=5, window=60 * MINUTE)


def _network(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64] or "unknown"
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


@dataclass(frozen=True, slots=True)
class Counter:
    """One rule applied to one subject."""

    rule: Rule
    key: str


class Throttle:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def for_email(self, rule: Rule, email: str) -> Counter:
        return Counter(rule, f"{rule.name}:{keyed_digest(self._key, email)[:40]}")

    def for_address(self, rule: Rule, address: str) -> Counter:
        return Counter(rule, f"{rule.name}:{_network(address)}")

    def for_user(self, rule: Rule, user_id: str) -> Counter:
        return Counter(rule, f"{rule.name}:{user_id}")

    @staticmethod
    async def retry_after(
        session: AsyncSession, counters: Sequence[Counter], now: float
    ) -> float | None:
        """Seconds until every blocked counter among `counters` is free again; None when
        none is blocked."""
        rows = await repository.throttle_rows(session, [c.key for c in counters])
        waits = []
        for counter in counters:
            row = rows.get(counter.key)
            if row is None:
                continue
            ends = row.window_started_at + counter.rule.window
            if ends > now and row.failures >= counter.rule.limit:
                waits.append(ends - now)
        return max(waits) if waits else None

    @staticmethod
    async def count(session: AsyncSession, counters: Sequence[Counter], now: float) -> None:
        for counter in counters:
            await repository.record_attempt(
                session, counter.key, window=counter.rule.window, now=now
            )

    @staticmethod
    async def clear(session: AsyncSession, counters: Sequence[Counter]) -> None:
        await repository.clear_throttle(session, [c.key for c in counters])

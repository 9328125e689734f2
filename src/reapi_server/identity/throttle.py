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

from ..derived_keys import derive_key, keyed_digest
from . import repository

__all__ = [
    "CHANGE_EMAIL_PER_USER",
    "EMAIL_RULES",
    "RESET_PER_ADDRESS",
    "RESET_PER_EMAIL",
    "SECOND_FACTOR_PER_USER",
    "SIGN_IN_PER_ADDRESS",
    "SIGN_IN_PER_EMAIL",
    "SIGN_UP_PER_ADDRESS",
    "USER_RULES",
    "VERIFY_RESEND_PER_USER",
    "Counter",
    "Rule",
    "Throttle",
    "client_network",
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
#: Wrong two-factor codes (at sign-in and at step-up), per user: whoever has the password
#: makes a new pending sign-in at will, so the count cannot be per session.
SECOND_FACTOR_PER_USER = Rule("2fa_user", limit=5, window=15 * MINUTE)
#: Email change links sent, per user (each mails an address the user typed).
CHANGE_EMAIL_PER_USER = Rule("email_change_user", limit=5, window=60 * MINUTE)

#: The rules counted per email address and per user: their rows are about one person (exported
#: with their data, deleted with them). Per-address rules are about a network, not a person.
EMAIL_RULES = (SIGN_IN_PER_EMAIL, RESET_PER_EMAIL)
USER_RULES = (VERIFY_RESEND_PER_USER, SECOND_FACTOR_PER_USER, CHANGE_EMAIL_PER_USER)


def client_network(address: str, *, ipv4_prefix: int = 32) -> str:
    """The network a client address stands for: IPv6 per /64 (what one subscriber usually
    holds), IPv4 per `ipv4_prefix` (the address itself by default). An IPv4-mapped IPv6 address
    (`::ffff:a.b.c.d`: an IPv4 client of a server or proxy listening on a dual-stack socket) is
    its IPv4 address: as IPv6 its /64 would be `::/64`, every IPv4 client in one network."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64] or "unknown"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = 64 if ip.version == 6 else ipv4_prefix
    if prefix == ip.max_prefixlen:
        return str(ip)
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


@dataclass(frozen=True, slots=True)
class Counter:
    """One rule applied to one subject."""

    rule: Rule
    key: str


class Throttle:
    def __init__(self, key: bytes) -> None:
        self._key = key

    @classmethod
    def from_root(cls, root: bytes) -> Throttle:
        """Keyed from the installation secret, under a key of its own."""
        return cls(derive_key(root, "throttle"))

    def for_email(self, rule: Rule, email: str) -> Counter:
        return Counter(rule, f"{rule.name}:{keyed_digest(self._key, email)[:40]}")

    def for_address(self, rule: Rule, address: str) -> Counter:
        return Counter(rule, f"{rule.name}:{client_network(address)}")

    def for_user(self, rule: Rule, user_id: str) -> Counter:
        return Counter(rule, f"{rule.name}:{user_id}")

    def counters_about(self, email: str, user_id: str) -> list[Counter]:
        """Every counter that is about this person."""
        return [self.for_email(rule, email) for rule in EMAIL_RULES] + [
            self.for_user(rule, user_id) for rule in USER_RULES
        ]

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
    async def take(session: AsyncSession, counter: Counter, now: float) -> bool:
        """Count an attempt before making it, unless the counter is blocked (False then):
        what bounds attempts made at once. `give_back` one that turned out not to fail."""
        return await repository.take_attempt(
            session, counter.key, limit=counter.rule.limit, window=counter.rule.window, now=now
        )

    @staticmethod
    async def give_back(session: AsyncSession, counter: Counter) -> None:
        await repository.return_attempt(session, counter.key)

    @staticmethod
    async def clear(session: AsyncSession, counters: Sequence[Counter]) -> None:
        await repository.clear_throttle(session, [c.key for c in counters])

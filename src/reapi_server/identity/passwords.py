"""Passwords: the policy a new one must meet, and argon2id hashing.

The hashing parameters live here and nowhere else (`ARGON2ID`). Raising them takes effect at
each user's next sign-in: a hash made with weaker parameters verifies, then is replaced
(`Passwords.needs_rehash`). Hashing is CPU and memory work (about 20 MiB and tens of
milliseconds each): it runs on worker threads, a few at a time, never on the event loop and
never inside a database transaction.

A password is never logged, never stored as given and never repeated in an error message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

import anyio
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from .errors import WeakPassword

__all__ = [
    "ARGON2ID",
    "MAX_LENGTH",
    "MIN_LENGTH",
    "PASSPHRASE_WORDS",
    "Argon2Params",
    "Passwords",
    "check_policy",
]

MIN_LENGTH = 12
#: A passphrase of this many words is accepted although shorter than MIN_LENGTH.
PASSPHRASE_WORDS = 4
#: Long enough for any passphrase; bounds the work a request can ask for.
MAX_LENGTH = 256
_MIN_DISTINCT = 4


@dataclass(frozen=True, slots=True)
class Argon2Params:
    time_cost: int
    #: KiB
    memory_cost: int
    parallelism: int


#: OWASP's recommended argon2id configuration (19 MiB, 2 passes, 1 lane).
ARGON2ID = Argon2Params(time_cost=2, memory_cost=19 * 1024, parallelism=1)

#: Hashes at once per process: each holds `memory_cost` of memory while it runs.
_CONCURRENT_HASHES = 4


@cache
def _common() -> frozenset[str]:
    text = resources.files(__package__).joinpath("common_passwords.txt").read_text("utf-8")
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line.strip() and line[0] != "#"
    )


def _words(password: str) -> list[str]:
    return [w for w in re.split(r"[\s\-_.]+", password) if len(w) >= 2]


def check_policy(password: str, *, email: str) -> None:
    """Raise `WeakPassword` (saying which rule, never the password) unless `password` may be
    used: at least MIN_LENGTH characters or a passphrase of PASSPHRASE_WORDS words, not one of
    the most common passwords, not the email address."""
    if not password:
        raise WeakPassword("Enter a password.")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"Use at most {MAX_LENGTH} characters.")
    long_enough = len(password) >= MIN_LENGTH or len(_words(password)) >= PASSPHRASE_WORDS
    if not long_enough:
        raise WeakPassword(
            f"Use at least {MIN_LENGTH} characters, or a passphrase of "
            f"{PASSPHRASE_WORDS} or more words."
        )
    lowered = password.strip().lower()
    local_part = email.partition("@")[0].lower()
    if lowered in (email.lower(), local_part):
        raise WeakPassword("Do not use your email address as your password.")
    if len(set(lowered)) < _MIN_DISTINCT or lowered in _common():
        raise WeakPassword("This password is too easy to guess. Choose another one.")


class Passwords:
    """argon2id hashing with one set of parameters (ARGON2ID unless a test raises them)."""

    def __init__(self, params: Argon2Params = ARGON2ID) -> None:
        self.params = params
        self._hasher = PasswordHasher(
            time_cost=params.time_cost,
            memory_cost=params.memory_cost,
            parallelism=params.parallelism,
            type=Type.ID,
        )
        self._limiter = anyio.CapacityLimiter(_CONCURRENT_HASHES)
        self._dummy: str | None = None

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(self._hasher.hash, password, limiter=self._limiter)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """True when `password` matches. With no stored hash (unknown email, no password
        set) a dummy hash is verified instead, so that the answer takes as long either way."""
        if stored_hash is None:
            if self._dummy is None:
                self._dummy = await self.hash("reapi: the work of a real verification")
            await anyio.to_thread.run_sync(
                self._matches, self._dummy, password, limiter=self._limiter
            )
            return False
        return await anyio.to_thread.run_sync(
            self._matches, stored_hash, password, limiter=self._limiter
        )

    def _matches(self, stored_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        """True when `stored_hash` was made with other parameters than today's."""
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True

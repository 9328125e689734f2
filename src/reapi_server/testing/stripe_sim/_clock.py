"""The simulated clock (real time plus an offset the tests move) and Stripe-like ids."""

from __future__ import annotations

import secrets
import string
import threading
import time

__all__ = ["SimClock", "new_id"]

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 24) -> str:
    """`prefix` + random letters and digits, like `cus_Q3g1o8vcGmoR32`."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


class SimClock:
    """Unix seconds as the simulated Stripe account sees them.

    `advance(3600)` moves it an hour ahead (sessions expire, signatures carry that time);
    `advance(-600)` moves it back, so the signatures it makes look ten minutes old.
    """

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    @property
    def offset(self) -> float:
        with self._lock:
            return self._offset

    def now(self) -> int:
        return int(time.time() + self.offset)

    def advance(self, seconds: float) -> int:
        with self._lock:
            self._offset += seconds
        return self.now()

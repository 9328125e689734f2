"""Stripe's idempotent requests: a POST with an `Idempotency-Key` runs once.

The same key with the same parameters answers the first result again, with
`Idempotent-Replayed: true`; with other parameters or another endpoint it is a 400
`idempotency_error`. Like Stripe, only requests that ran are remembered (successes and 402 card
errors), not requests refused by validation; keys are forgotten after 24 hours.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from reapi.testing import SimResponse

from ._clock import SimClock
from ._errors import StripeError

__all__ = ["IdempotencyKeys"]

KEY_LIFETIME = 24 * 60 * 60
MAX_KEY_LENGTH = 255


@dataclass(frozen=True, slots=True)
class _Saved:
    endpoint: str
    params: dict[str, Any]
    answer: SimResponse
    request_id: str
    created: int


class IdempotencyKeys:
    def __init__(self, clock: SimClock) -> None:
        self._clock = clock
        self._saved: dict[str, _Saved] = {}
        self._lock = threading.Lock()

    def replay(self, key: str, endpoint: str, params: dict[str, Any]) -> SimResponse | None:
        """The saved answer for a repeat, None for a new key; a misuse raises Stripe's 400."""
        if len(key) > MAX_KEY_LENGTH:
            raise StripeError(
                400,
                f"Idempotency keys may be at most {MAX_KEY_LENGTH} characters long.",
                kind="idempotency_error",
            )
        with self._lock:
            saved = self._saved.get(key)
            if saved is not None and saved.created + KEY_LIFETIME <= self._clock.now():
                del self._saved[key]
                saved = None
        if saved is None:
            return None
        if saved.endpoint != endpoint:
            raise StripeError(
                400,
                "Keys for idempotent requests can only be used for the same endpoint they were"
                f" first used for ('{saved.endpoint}' vs '{endpoint}'). Try using a key other"
                " than the one you used if you meant to execute a different request.",
                kind="idempotency_error",
            )
        if saved.params != params:
            raise StripeError(
                400,
                "Keys for idempotent requests can only be used with the same parameters they"
                f" were first used with. Try using a key other than '{key[:80]}' if you meant to"
                " execute a different request.",
                kind="idempotency_error",
            )
        status, headers, body = saved.answer
        replayed = {**headers, "idempotent-replayed": "true", "original-request": saved.request_id}
        return SimResponse(status, replayed, body)

    def save(
        self, key: str, endpoint: str, params: dict[str, Any], answer: SimResponse, request_id: str
    ) -> None:
        if not (answer.status < 400 or answer.status == 402):
            return
        with self._lock:
            self._saved[key] = _Saved(endpoint, params, answer, request_id, self._clock.now())

"""A simulated Cloudflare Turnstile verifier (siteverify) on loopback. Only the server side:
the widget itself is Cloudflare's script, loaded by the page from Cloudflare.

    sim = TurnstileSimulator()
    with SimServer(sim) as server:      # siteverify: server.base_url + SITEVERIFY_PATH
        token = sim.issue_token(action="signup")     # or any token starting with "pass"

Wire facts, from Cloudflare's "Validate the token" page and its testing page:
- `POST /turnstile/v0/siteverify`, form-encoded, multipart or JSON: secret, response (the
  widget's token), remoteip (optional), idempotency_key (optional). Always JSON back.
- Success: `{"success": true, "error-codes": [], "challenge_ts", "hostname", "action",
  "cdata", "metadata"}`; failure: `{"success": false, "error-codes": [...], "messages": []}`
  with missing-input-secret, invalid-input-secret, missing-input-response,
  invalid-input-response, bad-request, timeout-or-duplicate or internal-error.
- A token is valid for 300 seconds, at most 2048 characters, and verifies once: the second
  time is `timeout-or-duplicate`, unless it repeats the first request's `idempotency_key`,
  which answers the first outcome again.
- Cloudflare's testing secret keys work here too: `1x0000000000000000000000000000000AA`
  passes any token, `2x...AA` fails it, `3x...AA` answers it was already spent (the testing
  sitekeys' widget hands out `XXXX.DUMMY.TOKEN.XXXX`).

This simulator passes a token it issued (`issue_token`, `POST /__sim__/turnstile/tokens`) or
one starting with "pass" ("pass", "pass-2", ...), once each; any other is
`invalid-input-response`. Control: `GET /__sim__/turnstile/state` (counters, the last request
without its secret).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from reapi.testing import Answer, Fault, FaultState, FaultSwitch, json_answer, parse_multipart

__all__ = [
    "ALREADY_SPENT_SECRET",
    "ALWAYS_FAILS_SECRET",
    "ALWAYS_PASSES_SECRET",
    "DUMMY_TOKEN",
    "SITEVERIFY_PATH",
    "TOKEN_LIFETIME",
    "TURNSTILE_SECRET",
    "TurnstileSimulator",
]

SITEVERIFY_PATH = "/turnstile/v0/siteverify"
TURNSTILE_SECRET = "0x4AAAAAAAreapi-sim-turnstile-secret"
ALWAYS_PASSES_SECRET = "1x0000000000000000000000000000000AA"
ALWAYS_FAILS_SECRET = "2x0000000000000000000000000000000AA"
ALREADY_SPENT_SECRET = "3x0000000000000000000000000000000AA"
DUMMY_TOKEN = "XXXX.DUMMY.TOKEN.XXXX"
#: Seconds a token stays valid.
TOKEN_LIFETIME = 300.0
MAX_TOKEN_LENGTH = 2048


@dataclass(frozen=True, slots=True)
class _Token:
    issued_at: float
    hostname: str
    action: str
    cdata: str


class TurnstileSimulator:
    """One Turnstile widget's secret and the tokens it would have handed out. Thread-safe."""

    def __init__(
        self,
        secret: str = TURNSTILE_SECRET,
        *,
        hostname: str = "localhost",
        pass_prefix: str = "pass",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.secret = secret
        #: What a passing token reports as the page's host.
        self.hostname = hostname
        #: Tokens starting with this pass (once each) without being issued; "" turns it off.
        self.pass_prefix = pass_prefix
        self.clock = clock
        #: App-level faults (status faults set here are answered the same way).
        self.faults = FaultSwitch()
        self._issued: dict[str, _Token] = {}
        self._spent: set[str] = set()
        self._replays: dict[str, tuple[str, dict[str, Any]]] = {}
        self._outcomes: dict[str, int] = {}
        self._last_request: dict[str, str] | None = None
        self._lock = threading.Lock()

    # -- the Python API ----------------------------------------------------------------------
    def issue_token(self, *, action: str = "", cdata: str = "", hostname: str | None = None) -> str:
        """A fresh token as the widget would hand it to the page (valid for 300 s)."""
        token = "sim." + secrets.token_urlsafe(48)
        issued = _Token(self.clock(), hostname or self.hostname, action, cdata)
        with self._lock:
            self._issued[token] = issued
        return token

    @property
    def verifications(self) -> int:
        with self._lock:
            return sum(self._outcomes.values())

    @property
    def outcomes(self) -> dict[str, int]:
        """Verifications by outcome: "success" or the first error code."""
        with self._lock:
            return dict(self._outcomes)

    @property
    def last_request(self) -> dict[str, str] | None:
        """The last siteverify request's fields, its secret left out."""
        with self._lock:
            return None if self._last_request is None else dict(self._last_request)

    # -- entry points ------------------------------------------------------------------------
    def handle(
        self,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        origin: str,
    ) -> Answer:
        if path != SITEVERIFY_PATH:
            return json_answer(404, {"success": False, "error-codes": ["not-found"]})
        if method != "POST":
            return json_answer(405, {"success": False, "error-codes": ["method-not-allowed"]})
        state = self.faults.take()
        fault_answer = self.status_fault_answer(state)
        if fault_answer is not None:
            return fault_answer
        fields = _fields(headers.get("content-type", ""), body)
        outcome = self._verify(fields) if fields is not None else _failure("bad-request")
        with self._lock:
            key = "success" if outcome["success"] else outcome["error-codes"][0]
            self._outcomes[key] = self._outcomes.get(key, 0) + 1
            if fields is not None:
                self._last_request = {k: v for k, v in fields.items() if k != "secret"}
        return json_answer(200, outcome)

    def status_fault_answer(self, state: FaultState) -> Answer | None:
        if state.fault is Fault.RATE_LIMIT:
            headers = {"retry-after": str(state.retry_after)}
            return json_answer(429, _failure("internal-error"), headers)
        if state.fault in (Fault.ERROR_500, Fault.ERROR_503):
            status = 500 if state.fault is Fault.ERROR_500 else 503
            return json_answer(status, _failure("internal-error"))
        return None

    def control(self, method: str, path: str, query: str, body: bytes) -> Answer | None:
        if path == "/__sim__/turnstile/state" and method == "GET":
            state = {
                "verifications": self.verifications,
                "outcomes": self.outcomes,
                "last_request": self.last_request,
            }
            return json_answer(200, state)
        if path == "/__sim__/turnstile/tokens" and method == "POST":
            try:
                asked = json.loads(body or b"{}")
                if not isinstance(asked, dict):
                    raise ValueError("a JSON object: action, cdata, hostname")
            except ValueError as exc:
                return json_answer(400, {"error": str(exc)})
            token = self.issue_token(
                action=str(asked.get("action", "")),
                cdata=str(asked.get("cdata", "")),
                hostname=asked.get("hostname") and str(asked["hostname"]),
            )
            return json_answer(200, {"token": token})
        return None

    # -- verifying ---------------------------------------------------------------------------
    def _verify(self, fields: Mapping[str, str]) -> dict[str, Any]:
        secret, token = fields.get("secret", ""), fields.get("response", "")
        errors = []
        if not secret:
            errors.append("missing-input-secret")
        elif secret not in (
            self.secret,
            ALWAYS_PASSES_SECRET,
            ALWAYS_FAILS_SECRET,
            ALREADY_SPENT_SECRET,
        ):
            errors.append("invalid-input-secret")
        if not token:
            errors.append("missing-input-response")
        if errors:
            return _failure(*errors)
        if secret == ALWAYS_PASSES_SECRET:
            return _success(_Token(self.clock(), "example.com", "", ""))
        if secret == ALWAYS_FAILS_SECRET:
            return _failure("invalid-input-response")
        if secret == ALREADY_SPENT_SECRET:
            return _failure("timeout-or-duplicate")
        key = fields.get("idempotency_key")
        with self._lock:
            if key and key in self._replays and self._replays[key][0] == token:
                return self._replays[key][1]
            outcome = self._spend(token)
            if key:
                self._replays[key] = (token, outcome)
        return outcome

    def _spend(self, token: str) -> dict[str, Any]:
        """One token's outcome; a good token is spent by it (the lock is held)."""
        if len(token) > MAX_TOKEN_LENGTH:
            return _failure("invalid-input-response")
        if token in self._spent:
            return _failure("timeout-or-duplicate")
        issued = self._issued.get(token)
        if issued is None and self.pass_prefix and token.startswith(self.pass_prefix):
            issued = _Token(self.clock(), self.hostname, "", "")
        if issued is None:
            return _failure("invalid-input-response")
        self._spent.add(token)
        if self.clock() > issued.issued_at + TOKEN_LIFETIME:
            return _failure("timeout-or-duplicate")
        return _success(issued)


def _fields(content_type: str, body: bytes) -> dict[str, str] | None:
    """The request's fields whichever way they came; None when they cannot be read."""
    media = content_type.partition(";")[0].strip().lower()
    try:
        if media == "application/json":
            sent = json.loads(body or b"{}")
            if not isinstance(sent, dict):
                return None
            return {str(k): str(v) for k, v in sent.items() if v is not None}
        if media == "multipart/form-data":
            return {part.name: part.text for part in parse_multipart(content_type, body)}
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except (ValueError, UnicodeDecodeError):
        return None


def _success(token: _Token) -> dict[str, Any]:
    stamp = datetime.fromtimestamp(token.issued_at, UTC).isoformat(timespec="milliseconds")
    return {
        "success": True,
        "error-codes": [],
        "challenge_ts": stamp.replace("+00:00", "Z"),
        "hostname": token.hostname,
        "action": token.action,
        "cdata": token.cdata,
        "metadata": {"interactive": False},
    }


def _failure(*codes: str) -> dict[str, Any]:
    return {"success": False, "error-codes": list(codes), "messages": []}

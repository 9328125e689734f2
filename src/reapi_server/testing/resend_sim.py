"""A simulated Resend (the email API) on loopback: it keeps what it is sent, for tests (and the
demo) to read verification links from, and sends nothing anywhere.

    sim = ResendSimulator()
    with SimServer(sim) as server:          # the sender's base URL: server.base_url
        ...                                 # the code under test sends mail
        link = sim.latest(to="ada@example.com").links[0]

Wire facts, from Resend's API reference (send email, retrieve email, errors, idempotency keys,
rate limits):
- `POST /emails` with `Authorization: Bearer re_...` and a JSON body: from, to (a string or a
  list of at most 50), subject, html and/or text, cc, bcc, reply_to, headers, tags
  ([{name, value}], ASCII letters, digits, `_` and `-`), scheduled_at. Answers `{"id": uuid}`.
- Errors are `{"statusCode", "message", "name"}`: 401 `missing_api_key`; 401
  `validation_error` "API key is invalid" (sending endpoints, wrong key); 422
  `missing_required_field` and `validation_error` for the fields; 400
  `invalid_idempotency_key` (a key of 1-256 characters); 409 `invalid_idempotent_request`
  (same key, another body, within 24 h); 429 `rate_limit_exceeded` and
  `daily_quota_exceeded`; 404 `not_found`; 405 `method_not_allowed`; 500
  `internal_server_error`.
- `Idempotency-Key`: the same key with the same body within 24 hours answers the first id
  again and sends nothing more. (A key still in flight is 409 `concurrent_idempotent_requests`
  at Resend; here requests are answered one at a time, so that never happens.)
- Every answer carries `ratelimit-limit`, `ratelimit-remaining` and `ratelimit-reset`; a 429
  adds `retry-after`.

Faults: the server's `faults` (or `POST /__sim__/fault`) give refused, reset, hung and slow
connections, and 500, 503 and 429 in Resend's words; `sim.faults.set(Fault.QUOTA_EXHAUSTED)`
gives the daily-quota 429. Control: `GET /__sim__/resend/emails[?to=ADDRESS]` lists what was
sent (newest last, with each message's links); `DELETE` forgets it.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from reapi.testing import Answer, Fault, FaultState, FaultSwitch, json_answer

__all__ = ["IDEMPOTENCY_WINDOW", "RESEND_API_KEY", "ResendSimulator", "SentEmail"]

RESEND_API_KEY = "re_reapi_sim_key"
#: How long Resend remembers an idempotency key.
IDEMPOTENCY_WINDOW = 24 * 3600.0
#: Resend's default rate limit: two requests a second.
RATE_LIMIT = 2
MAX_RECIPIENTS = 50

_ADDRESS = re.compile(r"[^\s@<>\"]+@[^\s@<>\"]+\.[^\s@<>\"]+")
_NAMED = re.compile(r"^\s*(?P<name>[^<>]*?)\s*<(?P<address>[^<>]+)>\s*$")
_TAG = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_LINK = re.compile(r"https?://[^\s\"'<>]+")
_ADDRESS_FORMAT = (
    "The email address needs to follow the `email@example.com` or "
    "`Name <email@example.com>` format."
)


class _Refusal(Exception):
    def __init__(self, status: int, name: str, message: str) -> None:
        super().__init__(message)
        self.status, self.name, self.message = status, name, message


def address_of(value: str) -> str | None:
    """The bare address of `a@b.c` or `Name <a@b.c>`, lower case; None when neither."""
    named = _NAMED.match(value)
    bare = named.group("address").strip() if named else value.strip()
    return bare.lower() if _ADDRESS.fullmatch(bare) else None


@dataclass(frozen=True, slots=True)
class SentEmail:
    """One accepted message, as sent (nothing is delivered)."""

    id: str
    sender: str
    to: tuple[str, ...]
    subject: str
    html: str | None = None
    text: str | None = None
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    reply_to: tuple[str, ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    tags: tuple[tuple[str, str], ...] = ()
    scheduled_at: str | None = None
    created_at: str = ""
    idempotency_key: str | None = None

    @property
    def recipients(self) -> tuple[str, ...]:
        """Every bare address it goes to (to, cc, bcc), lower case."""
        found = (address_of(a) for a in (*self.to, *self.cc, *self.bcc))
        return tuple(a for a in found if a)

    @property
    def links(self) -> list[str]:
        """The http(s) URLs in the text part, then in the HTML part, each once."""
        seen: dict[str, None] = {}
        for part in (self.text or "", html.unescape(self.html or "")):
            for url in _LINK.findall(part):
                seen.setdefault(url, None)
        return list(seen)

    def to_json(self) -> dict[str, Any]:
        """Resend's retrieve-email shape, plus what tests read (headers, key, links)."""
        return {
            "object": "email",
            "id": self.id,
            "to": list(self.to),
            "from": self.sender,
            "created_at": self.created_at,
            "subject": self.subject,
            "html": self.html,
            "text": self.text,
            "cc": list(self.cc) or None,
            "bcc": list(self.bcc) or None,
            "reply_to": list(self.reply_to) or None,
            "last_event": "delivered",
            "scheduled_at": self.scheduled_at,
            "tags": [{"name": n, "value": v} for n, v in self.tags],
            "headers": dict(self.headers),
            "idempotency_key": self.idempotency_key,
            "links": self.links,
        }


@dataclass(frozen=True, slots=True)
class _Remembered:
    body_hash: str
    email_id: str
    expires_at: float


class ResendSimulator:
    """One Resend account with one API key. Thread-safe."""

    def __init__(
        self, api_key: str = RESEND_API_KEY, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.api_key = api_key
        self.clock = clock
        #: App-level faults (QUOTA_EXHAUSTED; status faults set here apply to sending too).
        self.faults = FaultSwitch()
        #: Requests served per "METHOD /path-template", for assertions.
        self.requests: dict[str, int] = {}
        self._sent: list[SentEmail] = []
        self._by_id: dict[str, SentEmail] = {}
        self._keys: dict[str, _Remembered] = {}
        self._lock = threading.Lock()

    # -- the Python API ----------------------------------------------------------------------
    @property
    def messages(self) -> list[SentEmail]:
        """Every accepted message, oldest first (an idempotent replay is not a new one)."""
        with self._lock:
            return list(self._sent)

    def messages_to(self, address: str) -> list[SentEmail]:
        """Messages with `address` among to, cc or bcc (case-insensitive), oldest first."""
        wanted = address_of(address) or address.lower()
        return [m for m in self.messages if wanted in m.recipients]

    def latest(self, *, to: str) -> SentEmail | None:
        found = self.messages_to(to)
        return found[-1] if found else None

    def clear(self) -> int:
        """Forgets every message and idempotency key; returns how many messages there were."""
        with self._lock:
            count = len(self._sent)
            self._sent, self._by_id, self._keys = [], {}, {}
            return count

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
        try:
            if path.rstrip("/") == "/emails":
                if method != "POST":
                    raise _Refusal(405, "method_not_allowed", "Method is not allowed.")
                self._count("POST /emails")
                return self._send(headers, body)
            if path.startswith("/emails/") and path.count("/") == 2:
                if method != "GET":
                    raise _Refusal(405, "method_not_allowed", "Method is not allowed.")
                self._count("GET /emails/{id}")
                return self._retrieve(headers, path.removeprefix("/emails/"))
            raise _Refusal(404, "not_found", "The requested endpoint does not exist.")
        except _Refusal as refusal:
            return _error(refusal.status, refusal.name, refusal.message)

    def status_fault_answer(self, state: FaultState) -> Answer | None:
        if state.fault is Fault.RATE_LIMIT:
            return _error(
                429,
                "rate_limit_exceeded",
                "Too many requests. Please limit the number of requests per second.",
                remaining=0,
                retry_after=state.retry_after,
            )
        if state.fault is Fault.QUOTA_EXHAUSTED:
            return _error(
                429,
                "daily_quota_exceeded",
                "You have reached your daily email sending quota.",
                retry_after=state.retry_after,
            )
        if state.fault in (Fault.ERROR_500, Fault.ERROR_503):
            status = 500 if state.fault is Fault.ERROR_500 else 503
            return _error(status, "internal_server_error", "An unexpected error occurred.")
        return None

    def control(self, method: str, path: str, query: str, body: bytes) -> Answer | None:
        if path.rstrip("/") != "/__sim__/resend/emails":
            return None
        if method == "GET":
            to = dict(parse_qsl(query)).get("to")
            listed = self.messages_to(to) if to else self.messages
            return json_answer(200, {"object": "list", "data": [m.to_json() for m in listed]})
        if method == "DELETE":
            return json_answer(200, {"deleted": self.clear()})
        return json_answer(405, {"error": "GET or DELETE"})

    # -- sending -----------------------------------------------------------------------------
    def _send(self, headers: Mapping[str, str], body: bytes) -> Answer:
        self._authorize(headers)
        key = headers.get("idempotency-key")
        if key is not None and not 1 <= len(key) <= 256:
            raise _Refusal(400, "invalid_idempotency_key", "The key must be between 1-256 chars.")
        state = self.faults.take()
        if state.fault is not Fault.NONE:
            answer = self.status_fault_answer(state)
            if answer is not None:
                return answer
        try:
            fields = json.loads(body or b"null")
        except ValueError:
            fields = None
        if not isinstance(fields, dict):
            raise _Refusal(422, "validation_error", "The request body must be a JSON object.")
        body_hash = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()
        with self._lock:
            if key is not None:
                replay = self._replay(key, body_hash)
                if replay is not None:
                    return replay
            email = _parse(fields, str(uuid.uuid4()), _timestamp(self.clock()), key)
            self._sent.append(email)
            self._by_id[email.id] = email
            if key is not None:
                self._keys[key] = _Remembered(
                    body_hash, email.id, self.clock() + IDEMPOTENCY_WINDOW
                )
        return _answer(200, {"id": email.id})

    def _replay(self, key: str, body_hash: str) -> Answer | None:
        """The first answer again for a known key and the same body (the lock is held)."""
        remembered = self._keys.get(key)
        if remembered is None or self.clock() > remembered.expires_at:
            return None
        if remembered.body_hash != body_hash:
            raise _Refusal(
                409,
                "invalid_idempotent_request",
                "Same idempotency key used with a different request payload.",
            )
        return _answer(200, {"id": remembered.email_id})

    def _retrieve(self, headers: Mapping[str, str], email_id: str) -> Answer:
        self._authorize(headers)
        with self._lock:
            email = self._by_id.get(email_id)
        if email is None:
            raise _Refusal(404, "not_found", "Email not found")
        shown = email.to_json()
        for ours in ("headers", "idempotency_key", "links"):
            del shown[ours]
        return _answer(200, shown)

    def _authorize(self, headers: Mapping[str, str]) -> None:
        scheme, _, key = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise _Refusal(401, "missing_api_key", "Missing API key in the authorization header.")
        if key.strip() != self.api_key:
            raise _Refusal(401, "validation_error", "API key is invalid")

    def _count(self, route: str) -> None:
        with self._lock:
            self.requests[route] = self.requests.get(route, 0) + 1


def _parse(fields: Mapping[str, Any], email_id: str, now: str, key: str | None) -> SentEmail:
    for name in ("from", "to", "subject"):
        if fields.get(name) in (None, "", []):
            raise _Refusal(422, "missing_required_field", f"Missing `{name}` field.")
    sender = fields["from"]
    if not isinstance(sender, str) or address_of(sender) is None:
        raise _Refusal(422, "validation_error", f"Invalid `from` field. {_ADDRESS_FORMAT}")
    to = _addresses(fields, "to")
    if len(to) > MAX_RECIPIENTS:
        raise _Refusal(422, "validation_error", "Too many recipients in `to` (at most 50).")
    subject = fields["subject"]
    if not isinstance(subject, str):
        raise _Refusal(422, "validation_error", "Invalid `subject` field.")
    html_part, text_part = fields.get("html"), fields.get("text")
    for name, part in (("html", html_part), ("text", text_part)):
        if part is not None and not isinstance(part, str):
            raise _Refusal(422, "validation_error", f"Invalid `{name}` field.")
    if not html_part and not text_part:
        raise _Refusal(422, "validation_error", "Missing `html` or `text` field.")
    headers = fields.get("headers") or {}
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise _Refusal(422, "validation_error", "Invalid `headers` field: an object of strings.")
    scheduled = fields.get("scheduled_at")
    return SentEmail(
        id=email_id,
        sender=sender,
        to=to,
        subject=subject,
        html=html_part,
        text=text_part,
        cc=_addresses(fields, "cc"),
        bcc=_addresses(fields, "bcc"),
        reply_to=_addresses(fields, "reply_to"),
        headers=dict(headers),
        tags=_tags(fields.get("tags")),
        scheduled_at=scheduled if isinstance(scheduled, str) else None,
        created_at=now,
        idempotency_key=key,
    )


def _addresses(fields: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = fields.get(name)
    if value is None:
        return ()
    listed = [value] if isinstance(value, str) else value
    if not isinstance(listed, list) or not all(
        isinstance(a, str) and address_of(a) for a in listed
    ):
        raise _Refusal(422, "validation_error", f"Invalid `{name}` field. {_ADDRESS_FORMAT}")
    return tuple(listed)


def _tags(value: object) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    invalid = _Refusal(
        422,
        "validation_error",
        "Tags should only contain ASCII letters, numbers, underscores, or dashes.",
    )
    if not isinstance(value, list):
        raise invalid
    tags = []
    for tag in value:
        if not isinstance(tag, dict) or set(tag) - {"name", "value"}:
            raise invalid
        name, tag_value = tag.get("name"), tag.get("value")
        if not isinstance(name, str) or not _TAG.match(name):
            raise invalid
        if tag_value is not None and (not isinstance(tag_value, str) or not _TAG.match(tag_value)):
            raise invalid
        tags.append((name, tag_value or ""))
    return tuple(tags)


def _timestamp(now: float) -> str:
    """Resend's `created_at` style: "2024-05-01 12:00:00.123456+00"."""
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")


def _rate_headers(
    remaining: int = RATE_LIMIT - 1, retry_after: int | None = None
) -> dict[str, str]:
    headers = {
        "ratelimit-limit": str(RATE_LIMIT),
        "ratelimit-remaining": str(remaining),
        "ratelimit-reset": str(retry_after or 1),
    }
    if retry_after is not None:
        headers["retry-after"] = str(retry_after)
    return headers


def _answer(status: int, body: object) -> Answer:
    return json_answer(status, body, _rate_headers())


def _error(
    status: int,
    name: str,
    message: str,
    *,
    remaining: int = RATE_LIMIT - 1,
    retry_after: int | None = None,
) -> Answer:
    body = {"statusCode": status, "message": message, "name": name}
    return json_answer(status, body, _rate_headers(remaining, retry_after))

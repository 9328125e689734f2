"""The Resend backend: one `POST /emails` per message through httpx, with the outbox row's id
as Resend's `Idempotency-Key` (Resend keeps a key 24 hours: a retry of a message it already
took answers the first id again and sends nothing more).

Resend's answers become outbox outcomes:
- 2xx: sent (an unreadable body too: Resend took the message).
- 429 (`rate_limit_exceeded`, `daily_quota_exceeded`): `SendThrottled`, with Retry-After.
- 400, 413, 422 and 409 `invalid_idempotent_request`: the message itself is refused, given up.
- Any other status (5xx, and 401/403/404: a wrong key, an unverified domain, a wrong base URL,
  which the operator can fix) and every network error: retried with backoff, so mail waits
  for the fix instead of being lost.

Sends are paced to `requests_per_second` in each process (Resend's default limit is two a
second for a team); a 429 from sends of other processes is what `SendThrottled` is for.
"""

from __future__ import annotations

import re
import time

import anyio
import httpx

from reapi import __version__

from .message import Message
from .sender import SendFailed, SendThrottled

__all__ = ["ResendSender"]

#: Refusals of the message itself: sending it again cannot succeed.
_REFUSED = frozenset({400, 413, 422})
_NAME = re.compile(r"^[a-z_]{1,40}$")
_TAG = re.compile(r"[^A-Za-z0-9_-]")
_DIGITS = re.compile(r"^[0-9]{1,9}$")
#: A Retry-After longer than this is not believed (a daily quota resets within a day).
_LONGEST_WAIT = 86_400.0


def _error_name(response: httpx.Response) -> str | None:
    """Resend's error `name` (a fixed identifier such as `validation_error`), never its
    message, which may quote what was sent."""
    try:
        name = response.json().get("name")
    except (ValueError, AttributeError):
        return None
    return name if isinstance(name, str) and _NAME.match(name) else None


def _seconds(value: str | None) -> float | None:
    if value is None or not _DIGITS.match(value.strip()):
        return None
    return min(float(value.strip()), _LONGEST_WAIT)


def _body(message: Message, sender: str) -> dict[str, object]:
    """The JSON body: the same for every retry of a message (Resend refuses a key reused with
    another body)."""
    body: dict[str, object] = {
        "from": sender,
        "to": [message.to],
        "subject": message.subject,
        "text": message.text,
    }
    if message.html is not None:
        body["html"] = message.html
    if message.headers:
        body["headers"] = dict(message.headers)
    body["tags"] = [
        {"name": "template", "value": _TAG.sub("_", message.template)[:256]},
        {"name": "kind", "value": message.kind},
    ]
    return body


class ResendSender:
    name = "resend"

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str,
        sender: str,
        timeout: float = 30.0,
        requests_per_second: float = 2.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.sender = sender
        self._url = base_url.rstrip("/") + "/emails"
        self._headers = {
            "authorization": f"Bearer {api_key}",
            "user-agent": f"reapi-server/{__version__}",
        }
        self._timeout = timeout
        self._owned = http is None
        self._http = http or httpx.AsyncClient(timeout=timeout)
        self._interval = 1.0 / requests_per_second if requests_per_second > 0 else 0.0
        self._pace = anyio.Lock()
        self._next_at = 0.0

    def __repr__(self) -> str:
        return f"ResendSender(url={self._url!r})"  # never the key

    async def _wait_turn(self) -> None:
        if not self._interval:
            return
        async with self._pace:
            now = time.monotonic()
            if self._next_at > now:
                await anyio.sleep(self._next_at - now)
            self._next_at = max(now, self._next_at) + self._interval

    async def send(self, message: Message, *, message_id: str) -> None:
        await self._wait_turn()
        try:
            response = await self._http.post(
                self._url,
                json=_body(message, self.sender),
                headers={**self._headers, "idempotency-key": message_id},
                timeout=self._timeout,
            )
        except httpx.HTTPError as error:
            # Only its type: the error holds the request, whose headers hold the API key.
            failure = SendFailed(type(error).__name__)
        else:
            if response.is_success:
                return
            failure = _failure(response)
        raise failure  # outside the handler: no chain back to httpx's error

    async def aclose(self) -> None:
        if self._owned:
            await self._http.aclose()


def _failure(response: httpx.Response) -> SendFailed:
    status = response.status_code
    name = _error_name(response)
    code = f"resend_{status}_{name}" if name else f"resend_{status}"
    retry_after = _seconds(response.headers.get("retry-after"))
    if status == 429:
        reset = _seconds(response.headers.get("ratelimit-reset"))
        return SendThrottled(code, retry_after=retry_after or reset or 1.0)
    if status in _REFUSED or (status == 409 and name == "invalid_idempotent_request"):
        return SendFailed(code, retryable=False)
    return SendFailed(code, retry_after=retry_after)

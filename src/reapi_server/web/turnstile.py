"""Cloudflare Turnstile, checked on our side: the token the widget put in the form
(`cf-turnstile-response`) goes to siteverify with the secret key and the client's address
before the form is looked at. A token passes once, within five minutes; an answer naming
another form's action does not pass here.

No answer from siteverify refuses the form too (a bot check that fails open is no check); the
person is told to try again. Nothing here logs the token or the address."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import httpx

from ..errors import GatewayError

__all__ = ["RESPONSE_FIELD", "BotCheckFailed", "BotCheckUnavailable", "Turnstile"]

log = logging.getLogger("reapi_server.web")

#: The form field Turnstile's widget fills in.
RESPONSE_FIELD = "cf-turnstile-response"
#: Longest token sent on (Cloudflare documents at most 2048 characters).
_MAX_TOKEN = 2048
_TIMEOUT = 10.0
#: siteverify's error codes that mean our request was wrong (the secret), not the person's.
_OPERATOR_ERRORS = frozenset(
    {"missing-input-secret", "invalid-input-secret", "bad-request", "internal-error"}
)


class BotCheckFailed(GatewayError):
    default_code = "bot_check_failed"

    def __init__(self) -> None:
        super().__init__(
            "Complete the check that you are a person, then send the form again.",
            param="turnstile",
        )


class BotCheckUnavailable(GatewayError):
    http_status = 503
    error_type = "server_error"
    default_code = "bot_check_unavailable"

    def __init__(self) -> None:
        super().__init__(
            "The check that you are a person could not be completed. Try again in a moment.",
            param="turnstile",
        )


@dataclass(frozen=True, slots=True)
class Turnstile:
    site_key: str
    secret: str = field(repr=False)
    verify_url: str

    async def verify(self, token: str, *, remote_ip: str, action: str) -> None:
        """Passes, or raises `BotCheckFailed` / `BotCheckUnavailable`."""
        if not token or len(token) > _MAX_TOKEN:
            raise BotCheckFailed()
        form = {"secret": self.secret, "response": token}
        if remote_ip:
            form["remoteip"] = remote_ip
        try:
            async with httpx.AsyncClient(timeout=_TIMEOUT) as client:
                answer = await client.post(self.verify_url, data=form)
            outcome = answer.json() if answer.status_code == 200 else None
            failure = f"status_{answer.status_code}"
        except (httpx.HTTPError, ValueError) as exc:
            # Raised after this block: the httpx error's request holds the secret.
            outcome, failure = None, type(exc).__name__
        if not isinstance(outcome, dict):
            log.warning("turnstile unavailable", extra={"code": failure})
            raise BotCheckUnavailable()
        if outcome.get("success") is True and outcome.get("action") in ("", None, action):
            return
        codes = outcome.get("error-codes")
        ours = set(codes if isinstance(codes, list) else ()) & _OPERATOR_ERRORS
        if ours:  # the configuration, not the person: say so to the operator
            log.error("turnstile refused our request", extra={"code": sorted(ours)[0]})
            raise BotCheckUnavailable()
        raise BotCheckFailed()

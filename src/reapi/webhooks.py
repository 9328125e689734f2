"""Webhooks signed per the Standard Webhooks specification (version 1, symmetric).

A reapi gateway POSTs a finished video to the `webhook_url` it was given, with three headers:

- `webhook-id`: the message id, the same on every retry (use it to process a message once);
- `webhook-timestamp`: the attempt's time, whole Unix seconds;
- `webhook-signature`: one or more space-separated `v1,<base64>` signatures, each an
  HMAC-SHA256 of `<webhook-id>.<webhook-timestamp>.<body>` keyed with the secret's bytes.

The secret is `whsec_` followed by base64 (the prefix may be left off). Check the raw body as
received: a body parsed and serialised again is not the body that was signed.

>>> from reapi.webhooks import Webhook
>>> hook = Webhook("whsec_...")
>>> video = hook.verify(request_body, request_headers)  # the decoded JSON, or raises
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

from ._detached import translated
from ._exceptions import ConfigurationError, WebhookVerificationError
from ._numbers import ascii_whole_number
from ._secret import Secret

__all__ = ["DEFAULT_TOLERANCE", "Webhook", "WebhookVerificationError", "sign", "verify"]

#: Seconds a timestamp may be away from the receiver's clock, either way (replay protection).
DEFAULT_TOLERANCE = 300.0
SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix the spec gives secrets, not one
_VERSION = "v1"
_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")

Body = bytes | str


def _key(secret: str | bytes) -> bytes:
    """The HMAC key: given as bytes, or as `whsec_<base64>` (prefix optional)."""
    if isinstance(secret, bytes):
        key = secret
    else:
        try:
            key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
        except (binascii.Error, ValueError):
            key = b""
    if not key:
        # Never the value: it is a secret, even when malformed.
        raise ConfigurationError(
            "the webhook secret must be whsec_ followed by base64", code="invalid_webhook_secret"
        )
    return key


def _as_bytes(body: Body) -> bytes:
    return body.encode() if isinstance(body, str) else bytes(body)


def _signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = msg_id.encode() + b"." + str(timestamp).encode() + b"." + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class Webhook:
    """One secret, to verify what a gateway sends (`verify`) or to sign as it does (`sign`)."""

    __slots__ = ("_secret",)

    def __init__(self, secret: str | bytes) -> None:
        # A malformed secret fails here, not at the first webhook; kept where no repr shows it.
        self._secret = Secret(base64.b64encode(_key(secret)).decode())

    def _key(self) -> bytes:
        return base64.b64decode(self._secret.reveal())

    def sign(self, msg_id: str, timestamp: int, payload: Body) -> str:
        """The `webhook-signature` value (`v1,<base64>`) for this message."""
        if "." in msg_id:
            raise ValueError("a webhook id must not contain a full stop")
        return f"{_VERSION},{_signature(self._key(), msg_id, int(timestamp), _as_bytes(payload))}"

    def verify(
        self,
        payload: Body,
        headers: Mapping[str, str],
        *,
        tolerance: float = DEFAULT_TOLERANCE,
        now: float | None = None,
    ) -> Any:
        """The decoded JSON body once the headers prove it came from the secret's holder;
        `WebhookVerificationError` otherwise. `now`: the receiver's clock (for tests)."""
        given = {name.lower(): value for name, value in headers.items()}
        for name in _HEADERS:
            if not given.get(name):
                raise WebhookVerificationError(
                    f"the {name} header is missing", code="webhook_missing_header"
                )
        msg_id, stamp, signatures = (given[name] for name in _HEADERS)
        timestamp = ascii_whole_number(stamp.strip())
        if timestamp is None:
            raise WebhookVerificationError(
                "webhook-timestamp is not whole Unix seconds", code="webhook_invalid_timestamp"
            )
        clock = time.time() if now is None else now
        if timestamp < clock - tolerance:
            raise WebhookVerificationError(
                "webhook-timestamp is too old", code="webhook_timestamp_too_old"
            )
        if timestamp > clock + tolerance:
            raise WebhookVerificationError(
                "webhook-timestamp is in the future", code="webhook_timestamp_too_new"
            )
        body = _as_bytes(payload)
        expected = _signature(self._key(), msg_id, timestamp, body).encode()
        matched = False
        for entry in signatures.split(" "):
            version, _, value = entry.partition(",")
            # Every entry is compared (no early exit), each in constant time.
            if version == _VERSION and hmac.compare_digest(value.encode(), expected):
                matched = True
        if not matched:
            raise WebhookVerificationError(
                "no webhook signature matches", code="webhook_invalid_signature"
            )
        return translated(
            lambda: json.loads(body),
            ValueError,
            lambda _: WebhookVerificationError(
                "the webhook body is not JSON", code="webhook_invalid_body"
            ),
        )

    def __repr__(self) -> str:
        return "Webhook(secret='**********')"


def sign(payload: Body, *, msg_id: str, timestamp: int, secret: str | bytes) -> str:
    """The `webhook-signature` value (`v1,<base64>`) of one message."""
    return Webhook(secret).sign(msg_id, timestamp, payload)


def verify(
    payload: Body,
    headers: Mapping[str, str],
    secret: str | bytes,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> Any:
    """The decoded JSON body of a webhook, once its signature and timestamp check out;
    `WebhookVerificationError` otherwise. See `Webhook.verify`."""
    return Webhook(secret).verify(payload, headers, tolerance=tolerance, now=now)

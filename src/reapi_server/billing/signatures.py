"""Stripe's webhook signatures: `Stripe-Signature: t=<unix time>,v1=<hex>[,v1=<hex>...]`, each
`v1` an HMAC-SHA256 of `"<t>.<raw body>"` keyed by an endpoint secret.

A delivery is genuine when any of its `v1` values matches any configured secret (while a secret
is rolled, Stripe signs with the old and the new one, and the operator lists both), and fresh
when its `t` is within the tolerance of our clock, either way. Everything is compared in
constant time. Written here rather than taken from `stripe.Webhook`, which reads one secret and
the wall clock: the gateway's clock is the one its tests move.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

__all__ = ["BadSignature", "verify"]


class BadSignature(Exception):
    """The reason, in a few fixed words (never the header or the body)."""


def _parse(header: str) -> tuple[int, list[bytes]]:
    timestamp: int | None = None
    signatures: list[bytes] = []
    for item in header.split(","):
        name, _, value = item.strip().partition("=")
        if name == "t" and value.isascii() and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif name == "v1" and len(value) == 64 and value.isascii():
            try:
                signatures.append(bytes.fromhex(value))
            except ValueError:
                continue
    if timestamp is None:
        raise BadSignature("no timestamp")
    if not signatures:
        raise BadSignature("no v1 signature")
    return timestamp, signatures


def verify(
    body: bytes, header: str | None, secrets: Sequence[str], *, now: float, tolerance: float
) -> None:
    """Return if the delivery is genuine and fresh; raise `BadSignature` otherwise."""
    if not header or len(header) > 4096:
        raise BadSignature("no signature")
    timestamp, signatures = _parse(header)
    signed = str(timestamp).encode() + b"." + body
    expected = [hmac.new(secret.encode(), signed, hashlib.sha256).digest() for secret in secrets]
    # Every pair is compared (no early exit): the time taken says nothing about which matched.
    matched = False
    for signature in signatures:
        for digest in expected:
            matched |= hmac.compare_digest(signature, digest)
    if not matched:
        raise BadSignature("no signature matches")
    if abs(now - timestamp) > tolerance:
        raise BadSignature("stale timestamp")

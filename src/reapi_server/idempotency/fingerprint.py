"""Keyed hashes of a request and of the client's key. A hash is not the body: with the server's
secret as HMAC key, not even a short prompt can be recovered from it by guessing."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from typing import Any

from reapi.core import File, Payload

from ..references.reference import Reference

__all__ = ["fingerprint", "hash_idempotency_key"]


def _canonical(value: Any) -> Any:
    if isinstance(value, File):
        return {"file_sha256": hashlib.sha256(value.content).hexdigest()}
    if isinstance(value, Reference):  # the same URL or file id is the same request
        return {"reference": [value.param, value.url, value.file_id]}
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(value.items())}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [_canonical(v) for v in value]
    return value


def fingerprint(secret: bytes, endpoint: str, params: Mapping[str, Any], payload: Payload) -> str:
    document = {
        "endpoint": endpoint,
        "params": _canonical(params),
        "payload": _canonical(payload.reveal()),
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(secret, canonical, hashlib.sha256).hexdigest()


def hash_idempotency_key(secret: bytes, key: str) -> str:
    return hmac.new(secret, b"idempotency-key:" + key.encode(), hashlib.sha256).hexdigest()

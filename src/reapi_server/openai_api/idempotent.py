"""Wrap a create call in `Idempotency-Key` handling (see `idempotency.service`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from reapi.core import Payload

from ..api_keys.auth import Principal
from ..idempotency import service
from ..idempotency.fingerprint import fingerprint
from ..idempotency.service import RecordAnswer
from ..runtime import Runtime
from .responses import json_response

__all__ = ["Created", "Run", "idempotent"]

#: (HTTP status, body, snapshot for replays, the credits charged: None while unknown). A
#: snapshot may hold the charge too (`service.CHARGED_KEY`): a replay sends it again.
Created = tuple[int, dict[str, Any], dict[str, Any], int | None]
#: Runs the request; given a key, it records its answer with `RecordAnswer` inside the
#: transaction that makes its charge final (see `idempotency.service`).
Run = Callable[[RecordAnswer | None], Awaitable[Created]]

_WAIT_FOR_FIRST = 300.0


async def idempotent(
    rt: Runtime,
    principal: Principal,
    request: Request,
    endpoint: str,
    params: Any,
    payload: Payload,
    *,
    run: Run,
    replay: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]],
) -> Response:
    """`params`: the request's parameters (a mapping, or a dataclass turned into one only when
    the request has an `Idempotency-Key`: doing it for every request costs them for nothing)."""
    key = request.headers.get("idempotency-key")
    if key is None or not principal.allows(_model_of(params)):
        # A key that may not call the model is refused as it is without the header: records
        # are the account's, and a replay would hand it what another of its keys made.
        status, body, _, charged = await run(None)
        return json_response(body, status, charged=charged)
    claimed = await service.begin(
        rt,
        principal.account_id,
        key,
        fingerprint(rt.fingerprint_secret, endpoint, _fields(params), payload),
        wait_seconds=_WAIT_FOR_FIRST,
    )
    if isinstance(claimed, service.Replay):
        body = await replay(claimed.snapshot)
        # The first answer again, its charge included (charged once: by the first request).
        charged = claimed.snapshot.get(service.CHARGED_KEY)
        return json_response(
            body, claimed.status_code, {"idempotent-replayed": "true"}, charged=charged
        )
    try:
        status, body, snapshot, charged = await run(claimed.record)
    except BaseException:
        await service.abandon(rt, claimed)
        raise
    await service.finish(rt, claimed, status, snapshot)
    return json_response(body, status, charged=charged)


def _model_of(params: Any) -> str:
    model: str = params["model"] if isinstance(params, Mapping) else params.model
    return model


#: Parameters left out of a fingerprint: added after records were written (a record lives a
#: day), their None would make the retry of an earlier request a mismatch (409
#: `idempotency_key_reused`) on the upgraded instances of a rolling deploy. `partial_images` is
#: set only on a streamed request, which never has a key.
_ADDED_LATER = ("partial_images",)


def _fields(params: Any) -> Mapping[str, Any]:
    if isinstance(params, Mapping):
        return params
    fields = dataclasses.asdict(params)
    for name in _ADDED_LATER:
        if fields.get(name) is None:
            fields.pop(name, None)
    return fields

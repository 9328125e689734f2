"""Turning a request's references into files: after every check and the credit hold.

A request names its inputs by http(s) URL or by `file_id` (one of the caller's own stored
outputs); `data:` URLs are decoded with the body (see `openai_api.requests`). Until the request
has passed the key, the limits, the model's capabilities and counts, and its credit is held, a
reference stays a `Reference` in the sealed payload: nothing is downloaded for a request that
would be refused (an account without credit, more images than the model takes). Then every
reference of the request is loaded at once, through the runtime's safe fetcher (public addresses
only on every redirect hop, the connection pinned to the vetted address, size caps, magic bytes:
`reapi._fetch`), all of them together bounded by `fetch_max_request_bytes`. A refusal then is a
400 like any other; the caller releases the hold.

A file keeps the URL it came from (`File.source_url`), so an upstream that reads its inputs from
URLs only (DashScope) is handed that vetted URL rather than nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio

from reapi.core import (
    ByteBudget,
    File,
    Payload,
    extension_for,
    first_of_group,
    sniff_media_type,
    translated_async,
)

from ..api_keys.auth import Principal
from ..errors import GatewayError
from ..mirror.repository import get_output
from ..runtime import Runtime
from .reference import Reference

__all__ = ["has_references", "resolve"]


def has_references(payload: Payload) -> bool:
    return any(_references_in(value) for value in payload.reveal().values())


def _references_in(value: Any) -> list[Reference]:
    if isinstance(value, Reference):
        return [value]
    if isinstance(value, tuple):
        return [item for item in value if isinstance(item, Reference)]
    return []


async def resolve(rt: Runtime, principal: Principal, payload: Payload) -> Payload:
    """The payload with every reference replaced by the file it names (loaded at once)."""
    fields = dict(payload.reveal())
    references = [ref for value in fields.values() for ref in _references_in(value)]
    budget = ByteBudget(rt.settings.fetch_max_request_bytes)
    loads = [functools.partial(_load, rt, principal, ref, budget) for ref in references]
    files = dict(zip(map(id, references), await _all(loads), strict=True))

    def resolved(value: Any) -> Any:
        if isinstance(value, Reference):
            return files[id(value)]
        if isinstance(value, tuple):
            return tuple(resolved(item) for item in value)
        return value

    return payload.with_fields(**{name: resolved(value) for name, value in fields.items()})


async def _load(rt: Runtime, principal: Principal, ref: Reference, budget: ByteBudget) -> File:
    if ref.file_id is not None:
        return await _stored_file(rt, principal, ref, budget)
    assert ref.url is not None
    return await rt.fetcher.fetch(ref.url, accept=ref.accept, param=ref.param, budget=budget)


async def _stored_file(
    rt: Runtime, principal: Principal, ref: Reference, budget: ByteBudget
) -> File:
    """One of the caller's own outputs; another account's id is as unknown as a made-up one."""
    param, file_id = ref.param, ref.file_id or ""
    async with rt.db.read() as session:
        output = await get_output(session, file_id)
    if output is None or output.account_id != principal.account_id:
        raise GatewayError(f"{param}: no such file", param=param, code="file_not_found")
    limit = max(rt.fetcher.policy.limit_for(kind) for kind in ref.accept)
    if output.size_bytes > limit:
        raise GatewayError(
            f"{param} is larger than {limit // (1024 * 1024)} MiB",
            param=param,
            code="file_too_large",
        )
    budget.take(output.size_bytes, param)
    opened = await rt.store.open(output.storage_key)
    if opened is None:
        raise GatewayError(f"{param}: no such file", param=param, code="file_not_found")
    content = await opened.read()
    content_type = sniff_media_type(content)
    if content_type is None or content_type not in ref.accept:
        raise GatewayError(
            f"{param} is not a file this input takes", param=param, code="invalid_file"
        )
    return File(content, f"{param}.{extension_for(content_type)}", content_type)


async def _all(loads: Sequence[Callable[[], Awaitable[File]]]) -> list[File]:
    """Every load at once; the first failure cancels the rest and is what the caller sees."""
    files: list[File | None] = [None] * len(loads)

    async def one(index: int) -> None:
        files[index] = await loads[index]()

    async def every() -> None:
        async with anyio.create_task_group() as group:
            for index in range(len(loads)):
                group.start_soon(one, index)

    await translated_async(every, BaseExceptionGroup, first_of_group)
    return [file for file in files if file is not None]

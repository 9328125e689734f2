"""Caller URLs become bytes at the gateway's door, before anything reaches an adapter.

Every URL a request carries — the images and mask of a JSON edit, a video's `input_reference`
(a first frame, or the source of an enhancement) — is downloaded here by the runtime's safe
fetcher (`reapi._fetch`: public addresses only on every redirect hop, the connection pinned to
the vetted address, a size cap, magic bytes) or decoded (a `data:` URL, same kinds and caps).
Adapters only ever see files; a refused URL is a 400 before any credit is held or any usage row
written. A file keeps the URL it came from (`File.source_url`), so an upstream that reads its
inputs from URLs only (DashScope) is handed that vetted URL rather than nothing.

`file_id` names one of the caller's own stored outputs (`/v1/files/{id}`): edit what you made.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence

import anyio

from reapi._media import IMAGE_TYPES, MEDIA_TYPES, extension_for, sniff_media_type
from reapi._payload import File, Payload
from reapi._urls import decode_data_url

from ..api_keys.auth import Principal
from ..errors import GatewayError
from ..mirror.repository import get_output
from ..runtime import Runtime
from .requests import ImageEditBody, ImageRef

__all__ = ["edit_inputs", "fetch_reference", "load_reference", "with_fetched_reference"]


async def fetch_reference(rt: Runtime, url: str, *, param: str, accept: frozenset[str]) -> File:
    """The file a caller's URL (http(s) or data:) names, or a 400 naming `param`."""
    if url[:5].lower() == "data:":
        return decode_data_url(url, accept, param, rt.fetcher.policy)
    return await rt.fetcher.fetch(url, accept=accept, param=param)


async def with_fetched_reference(rt: Runtime, payload: Payload) -> Payload:
    """A video request's payload with its `input_reference` URL replaced by the file."""
    reference = payload.get("input_reference")
    if not isinstance(reference, str):
        return payload
    file = await fetch_reference(rt, reference, param="input_reference", accept=MEDIA_TYPES)
    return payload.with_fields(input_reference=file)


async def _stored_file(
    rt: Runtime, principal: Principal, file_id: str, *, param: str, accept: frozenset[str]
) -> File:
    """One of the caller's own outputs; another account's id is as unknown as a made-up one."""
    async with rt.db.read() as session:
        output = await get_output(session, file_id)
    if output is None or output.account_id != principal.account_id:
        raise GatewayError(f"{param}: no such file", param=param, code="file_not_found")
    policy = rt.fetcher.policy
    limit = max(policy.limit_for(kind) for kind in accept)
    if output.size_bytes > limit:
        raise GatewayError(
            f"{param} is larger than {limit // (1024 * 1024)} MiB",
            param=param,
            code="file_too_large",
        )
    opened = await rt.store.open(output.storage_key)
    if opened is None:
        raise GatewayError(f"{param}: no such file", param=param, code="file_not_found")
    content = await opened.read()
    content_type = sniff_media_type(content)
    if content_type is None or content_type not in accept:
        raise GatewayError(
            f"{param} is not a file this input takes", param=param, code="invalid_file"
        )
    return File(content, f"{param}.{extension_for(content_type)}", content_type)


async def load_reference(
    rt: Runtime, principal: Principal, ref: ImageRef, *, param: str, accept: frozenset[str]
) -> File:
    """`{"image_url": ...}` or `{"file_id": ...}` as the file it names."""
    if ref.file_id is not None:
        param = f"{param}.file_id"
        return await _stored_file(rt, principal, ref.file_id, param=param, accept=accept)
    url = ref.image_url or ""
    return await fetch_reference(rt, url, param=f"{param}.image_url", accept=accept)


async def _all(loads: Sequence[Callable[[], Awaitable[File]]]) -> list[File]:
    """Every load at once; the first failure cancels the rest and is what the caller sees."""
    files: list[File | None] = [None] * len(loads)

    async def one(index: int) -> None:
        files[index] = await loads[index]()

    try:
        async with anyio.create_task_group() as group:
            for index in range(len(loads)):
                group.start_soon(one, index)
    except BaseExceptionGroup as failures:
        raise failures.exceptions[0] from None
    return [file for file in files if file is not None]


async def edit_inputs(
    rt: Runtime, principal: Principal, body: ImageEditBody
) -> tuple[list[File], File | None]:
    """The images and mask of a JSON edit, as files (fetched at once)."""
    refs = [(ref, f"images[{i}]") for i, ref in enumerate(body.images)]
    if body.mask is not None:
        refs.append((body.mask, "mask"))
    loads = [
        functools.partial(load_reference, rt, principal, ref, param=param, accept=IMAGE_TYPES)
        for ref, param in refs
    ]
    files = await _all(loads)
    if body.mask is not None:
        return files[:-1], files[-1]
    return files, None

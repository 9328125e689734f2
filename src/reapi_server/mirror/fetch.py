"""A finished task's file, as the body to store: inline bytes as they are, an upstream URL as a
stream of pieces read while they are stored, so a large video is never held whole in memory."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import anyio
import httpx

from reapi import APIConnectionError, APITimeoutError
from reapi.catalog import Route
from reapi.core import translated_async
from reapi.providers import GeneratedFile, UpstreamRequest, UpstreamResponse

from ..runtime import Runtime
from .storage import Body

__all__ = ["upstream_body"]

#: Enough of an error answer for the adapter to classify it.
_ERROR_BODY_LIMIT = 64 * 1024


def upstream_body(rt: Runtime, route: Route, file: GeneratedFile) -> Body | None:
    """The file's bytes, a stream of them (nothing is sent before it is read), or None."""
    if file.data is not None:
        return file.data
    if file.fetch is None:
        return None
    return _stream(rt, route, file.fetch)


async def _stream(rt: Runtime, route: Route, request: UpstreamRequest) -> AsyncIterator[bytes]:
    """The same deadlines as the engine's downloads: the first byte, each read, and the whole."""
    provider = route.provider
    if rt.result_urls is not None:  # the provider's answer named it: not inside our network
        await rt.result_urls.check(request.url, provider)
    first_byte = rt.router.first_byte_timeout(route)
    deadline = time.monotonic() + first_byte + rt.router.config.download_timeout
    client = rt.engine.client
    built = client.build_request(
        request.method, request.url, headers=dict(request.headers), timeout=first_byte
    )

    async def connect() -> httpx.Response:
        with anyio.fail_after(first_byte):
            return await client.send(built, stream=True)

    # httpx's errors keep the request, whose headers carry the provider's key: never chained.
    response = await translated_async(
        connect, (httpx.TransportError, TimeoutError), lambda e: _connection_error(e, provider)
    )
    failure: APIConnectionError | None = None
    try:
        if response.status_code >= 400:
            await _raise_for_status(rt, route, response)
        async for chunk in response.aiter_bytes():
            if time.monotonic() > deadline:
                message = f"{provider} did not finish the download in time"
                raise APITimeoutError(message, provider=provider)
            yield chunk
    except (httpx.TransportError, httpx.StreamError) as exc:
        failure = _connection_error(exc, provider)
    finally:
        await response.aclose()
    if failure is not None:
        raise failure  # out of the except block: nothing chained


async def _raise_for_status(rt: Runtime, route: Route, response: httpx.Response) -> None:
    content = b""
    async for chunk in response.aiter_bytes():
        content += chunk
        if len(content) >= _ERROR_BODY_LIMIT:
            break
    reply = UpstreamResponse(response.status_code, dict(response.headers), content)
    rt.core.adapter(route).check(reply)


def _connection_error(exc: BaseException, provider: str) -> APIConnectionError:
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return APITimeoutError(f"{provider} did not answer the download in time", provider=provider)
    return APIConnectionError(
        f"{provider} could not be reached ({type(exc).__name__} during a download)",
        provider=provider,
    )

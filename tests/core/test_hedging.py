"""Hedging: after `hedge_after` without an answer the next route starts; first success wins."""

import asyncio
import base64
import time

import httpx

from reapi import AsyncReAPI, ReAPI, RouterConfig

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()
BODY = {"created": 1, "data": [{"b64_json": PNG}]}


def settings(catalog):
    return {
        "catalog": catalog,
        "provider_keys": {"primary": "a", "backup": "b"},
        "provider_base_urls": {
            "primary": "http://primary.test/v1",
            "backup": "http://backup.test/v1",
        },
        "router": RouterConfig(first_byte_timeout=5.0, hedge_after=0.1),
    }


def test_sync_hedge_serves_from_the_faster_route(catalog):
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "primary.test":
            time.sleep(1.0)
        return httpx.Response(200, json=BODY)

    client = ReAPI(
        http_client=httpx.Client(transport=httpx.MockTransport(handler)), **settings(catalog)
    )
    started = time.perf_counter()
    result = client.images.generate(model="gpt-image-2", prompt="p")
    assert result.reapi.provider == "backup"
    assert time.perf_counter() - started < 0.8


async def test_async_hedge_cancels_the_slow_route(catalog):
    cancelled = []

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "primary.test":
            try:
                await asyncio.sleep(2.0)
            except asyncio.CancelledError:
                cancelled.append(True)
                raise
        return httpx.Response(200, json=BODY)

    client = AsyncReAPI(
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)), **settings(catalog)
    )
    started = time.perf_counter()
    result = await client.images.generate(model="gpt-image-2", prompt="p")
    assert result.reapi.provider == "backup"
    assert time.perf_counter() - started < 1.0
    assert cancelled == [True]


async def test_async_hedge_not_needed_when_primary_is_fast(catalog):
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=BODY)

    client = AsyncReAPI(
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)), **settings(catalog)
    )
    result = await client.images.generate(model="gpt-image-2", prompt="p")
    assert result.reapi.provider == "primary" and result.reapi.attempts == 1

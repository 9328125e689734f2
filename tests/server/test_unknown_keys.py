"""Well-formed keys that are no keys (the checksum is public): one lookup for a repeated one
(a negative cache of digests, which a key made later can never be in), and a budget per client
address of lookups that found nothing: past it, 429 with Retry-After, while keys in use from
the same address go on working. Before, every such request cost a database lookup."""

from __future__ import annotations

import httpx
import pytest
from tests.server.helpers import auth

from reapi_server.api_keys import repository
from reapi_server.api_keys.keys import new_key


@pytest.fixture
def lookups(monkeypatch) -> list[str]:
    seen: list[str] = []
    real = repository.find_active

    async def counted(session, key_hash):
        seen.append(key_hash)
        return await real(session, key_hash)

    monkeypatch.setattr(repository, "find_active", counted)
    return seen


def _from(gateway, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=gateway.app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url=str(gateway.client.base_url))


async def test_a_repeated_unknown_key_is_looked_up_once(gateway, lookups):
    key = new_key().plaintext
    for _ in range(5):
        response = await gateway.client.get("/v1/models", headers=auth(key))
        assert response.status_code == 401
        error = response.json()["error"]
        assert error["code"] == "invalid_api_key" and error["type"] == "invalid_request_error"
    assert len(lookups) == 1


async def test_a_flood_of_unknown_keys_is_limited_per_address(gateway, lookups):
    _, good = await gateway.account()
    ticks = [0.0]
    gateway.rt.auth._clock = lambda: ticks[0]
    async with _from(gateway, "203.0.113.7") as flooder, _from(gateway, "198.51.100.2") as other:
        assert (await flooder.get("/v1/models", headers=auth(good))).status_code == 200
        ticks[0] = 10.0  # the good key's cache entry has expired: it is looked up again below
        for _ in range(60):
            refused = await flooder.get("/v1/models", headers=auth(new_key().plaintext))
            assert refused.status_code == 401
        before = len(lookups)
        limited = await flooder.get("/v1/models", headers=auth(new_key().plaintext))
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.json()["error"]["type"] == "rate_limit_error"
        assert len(lookups) == before  # no lookup for it
        # A key in use from the same address, and another address, are not held up.
        assert (await flooder.get("/v1/models", headers=auth(good))).status_code == 200
        assert (await other.get("/v1/models", headers=auth(new_key().plaintext))).status_code == 401
        _, made_now = await gateway.account()  # a key made now works at once, from elsewhere
        assert (await other.get("/v1/models", headers=auth(made_now))).status_code == 200
        ticks[0] = 12.0  # the budget refills: a lookup a second
        assert (
            await flooder.get("/v1/models", headers=auth(new_key().plaintext))
        ).status_code == 401

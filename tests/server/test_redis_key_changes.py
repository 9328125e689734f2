"""A key's revocation or limit change, or an account's disabling, reaches every process of the
fleet at once through Redis: the process that made it says so on the bus and the others drop the
principals they cached (without Redis they keep them for up to the cache's 2 seconds)."""

import asyncio
import time

import pytest
from tests.server.helpers import auth
from tests.server.redis import redis_server, redis_settings, until_subscribed  # noqa: F401

from reapi_server.api_keys.keys import hash_key
from reapi_server.api_keys.repository import find_active
from reapi_server.api_keys.service import keys_service
from reapi_server.audit import Actor
from reapi_server.backoffice import actions

pytestmark = pytest.mark.redis

ADMIN = Actor.admin("usr_admin")


async def _pair(make_gateway, **settings):
    first = await make_gateway(**settings)
    second = await make_gateway(database_url=first.rt.settings.resolved_database_url, **settings)
    return first, second


async def _key_id(rt, key: str) -> str:
    async with rt.db.read() as session:
        found = await find_active(session, hash_key(key))
    assert found is not None
    return found[0].id


def _frozen(gateway) -> None:
    """The second process's cache never expires on its own: only a message can empty it."""
    gateway.rt.auth._clock = lambda: 0.0


async def _until_status(gateway, key: str, status: int, seconds: float = 5.0):
    deadline = time.monotonic() + seconds
    while True:
        response = await gateway.client.get("/v1/models", headers=auth(key))
        if response.status_code == status or time.monotonic() > deadline:
            return response
        await asyncio.sleep(0.02)


async def test_a_key_revoked_on_one_process_is_refused_by_another_at_once(
    make_gateway,
    redis_settings,  # noqa: F811
):
    first, second = await _pair(make_gateway, **redis_settings)
    await until_subscribed(first.rt, 2)
    account_id, key = await first.account()
    _, other_key = await first.account()
    _frozen(second)
    for cached in (key, other_key):
        assert (await second.client.get("/v1/models", headers=auth(cached))).status_code == 200
    await keys_service(first.rt).revoke(account_id, await _key_id(first.rt, key))
    refused = await _until_status(second, key, 401)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_api_key"
    # Only that key's principal went: the other key is still answered from the cache.
    second.rt.auth._db = None  # any lookup now would fail
    assert (await second.client.get("/v1/models", headers=auth(other_key))).status_code == 200


async def test_an_allowlist_change_reaches_another_process_at_once(
    make_gateway,
    redis_settings,  # noqa: F811
):
    first, second = await _pair(make_gateway, **redis_settings)
    await until_subscribed(first.rt, 2)
    account_id, key = await first.account()
    _frozen(second)
    listed = await second.client.get("/v1/models", headers=auth(key))
    models = sorted(model["id"] for model in listed.json()["data"])
    assert len(models) > 1
    key_id = await _key_id(first.rt, key)
    await keys_service(first.rt).update(account_id, key_id, {"models": models[:1]})
    deadline = time.monotonic() + 5
    while True:
        listed = await second.client.get("/v1/models", headers=auth(key))
        seen = sorted(model["id"] for model in listed.json()["data"])
        if seen == models[:1] or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.02)
    assert seen == models[:1]


async def test_a_disabled_account_is_refused_by_another_process_at_once(
    make_gateway,
    redis_settings,  # noqa: F811
):
    first, second = await _pair(make_gateway, **redis_settings)
    await until_subscribed(first.rt, 2)
    account_id, key = await first.account()
    _frozen(second)
    assert (await second.client.get("/v1/models", headers=auth(key))).status_code == 200
    async with first.rt.db.write() as session:
        assert await actions.disable_account(session, ADMIN, account_id, now=first.rt.now())
    first.rt.auth.changed(account_id=account_id)  # what the admin page does after it
    refused = await _until_status(second, key, 403)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "account_disabled"


async def test_without_redis_another_process_keeps_its_cache(make_gateway):
    first, second = await _pair(make_gateway)
    account_id, key = await first.account()
    _frozen(second)
    assert (await second.client.get("/v1/models", headers=auth(key))).status_code == 200
    await keys_service(first.rt).revoke(account_id, await _key_id(first.rt, key))
    assert (await first.client.get("/v1/models", headers=auth(key))).status_code == 401
    # Until its cache's 2 seconds are up (the clock here never moves): documented.
    assert (await second.client.get("/v1/models", headers=auth(key))).status_code == 200

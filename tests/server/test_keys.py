"""API keys: format with checksum, hash-only storage, malformed keys refused without a lookup,
revocation immediate."""

import pytest
from tests.server.helpers import auth

from reapi_server.api_keys import repository
from reapi_server.api_keys.keys import KEY_PREFIX, hash_key, is_well_formed, new_key
from reapi_server.api_keys.service import revoke_key


def test_key_format():
    issued = new_key()
    key = issued.plaintext
    assert key.startswith(KEY_PREFIX) and len(key) == len(KEY_PREFIX) + 43 + 1 + 6
    assert is_well_formed(key)
    assert issued.last4 == key[-4:] and issued.key_hash == hash_key(key)
    assert key not in repr(issued)
    flipped = key[:10] + ("A" if key[10] != "A" else "B") + key[11:]
    assert not is_well_formed(flipped)  # the checksum catches a typo
    assert not is_well_formed("sk-" + key) and not is_well_formed(key + "x")


async def test_only_hash_and_last4_are_stored(gateway):
    _, key = await gateway.account()
    await gateway.rt.db.dispose()
    raw = (gateway.data_dir / "reapi.db").read_bytes()
    wal = gateway.data_dir / "reapi.db-wal"
    raw += wal.read_bytes() if wal.exists() else b""
    assert key.encode() not in raw
    assert key[len(KEY_PREFIX) : -8].encode() not in raw


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Basic abc",
        "Bearer ",
        "Bearer rk_live_short",
        "Bearer " + "rk_live_" + "a" * 43 + "_000000",
    ],
)
async def test_malformed_keys_never_reach_the_database(gateway, monkeypatch, header):
    async def boom(*args, **kwargs):
        raise AssertionError("database lookup for a malformed key")

    monkeypatch.setattr(repository, "find_active", boom)
    headers = {"authorization": header} if header else {}
    response = await gateway.client.get("/v1/models", headers=headers)
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] in ("invalid_api_key", "missing_api_key")
    assert set(error) == {"message", "type", "param", "code"}


async def test_unknown_well_formed_key_is_401(gateway):
    response = await gateway.client.get("/v1/models", headers=auth(new_key().plaintext))
    assert response.status_code == 401


async def test_cookies_are_not_credentials(gateway):
    _, key = await gateway.account()
    response = await gateway.client.get(
        "/v1/models", headers={"cookie": f"session={key}; api_key={key}"}
    )
    assert response.status_code == 401


async def test_revocation_is_immediate(gateway):
    _, key = await gateway.account()
    assert (await gateway.client.get("/v1/models", headers=auth(key))).status_code == 200
    async with gateway.rt.db.write() as session:
        assert await revoke_key(session, key, now=gateway.rt.now())
    gateway.rt.auth.forget_all()
    assert (await gateway.client.get("/v1/models", headers=auth(key))).status_code == 401


async def test_revocation_reaches_other_processes_within_the_cache_ttl(gateway):
    _, key = await gateway.account()
    ticks = [0.0]
    gateway.rt.auth._clock = lambda: ticks[0]
    assert (await gateway.client.get("/v1/models", headers=auth(key))).status_code == 200
    async with gateway.rt.db.write() as session:  # as if another process revoked it
        await revoke_key(session, key, now=gateway.rt.now())
    ticks[0] = 2.5
    assert (await gateway.client.get("/v1/models", headers=auth(key))).status_code == 401

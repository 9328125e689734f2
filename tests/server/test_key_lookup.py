"""The API key lookup behind the authenticator's short cache."""

import asyncio

import pytest
from sqlalchemy.exc import OperationalError

from reapi_server.api_keys import repository as key_rows


async def test_requests_that_miss_the_cache_together_share_one_lookup(gateway, monkeypatch):
    """When a key's cached entry expires under load, every request that comes before the
    lookup answers waits for that one lookup: a read each took a database connection each
    (on PostgreSQL the pool opened and closed a connection per waiter, every cache period)."""
    _, key = await gateway.account()
    lookups = 0
    real_find = key_rows.find_active

    async def counted(session, key_hash):
        nonlocal lookups
        lookups += 1
        await asyncio.sleep(0.05)  # a read that takes a while, as under load
        return await real_find(session, key_hash)

    monkeypatch.setattr(key_rows, "find_active", counted)
    principals = await asyncio.gather(
        *(gateway.rt.auth.authenticate(f"Bearer {key}") for _ in range(20))
    )
    assert lookups == 1
    assert len({p.key_id for p in principals}) == 1


async def test_a_failed_shared_lookup_fails_its_waiters_and_is_not_kept(gateway, monkeypatch):
    _, key = await gateway.account()
    real_find = key_rows.find_active
    failing = True

    async def flaky(session, key_hash):
        await asyncio.sleep(0.01)
        if failing:
            raise ConnectionResetError("database went away")
        return await real_find(session, key_hash)

    monkeypatch.setattr(key_rows, "find_active", flaky)
    outcomes = await asyncio.gather(
        *(gateway.rt.auth.authenticate(f"Bearer {key}") for _ in range(5)),
        return_exceptions=True,
    )
    # As the database's unavailability always comes: SQLAlchemy's error, the driver's inside.
    assert all(
        isinstance(o, OperationalError) and isinstance(o.orig, ConnectionResetError)
        for o in outcomes
    ), outcomes
    failing = False
    principal = await gateway.rt.auth.authenticate(f"Bearer {key}")  # looked up afresh
    assert principal.account_id


async def test_a_key_revoked_during_a_shared_lookup_is_refused_at_once(gateway, monkeypatch):
    """A revocation in this process takes effect at once here: a request after it does not
    join a lookup that read the key before it, and what that lookup read is not cached."""
    from reapi_server.api_keys.service import keys_service
    from reapi_server.errors import InvalidApiKey

    account, key = await gateway.account()
    real_find = key_rows.find_active
    read = asyncio.Event()

    async def slow(session, key_hash):
        row = await real_find(session, key_hash)  # read before the revocation...
        read.set()
        await asyncio.sleep(0.2)  # ...and answered after it
        return row

    monkeypatch.setattr(key_rows, "find_active", slow)
    early = asyncio.create_task(gateway.rt.auth.authenticate(f"Bearer {key}"))
    await read.wait()
    keys = keys_service(gateway.rt)
    [view] = await keys.list(account)
    await keys.revoke(account, view.id)
    with pytest.raises(InvalidApiKey):
        await gateway.rt.auth.authenticate(f"Bearer {key}")
    assert (await early).account_id == account  # in flight before it: as before
    with pytest.raises(InvalidApiKey):  # and not cached by it
        await gateway.rt.auth.authenticate(f"Bearer {key}")

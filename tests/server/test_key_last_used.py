"""A key's last use: noted in memory by each request, written once a minute, off the request
path."""

from __future__ import annotations

from sqlalchemy import event, select
from tests.server.helpers import auth

from reapi_server.api_keys.last_used import flush_last_used
from reapi_server.models import ApiKey


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def last_used(gateway) -> list[float | None]:
    async with gateway.rt.db.read() as session:
        return list((await session.execute(select(ApiKey.last_used_at))).scalars())


async def test_requests_note_their_key_and_one_write_a_minute_records_it(gateway):
    clock = Clock(1_800_000_030.0)
    gateway.rt.clock = clock
    _, key = await gateway.account()
    writes: list[str] = []

    def count(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("UPDATE API_KEYS"):
            writes.append(statement)

    engine = gateway.rt.db._writer.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        for _ in range(20):
            assert (await gateway.client.get("/v1/models", headers=auth(key))).status_code == 200
        assert writes == [] and await last_used(gateway) == [None]  # nothing on the path
        assert await flush_last_used(gateway.rt.db, gateway.rt.auth.usage) == 1
        assert len(writes) == 1
        assert await last_used(gateway) == [1_800_000_000.0]  # to the minute
        assert await flush_last_used(gateway.rt.db, gateway.rt.auth.usage) == 0
        assert len(writes) == 1  # nothing new seen: nothing written
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def test_an_older_use_never_overwrites_a_later_one(gateway):
    clock = Clock(1_800_000_600.0)
    gateway.rt.clock = clock
    _, key = await gateway.account()
    await gateway.client.get("/v1/models", headers=auth(key))
    await flush_last_used(gateway.rt.db, gateway.rt.auth.usage)
    # Another process that saw the key earlier writes after this one.
    key_id = (await gateway.rt.auth.authenticate(f"Bearer {key}")).key_id
    gateway.rt.auth.usage.saw(key_id, 1_800_000_000.0)
    await flush_last_used(gateway.rt.db, gateway.rt.auth.usage)
    assert await last_used(gateway) == [1_800_000_600.0]


async def test_a_charged_request_records_its_use_in_the_statement_that_holds_its_credit(gateway):
    """The hold already writes the key's row: its time of use comes with it, at no cost."""
    clock = Clock(1_800_000_042.5)
    gateway.rt.clock = clock
    _, key = await gateway.account()
    response = await gateway.client.post(
        "/v1/images/generations", json={"prompt": "p"}, headers=auth(key)
    )
    assert response.status_code == 200
    assert await last_used(gateway) == [1_800_000_042.5]  # before any flush
    await flush_last_used(gateway.rt.db, gateway.rt.auth.usage)  # the minute: older, kept
    assert await last_used(gateway) == [1_800_000_042.5]

"""Mirrored outputs: no row ever points at a missing object."""

from sqlalchemy import func, select
from tests.server.fakes import PNG
from tests.server.helpers import auth, ledger_matches, unnamed

from reapi_server.credits import repository as credit_rows
from reapi_server.mirror import read_object
from reapi_server.mirror.outputs import Output, mirror
from reapi_server.mirror.repository import insert_outputs
from reapi_server.mirror.service import discard_unrecorded
from reapi_server.models import StoredOutput


async def test_a_failed_settlement_leaves_neither_rows_nor_objects(gateway, monkeypatch):
    account, key = await gateway.account(credits=100)

    async def broken_insert(*args, **kwargs):
        raise RuntimeError("database went away")

    # The rows are written by the settlement, after the hold's closing: it fails midway.
    monkeypatch.setattr(credit_rows, "insert_outputs", broken_insert)
    response = await gateway.client.post(
        "/v1/images/generations", json={"prompt": "p"}, headers=auth(key)
    )
    assert response.status_code == 500
    monkeypatch.undo()
    assert gateway.stored() == {}
    async with gateway.rt.db.read() as session:
        assert (await session.execute(select(func.count()).select_from(StoredOutput))).scalar() == 0
    assert await ledger_matches(gateway.rt, account) == (100, 0)


async def test_objects_whose_rows_committed_are_kept(gateway):
    account, _ = await gateway.account()
    rt = gateway.rt
    outputs = [Output("image", PNG + b"a"), Output("image", PNG + b"b")]
    kept = await mirror(rt.store, rt.output_names, "req_0123456789abcdef01234567", outputs)
    dropped = await mirror(rt.store, rt.output_names, "req_76543210fedcba9876543210", outputs)
    assert unnamed(f.storage_key for f in kept) == [
        "outputs/req_0123456789abcdef01234567/0.png",
        "outputs/req_0123456789abcdef01234567/1.png",
    ]
    async with rt.db.write() as session:
        await insert_outputs(session, kept, account, rt.now())
    await discard_unrecorded(rt, "req_0123456789abcdef01234567", kept)
    await discard_unrecorded(rt, "req_76543210fedcba9876543210", dropped)
    assert (await read_object(rt.store, kept[1].storage_key)).data == PNG + b"b"
    assert await read_object(rt.store, dropped[0].storage_key) is None
    assert sorted(gateway.stored()) == [f.storage_key for f in kept]

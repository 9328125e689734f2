"""One secret for the fleet: idempotency fingerprints (and every other keyed hash) use a secret
that every instance on one database shares — generated into the database by the first instance,
or given by the operator, in which case the database keeps only a check value of it. An instance
whose configured secret disagrees with the database's refuses to start on PostgreSQL."""

import asyncio
import secrets

import pytest
from sqlalchemy import text
from tests.server.helpers import ledger_matches
from tests.server.postgres import postgres_server  # noqa: F401  (fixture)
from tests.server.test_images import generate

from reapi_server.fleet_secret import SecretDisagrees


async def _database(postgres_server) -> str:  # noqa: F811
    name = f"t_{secrets.token_hex(6)}"
    await asyncio.to_thread(
        postgres_server.execute, f"CREATE DATABASE {name} TEMPLATE reapi_template"
    )
    return postgres_server.url(name)


async def _stored(gateway) -> list[tuple[object, ...]]:
    async with gateway.rt.db.read() as session:
        rows = await session.execute(text("SELECT secret, verifier FROM fleet_secret"))
        return [tuple(row) for row in rows]


@pytest.mark.postgres
@pytest.mark.s3
async def test_two_instances_charge_one_idempotent_request_once(
    postgres_server,  # noqa: F811
    make_gateway,
    moto_server,
):
    url = await _database(postgres_server)
    shared = {
        "database_url": url,
        "secret_key": None,
        **moto_server.settings(moto_server.new_bucket()),
    }
    # Separate data dirs, no configured secret: each would have generated its own before.
    first = await make_gateway(**shared)
    second = await make_gateway(**shared)
    assert first.data_dir != second.data_dir
    account, key = await first.account(credits=1000)
    once = await generate(first, key, headers={"idempotency-key": "fleet-1"})
    again = await generate(second, key, headers={"idempotency-key": "fleet-1"})
    assert once.status_code == again.status_code == 200
    assert again.headers.get("idempotent-replayed") == "true"
    assert once.json()["data"] == again.json()["data"]
    # and at the same moment, on both
    both = await asyncio.gather(
        generate(first, key, headers={"idempotency-key": "fleet-2"}),
        generate(second, key, headers={"idempotency-key": "fleet-2"}),
    )
    assert [r.status_code for r in both] == [200, 200]
    assert first.upstream.count("/images/generations") == 2
    assert await ledger_matches(first.rt, account) == (920, 0)
    assert not (first.data_dir / "secret.key").exists()
    [(stored, verifier)] = await _stored(first)
    assert stored is not None and len(stored) == 64 and verifier != stored


@pytest.mark.postgres
async def test_a_disagreeing_secret_refuses_to_start(postgres_server, make_gateway):  # noqa: F811
    url = await _database(postgres_server)
    await make_gateway(database_url=url, secret_key="the-operators-secret")
    with pytest.raises(SecretDisagrees) as refused:
        await make_gateway(database_url=url, secret_key="another-secret")
    assert "secret_key" in str(refused.value)
    assert "another-secret" not in str(refused.value)
    # Without a configured secret, nobody can know the operator's: refused as well.
    with pytest.raises(SecretDisagrees):
        await make_gateway(database_url=url, secret_key=None)
    agreeing = await make_gateway(database_url=url, secret_key="the-operators-secret")
    [(stored, verifier)] = await _stored(agreeing)
    assert stored is None  # the operator's secret is never written to the database
    assert "the-operators-secret" not in verifier


async def test_on_sqlite_the_configured_secret_replaces_the_stored_one(make_gateway, tmp_path):
    first = await make_gateway(secret_key=None)
    db_url = first.rt.settings.resolved_database_url
    generated = first.rt.fingerprint_secret
    same = await make_gateway(database_url=db_url, secret_key=None)
    assert same.rt.fingerprint_secret == generated
    replaced = await make_gateway(database_url=db_url, secret_key="now-configured")
    assert replaced.rt.fingerprint_secret == b"now-configured"
    [(stored, _)] = await _stored(replaced)
    assert stored is None


async def test_an_earlier_versions_secret_file_is_kept(make_gateway, migrated_template, tmp_path):
    """A data dir from before: its `secret.key` stays the secret, so idempotency keys sent
    before the upgrade are still recognised after it."""
    data_dir = tmp_path / "data0"
    data_dir.mkdir()
    (data_dir / "secret.key").write_bytes(b"an-earlier-generated-secret\n")
    gateway = await make_gateway(secret_key=None)
    assert gateway.data_dir == data_dir
    assert gateway.rt.fingerprint_secret == b"an-earlier-generated-secret"

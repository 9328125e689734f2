"""Credits are bounded everywhere: the CLI, the service and the schema itself.

Before the bound, `credits grant` with a value over 2**63 crashed with a traceback, and a balance
pushed past 2**63 was stored by SQLite as a float, which later charges no longer reduced."""

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError
from tests.server.helpers import auth, ledger_matches

from reapi_server.credits.service import grant
from reapi_server.errors import CreditLimitExceeded
from reapi_server.models import MAX_CREDITS

HUGE = 2**64


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    binary = str(Path(sys.executable).parent / "reapi-server")
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=60)


def test_the_cli_refuses_a_grant_over_the_bound(tmp_path):
    data = ["--data-dir", str(tmp_path)]
    created = _cli("accounts", "create", "--email", "a@example.com", "--credits", "5", *data)
    assert created.returncode == 0, created.stderr
    for args in (
        ("credits", "grant", "--email", "a@example.com", "--credits", str(HUGE)),
        ("credits", "grant", "--email", "a@example.com", "--credits", str(MAX_CREDITS)),
        ("accounts", "create", "--email", "b@example.com", "--credits", str(HUGE)),
    ):
        refused = _cli(*args, *data)
        assert refused.returncode == 1, (args, refused.stdout, refused.stderr)
        assert "Traceback" not in refused.stderr + refused.stdout
        assert "error:" in refused.stderr and f"{MAX_CREDITS:,}" in refused.stderr
    shown = _cli("accounts", "show", "--email", "a@example.com", *data)
    assert "balance=5 " in shown.stdout
    assert _cli("accounts", "show", "--email", "b@example.com", *data).returncode == 1


async def test_the_service_bounds_each_grant_and_the_balance(db_gateway):
    gateway = db_gateway
    rt = gateway.rt
    account, key = await gateway.account(credits=0)
    for amount in (HUGE, MAX_CREDITS + 1, 0, -1):
        with pytest.raises((CreditLimitExceeded, ValueError)):
            async with rt.db.write() as session:
                await grant(session, account, amount, rt.now())
    async with rt.db.write() as session:
        await grant(session, account, MAX_CREDITS - 100, rt.now())
    # Held credit counts too: a release must always fit back into the balance.
    spent = await gateway.client.post(
        "/v1/images/generations", json={"model": "gpt-image-2", "prompt": "p"}, headers=auth(key)
    )
    assert spent.status_code == 200
    with pytest.raises(CreditLimitExceeded) as refused:
        async with rt.db.write() as session:
            await grant(session, account, 141, rt.now())
    assert refused.value.code == "credit_limit_exceeded"
    async with rt.db.write() as session:
        await grant(session, account, 140, rt.now())
    assert await ledger_matches(rt, account) == (MAX_CREDITS, 0)
    # Charges keep reducing a balance at the bound (it is an integer, not a float).
    again = await gateway.client.post(
        "/v1/images/generations", json={"model": "gpt-image-2", "prompt": "p"}, headers=auth(key)
    )
    assert again.status_code == 200
    assert await ledger_matches(rt, account) == (MAX_CREDITS - 40, 0)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE accounts SET balance = :past WHERE id = :account",
        "UPDATE accounts SET balance = :bound, reserved = 1 WHERE id = :account",
        "UPDATE accounts SET balance = :float WHERE id = :account",
        "INSERT INTO credit_ledger (account_id, kind, amount, reserved_delta, created_at)"
        " VALUES (:account, 'grant', :past, 0, 0)",
        "INSERT INTO credit_ledger (account_id, kind, amount, reserved_delta, created_at)"
        " VALUES (:account, 'grant', 0, -:past, 0)",
        "INSERT INTO credit_holds (id, account_id, amount, charged, status, purpose, request_id,"
        " created_at) VALUES ('hold_x', :account, :past, 0, 'held', 'image', 'r', 0)",
        "INSERT INTO credit_holds (id, account_id, amount, charged, status, purpose, request_id,"
        " created_at) VALUES ('hold_x', :account, 5, 6, 'held', 'image', 'r', 0)",
    ],
)
async def test_the_database_refuses_credit_past_the_bound(db_gateway, statement):
    """Whatever code writes it: the schema itself refuses (CHECK constraints on PostgreSQL,
    the same conditions as triggers on SQLite)."""
    gateway = db_gateway
    account, _ = await gateway.account(credits=0)
    values = {"account": account, "past": MAX_CREDITS + 1, "bound": MAX_CREDITS}
    if ":float" in statement:
        if gateway.rt.db.is_postgres:
            pytest.skip("a bigint column cannot hold a float")
        values["float"] = float(HUGE)
    with pytest.raises((IntegrityError, DBAPIError)):
        async with gateway.rt.db.write() as session:
            await session.execute(text(statement), values)
    assert await ledger_matches(gateway.rt, account) == (0, 0)

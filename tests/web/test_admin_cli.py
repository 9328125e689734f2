"""`reapi-server users promote|disable|enable|delete` and `credits adjust|grant`: the same
audited actions as the admin pages, with "cli" as the actor."""

import asyncio
import json
import re

from sqlalchemy import select
from typer.testing import CliRunner

from reapi_server.config import Settings
from reapi_server.db import Database
from reapi_server.models import AuditEntry, LedgerEntry

runner = CliRunner()


def cli(*args: str, code: int = 0) -> str:
    result = runner.invoke(__import__("reapi_server.cli").cli.app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def _rows(tmp_path, model, order):
    async def read():
        db = Database(Settings(data_dir=tmp_path).resolved_database_url)
        try:
            async with db.read() as session:
                return list((await session.execute(select(model).order_by(order))).scalars())
        finally:
            await db.dispose()

    return asyncio.run(read())


def test_operator_commands_write_the_audit_log(tmp_path):
    data = ["--data-dir", str(tmp_path)]
    created = cli("accounts", "create", "--email", "ops@example.com", "--credits", "10", *data)
    account_id = re.search(r"account (acct_\w+)", created).group(1)

    assert "promoted ops@example.com to admin" in cli(
        "users", "promote", "--email", "OPS@example.com", *data
    )
    assert "already an admin" in cli("users", "promote", "--email", "ops@example.com", *data)
    assert "role: admin" in cli("users", "show", "--email", "ops@example.com", *data)
    assert "admin" in cli("users", "list", *data)

    assert f"disabled account {account_id}" in cli(
        "users", "disable", "--email", "ops@example.com", *data
    )
    assert "already disabled" in cli("users", "disable", "--email", "ops@example.com", *data)
    assert "disabled" in cli("users", "show", "--email", "ops@example.com", *data)
    assert f"enabled account {account_id}" in cli(
        "users", "enable", "--email", "ops@example.com", *data
    )

    adjusted = cli(
        "credits", "adjust", "--email", "ops@example.com", "--credits", "-4",
        "--reason", "duplicate grant", *data,
    )  # fmt: skip
    assert "balance=6" in adjusted
    assert "the reason" in cli(
        "credits", "adjust", "--email", "ops@example.com", "--credits", "5", "--reason", " ",
        *data, code=1,
    )  # fmt: skip
    assert "balance=16" in cli(
        "credits", "grant", "--email", "ops@example.com", "--credits", "10", *data
    )

    entries = _rows(tmp_path, AuditEntry, AuditEntry.id)
    assert [e.action for e in entries] == [
        "user.promote",
        "account.disable",
        "account.enable",
        "credits.adjust",
        "credits.grant",
    ]
    assert all(e.via == "cli" and e.actor_user_id is None for e in entries)
    assert json.loads(entries[3].detail) == {"amount": -4, "reason": "duplicate grant"}
    kinds = [row.kind for row in _rows(tmp_path, LedgerEntry, LedgerEntry.id)]
    assert kinds == ["grant", "adjustment", "grant"]

    cli("users", "delete", "--email", "ops@example.com", "--yes", *data)
    entries = _rows(tmp_path, AuditEntry, AuditEntry.id)
    assert entries[-1].action == "user.delete"
    assert all(e.account_id is None for e in entries)  # detached
    assert "no user" in cli("users", "promote", "--email", "ops@example.com", *data, code=1)
    assert "no account" in cli("users", "disable", "--email", "ops@example.com", *data, code=1)

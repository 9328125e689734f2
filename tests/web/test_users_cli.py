"""`reapi-server users list|show|delete` and `accounts create` (its flags unchanged), and the
`delete_user` service behind the deletion."""

import re

import pytest
from sqlalchemy import func, select
from tests.server.helpers import auth
from tests.web.helpers import deletion_services, mail_to, new_email
from typer.testing import CliRunner

from reapi_server.accounts.deletion import delete_user
from reapi_server.api_keys.auth import Authenticator
from reapi_server.cli import app
from reapi_server.errors import InvalidApiKey
from reapi_server.identity import repository as users
from reapi_server.models import (
    Account,
    ApiKey,
    Consent,
    LedgerEntry,
    Membership,
    OutboxMessage,
    User,
    UserToken,
    WebSession,
)

runner = CliRunner()


def cli(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def test_users_commands(tmp_path):
    data = ["--data-dir", str(tmp_path)]
    created = cli("accounts", "create", "--email", "Kid@Example.com", "--credits", "25", *data)
    account_id = re.search(r"account (acct_\w+) kid@example.com balance=25", created).group(1)
    cli("accounts", "create", "--email", "adult@example.com", *data)
    cli("keys", "create", "--email", "kid@example.com", *data)
    listed = cli("users", "list", *data)
    assert "kid@example.com  unverified" in listed and account_id in listed
    assert "adult@example.com" in listed
    shown = cli("users", "show", "--email", "kid@example.com", *data)
    assert "email: not verified" in shown and "password: not set" in shown
    assert f"accounts: {account_id}" in shown and "sessions: 0" in shown
    assert "no user" in cli("users", "show", "--email", "nobody@example.com", *data, code=1)

    refused = runner.invoke(
        app, ["users", "delete", "--email", "kid@example.com", *data], input="n\n"
    )
    assert refused.exit_code == 1 and "kid@example.com" in cli("users", "list", *data)
    deleted = cli("users", "delete", "--email", "kid@example.com", "--yes", *data)
    assert "1 keys revoked" in deleted and account_id in deleted
    assert "kid@example.com" not in cli("users", "list", *data)
    assert "no user" in cli("users", "delete", "--email", "kid@example.com", "--yes", *data, code=1)
    assert "adult@example.com balance=0" in cli(
        "accounts", "show", "--email", "adult@example.com", *data
    )


async def test_deleting_a_user_revokes_keys_and_ends_sessions(db_web, browsers):
    email = new_email()
    browser = browsers(db_web)
    await browser.sign_up(email)
    rt = db_web.rt
    async with rt.db.read() as session:
        user = await users.find_user_by_email(session, email)
    from reapi_server.accounts.service import account_of
    from reapi_server.api_keys.service import issue_key
    from reapi_server.credits import repository as credits

    async with rt.db.write() as session:
        account = await account_of(session, user.id)
        await credits.grant(session, account.id, 100, rt.now())
        _, issued = await issue_key(session, account.id, now=rt.now())
    assert (
        await db_web.client.get("/v1/models", headers=auth(issued.plaintext))
    ).status_code == 200
    await browser.submit("/settings", "/settings/verification", {})  # a message still queued

    other = new_email()
    await browsers(db_web).sign_up(other)

    services = deletion_services(db_web)
    async with rt.db.write() as session:
        deleted = await delete_user(session, user.id, now=rt.now(), **services)
    assert deleted.keys_revoked == 1 and deleted.sessions_ended == 1
    assert deleted.account_ids == (account.id,)
    with pytest.raises(InvalidApiKey):  # what any server process finds once its cache ends
        await Authenticator(rt.db).authenticate(f"Bearer {issued.plaintext}")
    async with rt.db.read() as session:
        count = lambda model, *where: session.execute(  # noqa: E731
            select(func.count()).select_from(model).where(*where)
        )
        assert (await count(User, User.email == email)).scalar() == 0
        for model in (WebSession, UserToken, Consent, Membership):
            assert (await count(model, model.user_id == user.id)).scalar() == 0, model
        queued = await count(OutboxMessage, OutboxMessage.to_address == email)
        assert queued.scalar() == 1  # only the confirmation of the deletion
        active = await count(ApiKey, ApiKey.revoked_at.is_(None), ApiKey.account_id == account.id)
        assert active.scalar() == 0
        # The account is closed; its rows go after the commit (`closing.purge_account`).
        closed = Account.deleted_at.is_not(None)
        assert (await count(Account, Account.id == account.id, closed)).scalar() == 1
        assert (await count(LedgerEntry, LedgerEntry.account_id == account.id)).scalar() == 1
        assert (await count(User, User.email == other)).scalar() == 1
    assert (await browser.get("/settings")).status_code == 303
    assert await mail_to(rt, other)
    async with rt.db.write() as session:
        assert await delete_user(session, user.id, now=rt.now(), **services) is None


@pytest.mark.parametrize("flags", [["--credits", "0"], []])
def test_accounts_create_keeps_its_flags(tmp_path, flags):
    output = cli(
        "accounts", "create", "--email", "ops@example.com", *flags, "--data-dir", str(tmp_path)
    )
    assert "ops@example.com balance=0" in output

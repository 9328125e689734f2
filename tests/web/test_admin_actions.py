"""The operator's actions as services (what the admin pages and the CLI call): each writes one
audit row in its own transaction; credit adjustments go through the ledger within the bounds;
a disabled account's keys are refused at once; SQLite and PostgreSQL."""

import json

import pytest
from sqlalchemy import select
from tests.server.helpers import auth, ledger_matches
from tests.server.other_process import OtherProcess

from reapi_server.audit import Actor
from reapi_server.audit import repository as audit
from reapi_server.audit.export import rows_about
from reapi_server.backoffice import actions
from reapi_server.errors import GatewayError
from reapi_server.identity import repository as users
from reapi_server.models import MAX_CREDITS, Account, AuditEntry, LedgerEntry, User

ADMIN = Actor.admin("usr_admin")


async def _entries(rt, account_id=None):
    async with rt.db.read() as session:
        query = select(AuditEntry).order_by(AuditEntry.id)
        if account_id is not None:
            query = query.where(AuditEntry.account_id == account_id)
        return list((await session.execute(query)).scalars())


async def _ledger(rt, account_id):
    async with rt.db.read() as session:
        rows = await session.execute(
            select(LedgerEntry.kind, LedgerEntry.amount)
            .where(LedgerEntry.account_id == account_id)
            .order_by(LedgerEntry.id)
        )
        return [tuple(row) for row in rows]


async def test_adjustments_write_the_ledger_and_the_audit_log(db_web):
    rt = db_web.rt
    account_id, _ = await db_web.account(credits=100)
    async with rt.db.write() as session:
        await actions.adjust_credits(
            session, ADMIN, account_id, 250, "goodwill for the outage", now=rt.now()
        )
    async with rt.db.write() as session:
        await actions.adjust_credits(
            session, Actor.cli(), account_id, -50, "refund reversed", now=rt.now()
        )
    assert await ledger_matches(rt, account_id) == (300, 0)
    assert (await _ledger(rt, account_id))[-2:] == [("adjustment", 250), ("adjustment", -50)]
    first, second = await _entries(rt, account_id)
    assert (first.action, first.actor_user_id, first.via) == ("credits.adjust", "usr_admin", "web")
    assert json.loads(first.detail) == {"amount": 250, "reason": "goodwill for the outage"}
    assert (second.actor_user_id, second.via) == (None, "cli")
    assert json.loads(second.detail)["amount"] == -50


@pytest.mark.parametrize(
    ("amount", "reason", "param"),
    [
        (0, "nothing", "amount"),
        (-101, "more than the balance", "amount"),
        (MAX_CREDITS, "past the bound", "amount"),
        (MAX_CREDITS + 1, "past the bound", "amount"),
        (-(MAX_CREDITS + 1), "past the bound", "amount"),
        (10, "", "reason"),
        (10, "   ", "reason"),
        (10, "x" * 201, "reason"),
        (10, "line\nbreak", "reason"),
    ],
)
async def test_refused_adjustments_write_nothing(db_web, amount, reason, param):
    rt = db_web.rt
    account_id, _ = await db_web.account(credits=100)
    before = await _ledger(rt, account_id)
    with pytest.raises(GatewayError) as refused:
        async with rt.db.write() as session:
            await actions.adjust_credits(session, ADMIN, account_id, amount, reason, now=rt.now())
    assert refused.value.param == param
    assert await _ledger(rt, account_id) == before
    assert await _entries(rt, account_id) == []
    assert await ledger_matches(rt, account_id) == (100, 0)


async def test_an_unknown_account_is_not_found(db_web):
    rt = db_web.rt
    with pytest.raises(GatewayError) as refused:
        async with rt.db.write() as session:
            await actions.adjust_credits(session, ADMIN, "acct_nope", 5, "x", now=rt.now())
    assert refused.value.http_status == 404
    with pytest.raises(GatewayError):
        async with rt.db.write() as session:
            await actions.disable_account(session, ADMIN, "acct_nope", now=rt.now())
    assert await _entries(rt) == []


async def _models(client, key):
    return await client.get("/v1/models", headers=auth(key))


async def test_a_disabled_account_is_refused_at_once_in_every_process(db_web):
    rt = db_web.rt
    account_id, key = await db_web.account()
    async with OtherProcess(db_web) as other:
        # Both processes have the key in their cache.
        assert (await _models(db_web.client, key)).status_code == 200
        async with rt.db.write() as session:
            assert await actions.disable_account(session, ADMIN, account_id, now=rt.now())
        rt.auth.forget_all()  # what the acting process does (the admin page does it)
        refused = await _models(db_web.client, key)
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "account_disabled"
        # A process that has not seen the key in the last two seconds refuses it at once too.
        cold = await other.request("GET", "/v1/models", headers=auth(key))
        assert cold.status_code == 403 and cold.json()["error"]["code"] == "account_disabled"

        async with rt.db.write() as session:
            assert not await actions.disable_account(session, ADMIN, account_id, now=rt.now())
            assert await actions.enable_account(session, ADMIN, account_id, now=rt.now())
            assert not await actions.enable_account(session, ADMIN, account_id, now=rt.now())
        rt.auth.forget_all()
        assert (await _models(db_web.client, key)).status_code == 200
    entries = await _entries(rt, account_id)
    # Only what changed something is written down.
    assert [e.action for e in entries] == ["account.disable", "account.enable"]
    async with rt.db.read() as session:
        assert (await session.get(Account, account_id)).disabled_at is None


async def test_promoting_makes_an_admin_and_signs_them_out(db_web, browsers):
    from tests.web.helpers import new_email

    rt = db_web.rt
    email = new_email()
    browser = browsers(db_web)
    await browser.sign_up(email)
    async with rt.db.read() as session:
        user = await users.find_user_by_email(session, email)
    async with rt.db.write() as session:
        assert await actions.promote_user(session, Actor.cli(), user.id, now=rt.now())
        assert not await actions.promote_user(session, Actor.cli(), user.id, now=rt.now())
    async with rt.db.read() as session:
        assert (await session.get(User, user.id)).role == "admin"
    # A privilege change starts new sessions: the old cookie no longer signs in.
    assert (await browser.get("/settings")).status_code == 303
    (entry,) = await _entries(rt)
    assert (entry.action, entry.target_user_id, entry.via) == ("user.promote", user.id, "cli")


async def test_deleting_a_user_is_audited_and_exported_to_nobody(db_web, browsers):
    from tests.web.helpers import new_email, web_context

    rt = db_web.rt
    email = new_email()
    await browsers(db_web).sign_up(email)
    async with rt.db.read() as session:
        user = await users.find_user_by_email(session, email)
    from reapi_server.accounts.service import account_of

    async with rt.db.read() as session:
        account = await account_of(session, user.id)
    async with rt.db.write() as session:
        await actions.adjust_credits(session, ADMIN, account.id, 10, "welcome", now=rt.now())
    async with rt.db.read() as session:
        exported = await rows_about(session, user.id, (account.id,))
    assert [row["action"] for row in exported] == ["credits.adjust"]
    # The admin's identity is theirs: the person sees that an operator acted, not who.
    assert exported[0]["by"] == "operator (web)"
    assert "usr_admin" not in json.dumps(exported)

    # The person's own deletion service, given the operator who asked.
    personal_data = web_context(db_web).personal_data
    deleted = await personal_data.delete(user.id, actor=ADMIN)
    assert deleted is not None and deleted.user.account_ids == (account.id,)
    async with rt.db.read() as session:
        assert await users.get_user(session, user.id) is None
        logged = await audit.recent(session, limit=10)
    # Every row about them detached: what the admin did stays, whom it was about goes.
    assert [e.action for e in logged[:2]] == ["user.delete", "credits.adjust"]
    assert all((e.target_user_id, e.account_id) == (None, None) for e in logged[:2])
    assert json.loads(logged[1].detail) == {"amount": 10, "about": "a deleted person"}
    assert {e.actor_user_id for e in logged[:2]} == {ADMIN.user_id}
    # No email address in the log: the person's address goes with them.
    assert all(email not in entry.detail for entry in logged)
    assert await personal_data.delete(user.id, actor=ADMIN) is None
    assert len(await _entries(rt)) == 2

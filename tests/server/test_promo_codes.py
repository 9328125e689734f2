"""Promotion codes: exactly as many redemptions as the code allows, whatever races; one per
account; each refusal says why; the credit is a `promo` ledger row, and the ledger adds up.
On SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select
from tests.server.helpers import ledger_matches, make_account

from reapi_server.errors import AccountDisabled
from reapi_server.models import LedgerEntry, PromoCode, PromoRedemption
from reapi_server.promo.errors import CodeExists, PromoRefused
from reapi_server.promo.service import CodeTerms, create_code, disable_code, redeem

DAY = 86_400.0


async def new_code(gateway, **terms) -> PromoCode:
    values = {"code": None, "credits": 500, **terms}
    async with gateway.rt.db.write() as session:
        return await create_code(
            session, CodeTerms(**values), created_by=None, now=gateway.rt.now()
        )


async def redeem_as(gateway, account_id: str, text: str):
    return await redeem(
        gateway.rt.db, account_id=account_id, user_id=None, text=text, now=gateway.rt.now()
    )


async def promo_rows(gateway, account_id: str) -> list[int]:
    async with gateway.rt.db.read() as session:
        result = await session.execute(
            select(LedgerEntry.amount).where(
                LedgerEntry.account_id == account_id, LedgerEntry.kind == "promo"
            )
        )
        return list(result.scalars())


async def test_twenty_accounts_race_for_a_five_use_code_and_five_win(db_gateway):
    gateway = db_gateway
    code = await new_code(gateway, code="launch-5", credits=300, max_uses=5)
    accounts = [(await make_account(gateway.rt, credits=100))[0] for _ in range(20)]

    outcomes = await asyncio.gather(
        *(redeem_as(gateway, account, "LAUNCH-5") for account in accounts),
        return_exceptions=True,
    )
    won = [a for a, o in zip(accounts, outcomes, strict=True) if not isinstance(o, Exception)]
    lost = [o for o in outcomes if isinstance(o, Exception)]
    assert len(won) == 5, outcomes
    assert all(isinstance(o, PromoRefused) and o.reason == "used_up" for o in lost), lost
    async with gateway.rt.db.read() as session:
        stored = await session.get(PromoCode, code.id, populate_existing=True)
        redemptions = await session.execute(select(func.count()).select_from(PromoRedemption))
    assert stored is not None and stored.redeemed == 5
    assert redemptions.scalar_one() == 5
    for account in accounts:
        balance, reserved = await ledger_matches(gateway.rt, account)
        assert (balance, reserved) == ((400, 0) if account in won else (100, 0))
        assert await promo_rows(gateway, account) == ([300] if account in won else [])


async def test_one_account_redeeming_twice_at_once_gets_it_once(db_gateway):
    gateway = db_gateway
    await new_code(gateway, code="TWICE", credits=250)
    account, _ = await make_account(gateway.rt, credits=0)

    outcomes = await asyncio.gather(
        *(redeem_as(gateway, account, " twice ") for _ in range(6)), return_exceptions=True
    )
    assert sum(not isinstance(o, Exception) for o in outcomes) == 1, outcomes
    refused = [o for o in outcomes if isinstance(o, Exception)]
    assert {type(o) for o in refused} == {PromoRefused}
    assert {o.code for o in refused} == {"promo_already_redeemed"}
    assert await ledger_matches(gateway.rt, account) == (250, 0)
    with pytest.raises(PromoRefused) as again:
        await redeem_as(gateway, account, "twice")
    assert again.value.code == "promo_already_redeemed"
    assert "once" in again.value.message


async def test_each_refusal_is_the_same_to_the_person_and_writes_nothing(db_gateway):
    gateway = db_gateway
    now = gateway.rt.now()
    await new_code(gateway, code="SOON-GONE", expires_at=now + DAY)
    withdrawn = await new_code(gateway, code="WITHDRAWN")
    await new_code(gateway, code="ONE-ONLY", max_uses=1)
    async with gateway.rt.db.write() as session:
        assert await disable_code(session, withdrawn.id, now)
        assert not await disable_code(session, withdrawn.id, now)
    first, _ = await make_account(gateway.rt, credits=0)
    account, _ = await make_account(gateway.rt, credits=0)
    await redeem_as(gateway, first, "one-only")

    cases = {
        "NO-SUCH-CODE": "unknown",
        "bad code!": "unknown",
        "x" * 41: "unknown",
        "withdrawn": "withdrawn",
        "one-only": "used_up",
    }
    seen = set()
    for text, reason in cases.items():
        with pytest.raises(PromoRefused) as refused:
            await redeem_as(gateway, account, text)
        assert refused.value.reason == reason, text
        assert refused.value.param == "code"
        assert text.upper() not in refused.value.message  # nothing typed is repeated
        seen.add((refused.value.code, refused.value.message, refused.value.http_status))
    gateway.rt.clock = lambda: now + 2 * DAY
    with pytest.raises(PromoRefused) as expired:
        await redeem_as(gateway, account, "soon-gone")
    assert expired.value.reason == "expired"
    seen.add((expired.value.code, expired.value.message, expired.value.http_status))
    # Which of these it was is the server's to know: the person is told one thing.
    assert seen == {(expired.value.code, expired.value.message, 400)}
    assert expired.value.code == "promo_not_redeemable"
    assert await ledger_matches(gateway.rt, account) == (0, 0)
    async with gateway.rt.db.read() as session:
        mine = await session.execute(
            select(func.count()).where(PromoRedemption.account_id == account)
        )
    assert mine.scalar_one() == 0


async def test_a_disabled_account_cannot_redeem(db_gateway):
    gateway = db_gateway
    await new_code(gateway, code="FOR-ALL")
    account, _ = await make_account(gateway.rt, credits=0)
    from reapi_server.accounts import repository as accounts

    async with gateway.rt.db.write() as session:
        await accounts.set_disabled(session, account, gateway.rt.now())
    with pytest.raises(AccountDisabled):
        await redeem_as(gateway, account, "for-all")
    assert await ledger_matches(gateway.rt, account) == (0, 0)


async def test_codes_are_checked_when_made(gateway):
    from reapi_server.identity.errors import FormInvalid

    made = await new_code(gateway)
    assert len(made.code) == 14 and made.code.count("-") == 2  # generated
    with pytest.raises(CodeExists):
        await new_code(gateway, code=made.code.lower())
    with pytest.raises(FormInvalid) as refused:
        await new_code(
            gateway,
            code="no",
            credits=0,
            max_uses=0,
            expires_at=gateway.rt.now() - 1,
            note="two\nlines",
        )
    assert set(refused.value.errors) == {"code", "credits", "max_uses", "expires_at", "note"}


async def test_the_export_readers_hold_the_persons_redemptions_and_thresholds(db_gateway):
    """What the data export's sections read (the export and deletion tests cover the rest)."""
    from reapi_server.accounts.repository import owners
    from reapi_server.alerts import export as alert_export
    from reapi_server.alerts.settings import save_thresholds
    from reapi_server.promo import export as promo_export

    gateway = db_gateway
    rt = gateway.rt
    await new_code(gateway, code="KEEP-ME", credits=70)
    account, _ = await make_account(rt, credits=0)
    other, _ = await make_account(rt, credits=0)
    async with rt.db.read() as session:
        [person] = await owners(session, account)
    await redeem(rt.db, account_id=account, user_id=person.id, text="keep-me", now=rt.now())
    await redeem_as(gateway, other, "keep-me")
    async with rt.db.write() as session:
        await save_thresholds(session, account, [500, 50], now=rt.now())

    async with rt.db.read() as session:
        redemptions = await promo_export.rows_about(session, person.id, [account])
        alerts = await alert_export.thresholds_about(session, person.id, [account])
    assert [(r["code"], r["credits"], r["account_id"]) for r in redemptions] == [
        ("KEEP-ME", 70, account)
    ]
    assert sorted((a["threshold"], a["armed"]) for a in alerts) == [(50, True), (500, False)]


async def test_a_burst_of_wrong_guesses_is_evaluated_only_up_to_the_limit(db_gateway):
    """Parallel guesses cannot all read "not blocked" before any refusal is counted: exactly
    `limit` are looked at, the rest wait (429)."""
    from reapi_server.errors import RateLimited
    from reapi_server.promo.service import REDEEM_FAILURES_PER_USER, redeem_for_user

    gateway = db_gateway
    account, _ = await make_account(gateway.rt, credits=0)
    limit = REDEEM_FAILURES_PER_USER.limit

    async def guess(number: int) -> object:
        return await redeem_for_user(
            gateway.rt.db,
            account_id=account,
            user_id="user_burst",
            text=f"WRONG-{number:04d}",
            now=gateway.rt.now(),
        )

    outcomes = await asyncio.gather(*(guess(n) for n in range(limit + 8)), return_exceptions=True)
    refused = [o for o in outcomes if isinstance(o, PromoRefused)]
    waited = [o for o in outcomes if isinstance(o, RateLimited)]
    assert len(refused) == limit and len(waited) == 8, outcomes
    assert all(o.code == "promo_not_redeemable" for o in refused)
    assert all(o.code == "too_many_attempts" and o.retry_after > 0 for o in waited)


async def test_a_redeemed_code_does_not_count_against_the_limit(db_gateway):
    from reapi_server.errors import RateLimited
    from reapi_server.promo.service import REDEEM_FAILURES_PER_USER, redeem_for_user

    gateway = db_gateway
    await new_code(gateway, code="RIGHT-ONE", credits=50)
    account, _ = await make_account(gateway.rt, credits=0)
    async with gateway.rt.db.write() as session:
        from reapi_server.models import User

        session.add(User(id="user_mixed", email="mixed@example.test", created_at=1.0))

    async def attempt(text: str) -> object:
        return await redeem_for_user(
            gateway.rt.db,
            account_id=account,
            user_id="user_mixed",
            text=text,
            now=gateway.rt.now(),
        )

    for number in range(REDEEM_FAILURES_PER_USER.limit - 1):
        with pytest.raises(PromoRefused):
            await attempt(f"WRONG-{number:04d}")
    assert (await attempt("right-one")).credits == 50
    with pytest.raises(PromoRefused):  # the last refusal the limit allows
        await attempt("WRONG-LAST")
    with pytest.raises(RateLimited):
        await attempt("WRONG-OVER")

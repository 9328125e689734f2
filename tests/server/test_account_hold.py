"""An account in a payment dispute (on hold) or owing credit since one (debt) is refused by the
credit hold itself: 402 account_in_dispute, on images and videos, on SQLite and PostgreSQL."""

from sqlalchemy import update
from tests.server.helpers import auth, ledger_matches

from reapi_server.models import Account


async def _set(gateway, account: str, **values) -> None:
    async with gateway.rt.db.write() as session:
        await session.execute(update(Account).where(Account.id == account).values(**values))


async def _image(gateway, key: str):
    return await gateway.client.post(
        "/v1/images/generations", json={"prompt": "p", "model": "gpt-image-2"}, headers=auth(key)
    )


async def test_an_account_on_hold_or_in_debt_is_refused_by_the_hold(db_gateway):
    account, key = await db_gateway.account(credits=1000)
    await _set(db_gateway, account, on_hold="account_in_dispute")
    refused = await _image(db_gateway, key)
    assert refused.status_code == 402
    error = refused.json()["error"]
    assert error["code"] == "account_in_dispute"
    assert error["type"] == "insufficient_quota"
    assert "disputed" in error["message"]
    video = await db_gateway.client.post(
        "/v1/videos", json={"prompt": "p", "model": "sim-video"}, headers=auth(key)
    )
    assert video.status_code == 402 and video.json()["error"]["code"] == "account_in_dispute"
    assert await ledger_matches(db_gateway.rt, account) == (1000, 0)

    await _set(db_gateway, account, on_hold=None, debt=5, balance=0)
    owing = await _image(db_gateway, key)
    assert owing.status_code == 402
    assert "owes 5 credits" in owing.json()["error"]["message"]

    await _set(db_gateway, account, debt=0, balance=1000)
    assert (await _image(db_gateway, key)).status_code == 200
    usage = (await db_gateway.client.get("/v1/usage", headers=auth(key))).json()["data"]
    assert sorted(row["error_code"] or "ok" for row in usage) == [
        "account_in_dispute",
        "account_in_dispute",
        "account_in_dispute",
        "ok",
    ]


async def test_a_short_balance_is_still_insufficient_credits(gateway):
    _, key = await gateway.account(credits=1)
    refused = await _image(gateway, key)
    assert refused.status_code == 402
    assert refused.json()["error"]["code"] == "insufficient_credits"

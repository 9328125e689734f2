"""The dashboard's first page: balance, credit held by running requests, 30 days of spend, the
latest requests, and a snippet with this gateway's configured address (never the Host header)."""

from __future__ import annotations

import re

from tests.server.helpers import auth
from tests.web.dashboard import STAT, key_for, person, seed, ts, usage_row


async def test_signed_out_it_asks_to_sign_in(web, browsers):
    answer = await browsers(web).get("/dashboard")
    assert answer.status_code == 303 and answer.headers["location"] == "/login?next=/dashboard"


async def test_balance_held_credit_spend_and_latest_requests(web, browsers):
    someone = await person(web, browsers, credits=1000)
    key_id, key = await key_for(web, someone.account_id, "Main")
    # A video still running holds its price (sim-video: 10 credits a second, 4 seconds).
    created = await web.client.post(
        "/v1/videos",
        json={"model": "sim-video", "prompt": "a wave", "size": "1280x720"},
        headers=auth(key),
    )
    assert created.status_code == 200, created.text
    await seed(
        web,
        [
            usage_row(
                someone.account_id, ts("2027-01-10T10:00:00"), api_key_id=key_id, credit_cost=25
            ),
            usage_row(someone.account_id, ts("2026-12-01T10:00:00"), credit_cost=500),  # too old
        ],
    )
    html = (await someone.browser.get("/dashboard")).text
    assert '<main id="main" class="page page-wide" tabindex="-1">' in html
    stats = dict(re.findall(STAT, html))
    assert stats == {"Balance": "960", "Held": "40", "Last 30 days": "25"}
    assert "credits spent on 2 requests</span>" in html  # the running video, the 25-credit image
    assert html.count('<code class="request-id">') == 2
    assert "sim-video" in html and "Running" in html
    assert "25 credits over 30 days" in html
    assert "You have no API key yet" not in html


async def test_the_snippet_uses_the_configured_address_not_the_host_header(web, browsers):
    someone = await person(web, browsers)
    html = (await someone.browser.get("/dashboard", headers={"host": "evil.test"})).text
    assert "http://gateway.test/v1/images/generations" in html
    assert 'base_url="http://gateway.test/v1"' in html
    assert "evil.test" not in html


async def test_without_a_key_it_points_to_creating_one(web, browsers):
    someone = await person(web, browsers)
    html = (await someone.browser.get("/dashboard")).text
    assert "You have no API key yet" in html
    assert 'href="/dashboard/keys"' in html


async def test_no_spend_says_so_instead_of_an_empty_chart(web, browsers):
    someone = await person(web, browsers)
    html = (await someone.browser.get("/dashboard")).text
    assert "Nothing spent in the last 30 days." in html and "<svg" not in html
    usage = (await someone.browser.get("/dashboard/usage")).text
    assert "No credits charged in this range." in usage and "<svg" not in usage


async def test_a_disabled_account_is_told_why_its_keys_are_refused(web, browsers):
    from sqlalchemy import update

    from reapi_server.models import Account

    someone = await person(web, browsers)
    assert "This account is disabled" not in (await someone.browser.get("/dashboard")).text
    async with web.rt.db.write() as session:
        await session.execute(
            update(Account).where(Account.id == someone.account_id).values(disabled_at=1.0)
        )
    html = (await someone.browser.get("/dashboard")).text
    assert '<div class="notice notice-error" role="alert">This account is disabled' in html


async def test_without_credit_it_points_to_buying_some_where_the_gateway_sells_them(
    make_gateway, clock, browsers
):
    from pydantic import SecretStr

    from reapi_server.billing.settings import BillingSettings, CreditPack

    selling = BillingSettings(
        stripe_secret_key=SecretStr("sk_test_walk"),
        stripe_webhook_secrets=[SecretStr("whsec_walk")],
        stripe_api_base="http://127.0.0.1:9",
        packs=[CreditPack(id="starter", name="1,000 credits", credits=1000, unit_amount=1000)],
    )
    web = await make_gateway(public_base_url="http://gateway.test", billing=selling)
    web.rt.clock = clock
    someone = await person(web, browsers)
    html = (await someone.browser.get("/dashboard")).text
    assert "You have no credits." in html and 'href="/dashboard/billing">Buy credits' in html
    rich = await person(web, browsers, credits=100)
    assert "You have no credits" not in (await rich.browser.get("/dashboard")).text


async def test_without_credit_where_none_are_sold_it_points_to_the_operator(web, browsers):
    someone = await person(web, browsers)
    html = (await someone.browser.get("/dashboard")).text
    assert "You have no credits." in html and "the operator of this gateway" in html
    assert "Buy credits" not in html


async def test_the_request_count_leaves_out_failed_and_refused_requests(web, browsers):
    """ "credits spent on N requests": the requests that spent them, not the refused ones (no
    credit, a bad parameter), which are said apart."""
    someone = await person(web, browsers, credits=1000)
    at = ts("2027-01-10T10:00:00")
    failed = {"status": "failed", "error_code": "insufficient_credits", "credit_cost": 0}
    await seed(
        web,
        [
            usage_row(someone.account_id, at, credit_cost=25),
            usage_row(someone.account_id, at + 1, **failed),
            usage_row(someone.account_id, at + 2, **failed),
        ],
    )
    html = (await someone.browser.get("/dashboard")).text
    assert "credits spent on 1 request; 2 failed or refused, not charged</span>" in html

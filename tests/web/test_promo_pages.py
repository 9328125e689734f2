"""Promotion codes on the web: a verified person redeems one in the "Promotion code" section of
the billing page (with billing on or off) with the page's CSRF token; a redemption goes back to
the billing page, each refusal is shown there beside the field; too many refusals wait.
Operators create and withdraw codes on /admin/promo (audited; 404 to anyone else) and with
`reapi-server promo`. SQLite and PostgreSQL."""

from __future__ import annotations

import html
import re

import pytest
from pydantic import SecretStr
from sqlalchemy import select
from starlette.routing import Route
from tests.server.billing_live import PACKS, SECRET
from tests.server.helpers import ledger_matches
from tests.web.staff import account_id_of, signed_in, signed_in_admin
from tests.web.test_management_api import verified
from typer.testing import CliRunner

from reapi_server.audit import Actor
from reapi_server.backoffice import promo as promo_actions
from reapi_server.billing.settings import BillingSettings
from reapi_server.cli import app as cli
from reapi_server.models import AuditEntry, LedgerEntry, PromoCode
from reapi_server.promo.service import REDEEM_FAILURES_PER_USER, CodeTerms
from reapi_server.testing.stripe_sim import StripeSimulator
from reapi_server.web.pages import admin_promo

PAGE = "/dashboard/billing"
REDEEM = "/dashboard/billing/promo"


def text_of(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


async def make_code(gateway, **terms) -> PromoCode:
    values = {"code": None, "credits": 500, **terms}
    async with gateway.rt.db.write() as session:
        return await promo_actions.create_code(
            session, Actor.cli(), CodeTerms(**values), now=gateway.rt.now()
        )


async def redeem(browser, code: str, **extra: str):
    return await browser.submit(PAGE, REDEEM, {"promo_code": code, **extra})


async def test_a_verified_person_redeems_a_code_once(db_web, browsers):
    gateway = db_web
    browser = browsers(gateway)
    account = await verified(gateway, browser)
    await make_code(gateway, code="WELCOME-500", credits=500, max_uses=10)

    page = await browser.get(PAGE)
    assert page.status_code == 200 and "Billing is off" in page.text  # codes need no Stripe
    assert 'action="/dashboard/billing/promo"' in page.text and 'name="csrf_token"' in page.text
    assert 'id="promo"' in page.text and "Redeemed" not in page.text
    # The form's own address, asked for by a person (a bookmark, a refresh): its section.
    own = await browser.get(REDEEM)
    assert own.status_code == 303 and own.headers["location"] == f"{PAGE}#promo"

    done = await redeem(browser, "  welcome-500 ")
    assert done.status_code == 303
    assert done.headers["location"] == f"{PAGE}?done=promo_redeemed#promo"
    after = text_of((await browser.get(done.headers["location"])).text)
    assert "its credits are in your balance" in after
    assert "WELCOME-500 +500 credits" in after
    assert await ledger_matches(gateway.rt, account) == (500, 0)
    async with gateway.rt.db.read() as session:
        kinds = (
            await session.execute(select(LedgerEntry.kind).where(LedgerEntry.account_id == account))
        ).scalars()
        assert list(kinds) == ["promo"]

    again = await redeem(browser, "WELCOME-500")
    assert again.status_code == 400
    assert "redeemed this promotion code already" in text_of(again.text)
    assert 'aria-invalid="true"' in again.text
    # The refusal is the billing page again: the balance above, the code's field kept.
    assert "<h1>Billing</h1>" in again.text and 'value="WELCOME-500"' in again.text
    assert await ledger_matches(gateway.rt, account) == (500, 0)


async def test_refusals_are_said_beside_the_field(db_web, browsers):
    gateway = db_web
    browser = browsers(gateway)
    await verified(gateway, browser)
    await make_code(gateway, code="GONE-SOON", expires_at=gateway.rt.now() + 60)
    withdrawn = await make_code(gateway, code="PULLED")
    async with gateway.rt.db.write() as session:
        await promo_actions.disable_code(session, Actor.cli(), withdrawn.id, now=gateway.rt.now())
    gateway.rt.clock.advance(120)

    for typed, said in (
        ("NOPE-NOPE", "can't be redeemed"),
        ("GONE-SOON", "can't be redeemed"),
        ("PULLED", "can't be redeemed"),
        ("", "can't be redeemed"),
    ):
        refused = await redeem(browser, typed)
        assert refused.status_code == 400, typed
        assert said in text_of(refused.text), typed
        assert 'id="f-promo_code-error"' in refused.text


async def test_too_many_refusals_wait(web, browsers):
    browser = browsers(web)
    await verified(web, browser)
    for _ in range(REDEEM_FAILURES_PER_USER.limit):
        assert (await redeem(browser, "WRONG-CODE")).status_code == 400
    await make_code(web, code="RIGHT-CODE")
    throttled = await redeem(browser, "RIGHT-CODE")
    assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) > 0
    assert "Too many promotion codes" in text_of(throttled.text)
    web.rt.clock.advance(REDEEM_FAILURES_PER_USER.window + 1)
    assert (await redeem(browser, "RIGHT-CODE")).status_code == 303


async def test_a_redemption_goes_back_to_the_billing_page_whatever_the_form_says(web, browsers):
    browser = browsers(web)
    await verified(web, browser)
    await make_code(web, code="BACK-AWAY")
    away = await redeem(browser, "BACK-AWAY", back="https://elsewhere.example/")
    assert away.headers["location"] == f"{PAGE}?done=promo_redeemed#promo"


@pytest.fixture
def sim():
    with StripeSimulator() as simulator:
        yield simulator


async def test_the_section_is_on_the_billing_page_with_billing_on(
    database_url, make_gateway, browsers, sim
):
    shop = await make_gateway(
        database_url=database_url,
        public_base_url="http://gateway.test",
        billing=BillingSettings(
            stripe_secret_key=SecretStr(sim.secret_key),
            stripe_webhook_secrets=[SecretStr(SECRET)],
            stripe_api_base=sim.base_url,
            packs=PACKS,
        ),
    )
    browser = browsers(shop)
    account = await verified(shop, browser)
    await make_code(shop, code="WITH-STRIPE", credits=700)
    page = text_of((await browser.get(PAGE)).text)
    assert "Buy credits" in page and "Promotion code" in page
    done = await redeem(browser, "with-stripe")
    assert done.headers["location"] == f"{PAGE}?done=promo_redeemed#promo"
    after = (await browser.get(done.headers["location"])).text
    assert "its credits are in your balance" in text_of(after)
    assert "Continue to payment" in after and "WITH-STRIPE" in after
    assert await ledger_matches(shop.rt, account) == (700, 0)


async def test_unverified_signed_out_and_forged_requests_are_refused(web, browsers):
    await make_code(web, code="FOR-VERIFIED")
    browser, email = await signed_in(web, browsers)  # not verified
    page = await browser.get(PAGE)
    assert page.status_code == 200 and "Verify your email address" in page.text
    assert 'name="promo_code"' not in page.text
    token = await browser.token("/settings")
    refused = await browser.client.post(
        REDEEM, data={"promo_code": "FOR-VERIFIED", "csrf_token": token}
    )
    assert refused.status_code == 403
    assert await ledger_matches(web.rt, await account_id_of(web, email)) == (0, 0)

    stranger = browsers(web)
    assert (await stranger.get(PAGE)).headers["location"] == f"/login?next={PAGE}"
    refused = await stranger.client.post(REDEEM, data={"promo_code": "FOR-VERIFIED"})
    assert refused.status_code in (303, 403)
    forged = await browser.client.post(REDEEM, data={"promo_code": "FOR-VERIFIED"})
    assert forged.status_code == 403


# -- operators -----------------------------------------------------------------------------------


def _admin_routes() -> list[tuple[str, str]]:
    found = []
    for route in admin_promo.router.routes:
        assert isinstance(route, Route) and route.path.startswith("/admin/"), route
        found += [(m, route.path) for m in sorted(route.methods or ()) if m != "HEAD"]
    return found


async def _audit(rt) -> list[AuditEntry]:
    async with rt.db.read() as session:
        rows = (await session.execute(select(AuditEntry).order_by(AuditEntry.id))).scalars()
        return [row for row in rows if row.action.startswith("promo.")]


async def test_an_admin_creates_and_withdraws_codes_and_the_audit_log_says_so(db_web, browsers):
    gateway = db_web
    admin, _ = await signed_in_admin(gateway, browsers)
    page = await admin.get("/admin/promo")
    assert page.status_code == 200 and "No promotion code yet" in page.text
    assert 'href="/admin/promo" aria-current="page"' in page.text

    refused = await admin.submit(
        "/admin/promo",
        "/admin/promo",
        {"code": "x", "credits": "lots", "max_uses": "-1", "expires": "someday", "note": ""},
    )
    assert refused.status_code == 400
    for field in ("credits", "max_uses", "expires"):
        assert f'id="f-{field}-error"' in refused.text, field
    refused = await admin.submit("/admin/promo", "/admin/promo", {"code": "x", "credits": "5"})
    assert refused.status_code == 400 and 'id="f-code-error"' in refused.text

    created = await admin.submit(
        "/admin/promo",
        "/admin/promo",
        {
            "code": "spring-25",
            "credits": "2,500",
            "max_uses": "100",
            "expires": "2030-04-01",
            "note": "Spring campaign",
        },
    )
    assert created.status_code == 303, created.text
    listed = await admin.get(created.headers["location"])
    row = text_of(listed.text)
    assert "SPRING-25 Spring campaign 2,500 0 of 100 01 Apr 2030, 00:00 UTC Active" in row
    async with gateway.rt.db.read() as session:
        code = (await session.execute(select(PromoCode))).scalar_one()
    taken = await admin.submit(
        "/admin/promo", "/admin/promo", {"code": "Spring-25", "credits": "1"}
    )
    assert taken.status_code == 409 and "exists already" in text_of(taken.text)

    withdrawn = await admin.submit("/admin/promo", f"/admin/promo/{code.id}/disable", {})
    assert withdrawn.status_code == 303
    assert "Withdrawn" in (await admin.get("/admin/promo")).text
    assert [(r.action, r.via) for r in await _audit(gateway.rt)] == [
        ("promo.create", "web"),
        ("promo.disable", "web"),
    ]
    log = text_of((await admin.get("/admin/audit")).text)
    assert "Created a promotion code" in log and "Withdrew a promotion code" in log


async def test_the_promo_admin_routes_are_404_to_everyone_else(web, browsers):
    customer, _ = await signed_in(web, browsers)
    code = await make_code(web, code="HIDDEN-1")
    token = await customer.token("/settings")
    for method, template in _admin_routes():
        path = template.replace("{code_id}", code.id)
        answer = await customer.client.request(
            method, path, data={"csrf_token": token, "credits": "5"} if method == "POST" else None
        )
        assert answer.status_code == 404, (method, path)
    assert [(r.action, r.via) for r in await _audit(web.rt)] == [("promo.create", "cli")]


def test_the_command_line_creates_lists_and_withdraws(tmp_path):
    runner = CliRunner()
    data = ["--data-dir", str(tmp_path)]
    made = runner.invoke(
        cli, ["promo", "create", "--credits", "300", "--code", "cli-code", "--uses", "3", *data]
    )
    assert made.exit_code == 0, made.output
    assert made.output.startswith("created CLI-CODE  300 credits  uses 0/3  no expiry  promo_")
    generated = runner.invoke(cli, ["promo", "create", "--credits", "10", *data])
    assert generated.exit_code == 0 and re.search(
        r"created [A-Z0-9]{4}-[A-Z0-9]{4}-", generated.output
    )
    bad = runner.invoke(cli, ["promo", "create", "--credits", "ten", "--expires", "soon", *data])
    assert bad.exit_code == 1 and "--credits" in bad.output and "--expires" in bad.output
    listed = runner.invoke(cli, ["promo", "list", *data])
    assert listed.exit_code == 0 and "CLI-CODE  300 credits" in listed.output
    assert runner.invoke(cli, ["promo", "disable", "cli-code", *data]).output == "withdrawn\n"
    assert runner.invoke(cli, ["promo", "disable", "CLI-CODE", *data]).output == (
        "already withdrawn\n"
    )
    missing = runner.invoke(cli, ["promo", "disable", "NO-SUCH", *data])
    assert missing.exit_code == 1 and "no promotion code" in missing.output
    assert "withdrawn" in runner.invoke(cli, ["promo", "list", *data]).output


def _refusal_of(page: str) -> str:
    """The message beside the code's field."""
    found = re.search(r'id="f-promo_code-error"[^>]*>(.*?)</p>', page, re.S)
    assert found is not None, page
    return text_of(found.group(1))


async def test_refusals_do_not_tell_which_codes_exist(db_web, browsers):
    """Unknown, expired, withdrawn and used-up codes are refused alike (status, message, error
    code), and each refusal counts the same towards the limit: guessing learns nothing."""
    gateway = db_web
    await make_code(gateway, code="GONE-SOON", expires_at=gateway.rt.now() + 60)
    withdrawn = await make_code(gateway, code="PULLED")
    await make_code(gateway, code="ONLY-ONE", max_uses=1)
    async with gateway.rt.db.write() as session:
        await promo_actions.disable_code(session, Actor.cli(), withdrawn.id, now=gateway.rt.now())
    first = browsers(gateway)
    await verified(gateway, first)
    assert (await redeem(first, "ONLY-ONE")).status_code == 303
    gateway.rt.clock.advance(120)

    browser = browsers(gateway)
    await verified(gateway, browser)
    refusals = set()
    typed = ["NOPE-NOPE", "GONE-SOON", "PULLED", "ONLY-ONE", "bad code!"]
    for text in typed:
        refused = await redeem(browser, text)
        refusals.add((refused.status_code, _refusal_of(refused.text)))
    assert len(refusals) == 1, refusals
    [(status, message)] = refusals
    assert status == 400 and "can't be redeemed" in message
    # Each of them counted: the rest of the hour's refusals, then a wait, whatever was typed.
    for _ in range(REDEEM_FAILURES_PER_USER.limit - len(typed)):
        assert (await redeem(browser, "PULLED")).status_code == 400
    assert (await redeem(browser, "ONLY-ONE")).status_code == 429
    # The account's own redemption is its own business: still said plainly.
    again = await redeem(first, "ONLY-ONE")
    assert again.status_code == 400 and "redeemed this promotion code already" in again.text

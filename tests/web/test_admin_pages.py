"""The admin pages: 404 to anyone but an admin on every /admin route and method; CSRF on every
admin form; each action through its form writes its audit row, shown on the pages; a disabled
account's key is refused at once; SQLite and PostgreSQL."""

import html
import json
import re

import pytest
from sqlalchemy import select
from starlette.routing import Route
from tests.server.helpers import auth, ledger_matches
from tests.server.other_process import OtherProcess
from tests.web.helpers import PASSWORD, csrf_of
from tests.web.staff import account_id_of, signed_in, signed_in_admin, user_id_of

from reapi_server.models import AuditEntry, LedgerEntry, User
from reapi_server.web.pages import admin as admin_pages
from reapi_server.web.pages import admin_billing, admin_promo


def _text(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def _admin_routes() -> list[tuple[str, str]]:
    """(method, path template) of every admin route."""
    found = []
    routers = (admin_pages.router, admin_billing.router, admin_promo.router)
    for route in (route for router in routers for route in router.routes):
        assert isinstance(route, Route)
        assert route.path == "/admin" or route.path.startswith("/admin/"), route.path
        for method in sorted(route.methods or ()):
            if method != "HEAD":
                found.append((method, route.path))
    return found


def _filled(path: str, values: dict[str, str]) -> str:
    return re.sub(r"\{([^}]+)\}", lambda m: values[m.group(1)], path)


async def _people(gateway, browsers):
    """An admin's browser, a customer's browser and the customer's ids."""
    admin, _ = await signed_in_admin(gateway, browsers)
    customer, email = await signed_in(gateway, browsers)
    values = {
        "account_id": await account_id_of(gateway, email),
        "user_id": await user_id_of(gateway, email),
        "payment_id": "pay_0",
        "event_id": "evt_0",
        "code_id": "promo_0",
    }
    return admin, customer, email, values


async def _audit(rt):
    """The audit rows, but the admin's own promotion (how the tests make an admin)."""
    async with rt.db.read() as session:
        rows = (await session.execute(select(AuditEntry).order_by(AuditEntry.id))).scalars()
        return [row for row in rows if row.action != "user.promote"]


def test_the_admin_routes_are_all_listed():
    assert {path for _, path in _admin_routes()} >= {
        "/admin",
        "/admin/users",
        "/admin/users/{user_id}",
        "/admin/users/{user_id}/delete",
        "/admin/accounts/{account_id}",
        "/admin/accounts/{account_id}/credits",
        "/admin/accounts/{account_id}/disable",
        "/admin/accounts/{account_id}/enable",
        "/admin/audit",
        "/admin/billing",
        "/admin/billing/payments/{payment_id}/refund",
        "/admin/billing/events/{event_id}/apply",
    }


async def test_every_admin_route_is_404_to_everyone_else(db_web, browsers):
    admin, customer, _, values = await _people(db_web, browsers)
    stranger = browsers(db_web)
    token = await customer.token("/settings")
    stranger_token = await stranger.token("/login")
    for method, template in _admin_routes():
        path = _filled(template, values)
        for browser, csrf in ((customer, token), (stranger, stranger_token)):
            data = {"csrf_token": csrf, "amount": "5", "reason": "x", "confirm_email": "x"}
            response = await browser.client.request(
                method, path, data=data if method == "POST" else None
            )
            assert response.status_code == 404, (method, path, response.status_code)
            assert "There is no page at this address." in response.text
            # Even another method on an admin path: never 405, which would confirm it exists.
            other = await browser.client.request("DELETE", path)
            assert other.status_code in (403, 404), (path, other.status_code)
            assert "admin" not in _text(other.text).lower()
    assert await _audit(db_web.rt) == []
    # The admin reaches every page.
    for method, template in _admin_routes():
        if method == "GET":
            page = await admin.get(_filled(template, values))
            assert page.status_code in (200, 303), (template, page.status_code)


async def test_a_session_made_before_the_promotion_is_not_an_admin(web, browsers):
    """Promotion ends the person's sessions: a cookie from before never becomes an admin's."""
    from reapi_server.audit import Actor
    from reapi_server.backoffice import actions

    customer, email = await signed_in(web, browsers)
    async with web.rt.db.write() as session:
        await actions.promote_user(session, Actor.cli(), await user_id_of(web, email), now=1.0)
    assert (await customer.get("/admin")).status_code == 404


async def test_every_admin_form_needs_the_admins_token(db_web, browsers):
    admin, _, _, values = await _people(db_web, browsers)
    good = await admin.token("/admin")
    for method, template in _admin_routes():
        if method != "POST":
            continue
        path = _filled(template, values)
        form = {"amount": "5", "reason": "x"}
        missing = await admin.client.post(path, data=form)
        assert missing.status_code == 403, path
        wrong = await admin.client.post(path, data={**form, "csrf_token": "0" * 64})
        assert wrong.status_code == 403, path
        foreign = await admin.client.post(
            path, data={**form, "csrf_token": good}, headers={"origin": "https://evil.example"}
        )
        assert foreign.status_code == 403, path
        cross = await admin.client.post(
            path, data={**form, "csrf_token": good}, headers={"sec-fetch-site": "cross-site"}
        )
        assert cross.status_code == 403, path
    assert await _audit(db_web.rt) == []
    async with db_web.rt.db.read() as session:
        assert await session.get(User, values["user_id"]) is not None


async def test_credits_are_adjusted_through_the_page_with_a_reason(db_web, browsers):
    rt = db_web.rt
    admin, _, email, values = await _people(db_web, browsers)
    account = f"/admin/accounts/{values['account_id']}"
    page = await admin.get(account)
    assert page.status_code == 200 and email in page.text

    refused = await admin.submit(account, f"{account}/credits", {"amount": "500", "reason": " "})
    assert refused.status_code == 400
    assert 'id="f-reason-error"' in refused.text and 'aria-invalid="true"' in refused.text
    too_low = await admin.submit(account, f"{account}/credits", {"amount": "-5", "reason": "x"})
    assert too_low.status_code == 400 and 'id="f-amount-error"' in too_low.text
    not_a_number = await admin.submit(
        account, f"{account}/credits", {"amount": "lots", "reason": "x"}
    )
    assert not_a_number.status_code == 400 and 'id="f-amount-error"' in not_a_number.text

    done = await admin.submit(
        account, f"{account}/credits", {"amount": "1,500", "reason": "Launch week gift"}
    )
    assert done.status_code == 303 and done.headers["location"].startswith(account)
    assert await ledger_matches(rt, values["account_id"]) == (1500, 0)
    async with rt.db.read() as session:
        kinds = (
            await session.execute(
                select(LedgerEntry.kind).where(LedgerEntry.account_id == values["account_id"])
            )
        ).scalars()
        assert list(kinds) == ["adjustment"]
    (entry,) = await _audit(rt)
    assert entry.action == "credits.adjust" and entry.via == "web"
    shown = _text((await admin.get(account)).text)
    assert "Launch week gift" in shown and "1,500" in shown
    log = _text((await admin.get("/admin/audit")).text)
    assert "credits.adjust" in log and "Launch week gift" in log


async def test_disabling_an_account_refuses_its_key_at_once(db_web, browsers):
    rt = db_web.rt
    admin, _, _, values = await _people(db_web, browsers)
    from reapi_server.api_keys.service import issue_key

    async with rt.db.write() as session:
        _, issued = await issue_key(session, values["account_id"], now=rt.now())
    key = issued.plaintext
    account = f"/admin/accounts/{values['account_id']}"
    async with OtherProcess(db_web) as other:
        assert (await db_web.client.get("/v1/models", headers=auth(key))).status_code == 200
        done = await admin.submit(account, f"{account}/disable", {})
        assert done.status_code == 303
        here = await db_web.client.get("/v1/models", headers=auth(key))
        assert here.status_code == 403 and here.json()["error"]["code"] == "account_disabled"
        there = await other.request("GET", "/v1/models", headers=auth(key))
        assert there.status_code == 403 and there.json()["error"]["code"] == "account_disabled"
        assert "Disabled" in _text((await admin.get(account)).text)

        assert (await admin.submit(account, f"{account}/enable", {})).status_code == 303
        assert (await db_web.client.get("/v1/models", headers=auth(key))).status_code == 200
    assert [e.action for e in await _audit(rt)] == ["account.disable", "account.enable"]


async def test_deleting_a_user_needs_their_email_typed(db_web, browsers):
    rt = db_web.rt
    admin, customer, email, values = await _people(db_web, browsers)
    account = f"/admin/accounts/{values['account_id']}"
    delete = f"/admin/users/{values['user_id']}/delete"
    wrong = await admin.submit(account, delete, {"confirm_email": "someone@example.com"})
    assert wrong.status_code == 400 and 'id="f-confirm_email-error"' in wrong.text
    assert await _audit(rt) == []
    done = await admin.submit(account, delete, {"confirm_email": email.upper()})
    assert done.status_code == 303 and done.headers["location"] == "/admin/users?done=user_deleted"
    assert "The person is deleted" in _text((await admin.get(done.headers["location"])).text)
    async with rt.db.read() as session:
        assert await session.get(User, values["user_id"]) is None
    (entry,) = await _audit(rt)
    # Detached: who deleted a person, and when; not whom.
    assert (entry.action, entry.target_user_id, entry.account_id) == ("user.delete", None, None)
    assert json.loads(entry.detail)["about"] == "a deleted person"
    assert (await customer.get("/settings")).status_code == 303  # signed out
    # The person's own deletion ran: their account went with them (the audit row stays).
    log = _text((await admin.get("/admin/audit")).text)
    assert "Deleted the person" in log and "about a deleted person" in log
    assert (await admin.get(account)).status_code == 404


async def test_a_stale_admin_session_acts_only_after_the_password(web, browsers, clock):
    """Sudo mode (`web.sudo`) on every admin action: an admin session whose sign-in is more
    than ten minutes old moves no credit, disables, deletes, refunds and applies nothing, and
    makes or withdraws no code, until its person confirms with their password."""
    rt = web.rt
    admin, _, email, values = await _people(web, browsers)
    account = f"/admin/accounts/{values['account_id']}"
    clock.advance(11 * 60)
    form = {"amount": "500", "reason": "gift", "confirm_email": email, "code": "GIFT"}
    form |= {"credits": "100", "max_uses": "1"}
    posts = [_filled(path, values) for method, path in _admin_routes() if method == "POST"]
    assert len(posts) == 8
    for path in posts:
        asked = await admin.submit(account, path, form)
        assert asked.status_code == 403, (path, asked.status_code)
        assert "Confirm it is you" in asked.text and 'name="current_password"' in asked.text
        assert f'action="{path}"' in asked.text  # the form is posted back once confirmed
    assert await _audit(rt) == []
    assert await ledger_matches(rt, values["account_id"]) == (0, 0)
    async with rt.db.read() as session:
        assert await session.get(User, values["user_id"]) is not None

    wrong = {**form, "confirm_access": "1", "current_password": "not it"}
    refused = await admin.submit(account, f"{account}/credits", wrong)
    assert refused.status_code == 401 and await _audit(rt) == []
    right = {**form, "confirm_access": "1", "current_password": PASSWORD}
    done = await admin.submit(account, f"{account}/credits", right)
    assert done.status_code == 303
    assert await ledger_matches(rt, values["account_id"]) == (500, 0)
    # Confirmed for the next ten minutes: the next action asks nothing.
    assert (await admin.submit(account, f"{account}/disable", {})).status_code == 303
    assert [e.action for e in await _audit(rt)] == ["credits.adjust", "account.disable"]


async def test_an_admin_cannot_delete_themselves(web, browsers):
    admin, email = await signed_in_admin(web, browsers)
    account = f"/admin/accounts/{await account_id_of(web, email)}"
    me = await user_id_of(web, email)
    refused = await admin.submit(account, f"/admin/users/{me}/delete", {"confirm_email": email})
    assert refused.status_code == 400
    assert (await admin.get("/admin")).status_code == 200


async def test_search_finds_by_email_user_account_and_key(web, browsers):
    admin, _, email, values = await _people(web, browsers)
    from reapi_server.api_keys.service import issue_key

    async with web.rt.db.write() as session:
        key, _ = await issue_key(session, values["account_id"], now=web.rt.now())
    fragment = email.split("@")[0][-6:].upper()
    for query in (fragment, values["user_id"], values["account_id"], key.id):
        page = await admin.get("/admin/users", params={"q": query})
        assert page.status_code == 200
        assert email in page.text, query
    nothing = await admin.get("/admin/users", params={"q": "nobody-here"})
    assert email not in nothing.text and "No user matches" in _text(nothing.text)
    # % and _ are searched for as themselves.
    wildcard = await admin.get("/admin/users", params={"q": "%"})
    assert email not in wildcard.text
    everyone = await admin.get("/admin/users")
    assert email in everyone.text
    to_account = await admin.get(f"/admin/users/{values['user_id']}")
    assert to_account.status_code == 303
    assert to_account.headers["location"] == f"/admin/accounts/{values['account_id']}"


async def test_the_admin_overview_shows_host_health(web, browsers):
    admin, _ = await signed_in_admin(web, browsers)
    _, key = await web.account()
    web.upstream.faults["primary.test"] = "reset"
    await web.client.post(
        "/v1/images/generations", headers=auth(key), json={"model": "gpt-image-2", "prompt": "x"}
    )
    page = await admin.get("/admin")
    host = re.search(r'<li class="host-card" data-host="primary">.*?</li>', page.text, re.S)
    assert host and "Open" in _text(host.group(0))


@pytest.mark.parametrize("path", ["/admin", "/admin/users", "/admin/audit"])
async def test_admin_pages_have_the_admin_item_current(web, browsers, path):
    admin, _ = await signed_in_admin(web, browsers)
    page = await admin.get(path)
    assert re.search(r'href="/admin" aria-current="page"', page.text)
    assert csrf_of(page.text)


async def test_the_audit_log_pages_back(web, browsers):
    from reapi_server.audit import Actor
    from reapi_server.backoffice import actions

    admin, _ = await signed_in_admin(web, browsers)
    account_id, _ = await web.account()
    async with web.rt.db.write() as session:
        for number in range(55):
            await actions.adjust_credits(
                session, Actor.cli(), account_id, 1, f"gift {number}", now=web.rt.now()
            )
    first = await admin.get("/admin/audit")
    assert first.text.count("gift ") == 50 and "gift 54" in first.text
    older = re.search(r'href="(/admin/audit\?before=\d+)"', first.text).group(1)
    second = await admin.get(older)
    assert second.text.count("gift ") == 5 and "gift 0" in second.text
    assert "Made an admin" in second.text  # the promotion came first
    assert "?before=" not in second.text.split("<main", 1)[1].split("</main>")[0]
    for junk in ("x", "-1", "99999999999999999999"):
        assert (await admin.get(f"/admin/audit?before={junk}")).status_code == 200

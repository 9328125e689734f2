"""CSRF on every form of the web half, its security headers on every page, and /v1 untouched:
no cookie, no CSRF, no web headers there, answers exactly as before."""

import logging
import re

import pytest
from starlette.routing import Route
from tests.server.helpers import access_entries, auth, scrape_metrics
from tests.web.helpers import Browser, new_email, web_context

from reapi_server.web.app import PAGES as PAGE_MODULES
from reapi_server.web.csrf import exempt
from reapi_server.web.security import CSP

PAGE_PATHS = [
    "/signup",
    "/login",
    "/reset",
    "/verify?token=x",
    "/reset/confirm?token=x",
    "/settings",
    "/legal/privacy",
    "/legal/terms",
    "/legal/cookies",
    "/unsubscribe/user_0.x",
    "/auth/consent",
    "/dashboard",
    "/dashboard/keys",
    "/dashboard/usage",
    "/dashboard/outputs",
    "/dashboard/outputs/delete-all",
    "/dashboard/billing",
    "/dashboard/billing/history",
    "/no-such-page",
]


def _every_post_path() -> list[str]:
    """Every POST route of the web half's pages, path parameters filled in."""
    paths = []
    for module in PAGE_MODULES:
        for route in module.router.routes:
            if isinstance(route, Route) and "POST" in (route.methods or ()):
                paths.append(re.sub(r"\{[^}]+\}", "sess_0", route.path))
    return sorted(paths)


def _post_paths(gateway) -> list[str]:
    """Every CSRF-checked POST route (all but the documented exemptions)."""
    return [path for path in _every_post_path() if not exempt(path)]


def test_only_the_documented_posts_are_exempt():
    # RFC 8058 one-click unsubscribe: a mail provider posts with no cookie and no page token.
    assert [path for path in _every_post_path() if exempt(path)] == ["/unsubscribe/sess_0"]


async def test_every_form_is_covered(web):
    # If a form is added, it is CSRF-checked by the middleware; this list shows what exists.
    assert {
        "/signup",
        "/login",
        "/logout",
        "/verify",
        "/reset",
        "/reset/confirm",
        "/settings/verification",
        "/settings/password",
        "/settings/sessions/sess_0/end",
        "/settings/sessions/end-others",
        "/settings/notifications/newsletter",
        "/auth/consent",
        "/auth/sess_0",
        "/settings/identities/sess_0/link",
        "/settings/identities/sess_0/unlink",
        "/auth/sess_0/reauth",
        "/login/2fa",
        "/settings/2fa/setup",
        "/settings/2fa/enable",
        "/settings/2fa/disable",
        "/settings/2fa/backup-codes",
        "/settings/email",
        "/settings/email/confirm",
        "/settings/notifications/devices",
        "/dashboard/keys",
        "/dashboard/keys/management",
        "/dashboard/keys/sess_0",
        "/dashboard/keys/sess_0/revoke",
        "/dashboard/usage/time-zone",
        "/dashboard/outputs/sess_0/delete",
        "/dashboard/outputs/delete-all",
        "/admin/accounts/sess_0/credits",
        "/admin/accounts/sess_0/disable",
        "/admin/accounts/sess_0/enable",
        "/admin/users/sess_0/delete",
        "/dashboard/billing/checkout",
        "/dashboard/billing/auto-top-up",
        "/admin/billing/payments/sess_0/refund",
        "/admin/billing/events/sess_0/apply",
    } <= set(_post_paths(web))


@pytest.mark.parametrize("signed_in", [False, True])
async def test_every_post_without_a_valid_token_is_refused(web, browsers, signed_in):
    browser = browsers(web)
    if signed_in:
        await browser.sign_up(new_email())
    good = await browser.token("/settings" if signed_in else "/login")
    for path in _post_paths(web):
        missing = await browser.client.post(path, data={"email": "a@example.com"})
        assert missing.status_code == 403, path
        assert "This form has expired" in missing.text
        wrong = await browser.client.post(path, data={"csrf_token": "0" * 64})
        assert wrong.status_code == 403, path
        header_wrong = await browser.client.post(path, headers={"x-csrf-token": good[::-1]})
        assert header_wrong.status_code == 403, path
        cross_site = await browser.client.post(
            path, data={"csrf_token": good}, headers={"sec-fetch-site": "cross-site"}
        )
        assert cross_site.status_code == 403, path
        foreign = await browser.client.post(
            path, data={"csrf_token": good}, headers={"origin": "https://evil.example"}
        )
        assert foreign.status_code == 403, path
        null_origin = await browser.client.post(
            path, data={"csrf_token": good}, headers={"origin": "null"}
        )
        assert null_origin.status_code == 403, path
    # Nothing was signed out by all that.
    if signed_in:
        assert (await browser.get("/settings")).status_code == 200


async def test_a_valid_token_passes_from_this_origin_and_as_a_header(web, browsers):
    browser = browsers(web)
    await browser.sign_up(new_email())
    token = await browser.token("/settings")
    same = await browser.client.post(
        "/settings/sessions/end-others",
        data={"csrf_token": token},
        headers={"origin": "http://gateway.test", "sec-fetch-site": "same-origin"},
    )
    assert same.status_code == 303
    as_header = await browser.client.post(
        "/settings/sessions/end-others", headers={"x-csrf-token": token}
    )
    assert as_header.status_code == 303


async def test_a_token_works_only_in_the_browser_it_was_made_for(web, browsers):
    one, other = browsers(web), browsers(web)
    token = await one.token("/login")
    await other.get("/login")
    response = await other.client.post(
        "/login", data={"email": "a@example.com", "password": "x", "csrf_token": token}
    )
    assert response.status_code == 403
    # And a browser without the CSRF cookie at all has no valid token.
    fresh = Browser(web.app)
    response = await fresh.client.post("/login", data={"csrf_token": token})
    assert response.status_code == 403
    await fresh.aclose()


async def test_a_form_too_large_is_refused(web, browsers, caplog):
    browser = browsers(web)
    await browser.get("/login")
    caplog.set_level(logging.INFO, logger="reapi_server.access")
    caplog.clear()  # the lines before (an earlier test may have left the access log at INFO)
    response = await browser.client.post("/login", data={"email": "x" * 70_000})
    assert response.status_code == 413
    # Answered before any error handler: its access log line says why all the same.
    refused = await browser.client.post("/login", data={"email": "a@example.com"})
    assert refused.status_code == 403
    logged = [(e["status"], e.get("code")) for e in access_entries(caplog)]
    assert logged == [(413, "request_too_large"), (403, "csrf_failed")]


async def test_the_management_api_too_large_is_json_and_logged_with_its_code(web, browsers, caplog):
    browser = browsers(web)
    await browser.sign_up(new_email())
    caplog.set_level(logging.INFO, logger="reapi_server.access")
    caplog.clear()  # the lines before (an earlier test may have left the access log at INFO)
    response = await browser.client.post(
        "/api/keys",
        content=b"name=" + b"x" * 70_000,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    assert [e.get("code") for e in access_entries(caplog)] == ["request_too_large"]


@pytest.mark.parametrize("signed_in", [False, True])
async def test_security_headers_on_every_page(web, browsers, signed_in):
    browser = browsers(web)
    if signed_in:
        await browser.sign_up(new_email())
    for path in PAGE_PATHS:
        response = await browser.get(path)
        assert response.headers["content-security-policy"] == CSP, path
        assert "script-src 'self'" in CSP and "'unsafe-inline'" not in CSP
        assert "frame-ancestors 'none'" in CSP and "form-action 'self'" in CSP
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "same-origin"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "no-store"
        assert "strict-transport-security" not in response.headers  # plain http
        if response.status_code == 200:
            # No inline script or style for the CSP to have to allow: scripts are files of
            # this site's own (the copy buttons').
            scripts = re.findall(r"<script[^>]*>", response.text)
            assert all(re.fullmatch(r'<script src="/static/[^"]+" defer>', t) for t in scripts)
            assert "style=" not in response.text
            assert "<style" not in response.text
    css = await browser.get("/static/app.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert css.headers["x-content-type-options"] == "nosniff"
    assert "max-age" in css.headers["cache-control"]


async def test_a_missing_static_file_is_a_404_not_a_crash(web, browsers):
    """Static files get no visitor, and the error page needs one: a missing file was a 500
    (an unhandled KeyError logged at error level), for anyone, in a loop."""
    browser = browsers(web)
    for path in ("/static/nope.css", "/static/..%2f..%2fpyproject.toml"):
        missing = await browser.get(path)
        assert missing.status_code == 404, (path, missing.status_code)
    wrong_method = await browser.client.post("/static/app.css")
    assert wrong_method.status_code == 405


async def test_the_error_pages_have_the_headers_too(web, browsers):
    browser = browsers(web)
    await browser.get("/login")
    forbidden = await browser.client.post("/login", data={})
    assert forbidden.status_code == 403
    assert forbidden.headers["content-security-policy"] == CSP

    async def broken(request):
        raise RuntimeError("boom")

    web_app = web.app.routes[-1].app.app  # the web half (`LazyWebApp`), built by now
    web_app.router.routes.insert(1, Route("/broken", broken))
    failed = await browser.get("/broken")
    assert failed.status_code == 500 and "Something went wrong" in failed.text
    assert failed.headers["content-security-policy"] == CSP
    assert "boom" not in failed.text


# -- /v1 never sees the web half ---------------------------------------------------------------


async def test_v1_ignores_a_session_cookie(web, browsers):
    browser = browsers(web)
    await browser.sign_up(new_email())
    assert browser.cookie("reapi_session")
    plain = Browser(web.app)
    try:
        for method, path in [
            ("GET", "/v1/models"),
            ("POST", "/v1/images/generations"),
            ("GET", "/v1/no-such-endpoint"),
            ("POST", "/v1/models"),
            ("GET", "/v1"),
        ]:
            with_cookie = await browser.client.request(method, path, json={})
            without = await plain.client.request(method, path, json={})
            assert with_cookie.status_code == without.status_code, path
            assert with_cookie.status_code in (401, 404, 405), path
            assert with_cookie.json() == without.json(), path
            assert "error" in with_cookie.json()
            for header in ("set-cookie", "content-security-policy", "x-frame-options"):
                assert header not in with_cookie.headers, (path, header)
    finally:
        await plain.aclose()


async def test_v1_needs_no_csrf_token_and_takes_api_keys_only(web, browsers):
    _, key = await web.account(credits=1000)
    browser = browsers(web)
    await browser.sign_up(new_email())
    response = await browser.client.get("/v1/models", headers=auth(key))
    assert response.status_code == 200 and "set-cookie" not in response.headers
    # A cross-site POST to /v1 is the API's business (a key authenticates it), not a form's.
    created = await browser.client.post(
        "/v1/images/generations",
        json={"model": "gpt-image-2", "prompt": "a lighthouse"},
        headers={**auth(key), "sec-fetch-site": "cross-site", "origin": "https://evil.example"},
    )
    assert created.status_code == 200


async def test_health_metrics_and_openapi_stay_with_the_api(make_gateway):
    gateway = await make_gateway(metrics_token="scrape-7e2a")
    client = gateway.client
    scraper = auth("scrape-7e2a")
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).status_code == 200
    assert (await client.get("/metrics", headers=scraper)).status_code == 200
    schema = (await client.get("/openapi.json")).json()
    assert not any(not path.startswith("/v1") for path in schema["paths"])
    for path, headers in (("/healthz", {}), ("/metrics", scraper), ("/openapi.json", {})):
        assert "content-security-policy" not in (await client.get(path, headers=headers)).headers
    # Without the token, /metrics is answered as any path the gateway does not have.
    unknown = await client.get("/no-such-page")
    for headers in ({}, auth("scrape-7e2b")):
        hidden = await client.get("/metrics", headers=headers)
        assert hidden.status_code == 404 and hidden.content == unknown.content
    assert "reapi_http_requests_total" in await scrape_metrics(gateway)
    assert "set-cookie" not in (await client.get("/healthz")).headers
    wrong_method = await client.post("/healthz")  # the API's own 405, not a web page
    assert wrong_method.status_code == 405 and "error" in wrong_method.json()


async def test_the_allowed_origins(make_gateway):
    demo = await make_gateway(host="127.0.0.1", port=8123)
    assert web_context(demo).origins == {
        "http://127.0.0.1:8123",
        "http://localhost:8123",
        "http://[::1]:8123",
    }
    public = await make_gateway(public_base_url="https://reapi.example/")
    assert web_context(public).origins == {"https://reapi.example"}

"""The public site: the landing page, the models and their prices (from the catalog and the
same price function that charges), the changelog from the installed package, the contact page,
and the status page (breakers as the router sees them, no request data)."""

import ast
import html
import re
from importlib import resources
from pathlib import Path

import pytest
from tests.server.helpers import auth
from tests.web.conftest import BASE
from tests.web.helpers import mail_to
from tests.web.staff import signed_in

from reapi._params import Shape
from reapi.catalog import default_catalog
from reapi_server.credits.service import price_of

ROOT = Path(__file__).resolve().parents[2]


def _text(page: str) -> str:
    """The page's visible text, one space between words."""
    body = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", page, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


# -- the landing page --------------------------------------------------------------------------


async def test_the_landing_page_says_what_this_is_and_how_to_start(web, browsers):
    page = await browsers(web).get("/")
    assert page.status_code == 200
    text = _text(page.text)
    for words in ("OpenAI-compatible", "failover", "retention"):
        assert words.lower() in text.lower(), words
    # The quick start points at this gateway, whatever address it is reached by.
    assert f"{BASE}/v1" in text
    assert 'href="/models"' in page.text and 'href="https://reapi.dev/docs"' in page.text
    assert 'href="/signup"' in page.text and 'href="/dashboard"' not in page.text


async def test_signed_in_people_see_the_landing_page_too_with_their_dashboard(web, browsers):
    browser, _ = await signed_in(web, browsers)
    page = await browser.get("/")
    assert page.status_code == 200
    assert 'href="/dashboard"' in page.text
    assert 'href="/signup"' not in page.text


async def test_the_landing_pages_first_step_follows_the_email_verification(web, browsers):
    """Signed in, the first step says what is left: verify the address, or nothing (it read
    "You have an account. and verify your email address." for a verified person)."""
    browser, email = await signed_in(web, browsers)
    text = _text((await browser.get("/")).text)
    assert "Verify your email address" in text and "open the link we sent you" in text
    [mail] = await mail_to(web.rt, email)
    confirmed = await browser.submit("/settings", "/verify", {"token": mail.token("/verify")})
    assert confirmed.status_code == 303
    text = _text((await browser.get("/")).text)
    assert "You have an account , and your email address is verified." in text
    assert "verify your email" not in text.lower()
    # No page of the dashboard asks a verified person to verify.
    for path in ("/dashboard", "/dashboard/keys", "/dashboard/billing", "/settings"):
        page = await browser.get(path)
        assert page.status_code == 200, path
        assert "verify your email" not in _text(page.text).lower(), path


async def test_the_landing_pages_example_prints_what_it_says_when_run(web, browsers):
    """Its images.generate call, made with the official openai client against this gateway,
    and the expression it prints: an image's URL, not None (the default answer is b64_json,
    whose `url` is None)."""
    import httpx2
    import openai

    page = await browsers(web).get("/")
    [code] = re.findall(r'<pre class="code code-dark"><code>(.*?)</code></pre>', page.text, re.S)
    tree = ast.parse(html.unescape(re.sub(r"<[^>]+>", "", code)))
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    [generate] = [c for c in calls if ast.unparse(c.func) == "client.images.generate"]
    [printed] = [c.args[0] for c in calls if ast.unparse(c.func) == "print"]
    _, key = await web.account()
    client = openai.AsyncOpenAI(
        base_url=f"{BASE}/v1",
        api_key=key,
        max_retries=0,
        http_client=httpx2.AsyncClient(transport=httpx2.ASGITransport(app=web.app)),
    )
    image = await client.images.generate(
        **{k.arg: ast.literal_eval(k.value) for k in generate.keywords if k.arg}
    )
    shown = eval(ast.unparse(printed), {"image": image})  # the page's own expression
    assert isinstance(shown, str) and shown.startswith(f"{BASE}/v1/files/"), shown


# -- models --------------------------------------------------------------------------------------


@pytest.fixture
async def full_catalog(make_gateway, clock):
    """A gateway serving the whole packaged catalog (a key for every provider)."""
    catalog = default_catalog()
    gateway = await make_gateway(
        catalog=catalog,
        public_base_url=BASE,
        provider_keys={name: "sk-test" for name in catalog.providers},
        provider_base_urls={},
    )
    return gateway


def _charged(spec, *, resolution=None):
    """What a request of one unit costs, by the function requests are charged with."""
    if spec.price.unit == "second":
        return price_of(spec, Shape(seconds=1, resolution=resolution))
    return price_of(spec, Shape(resolution=resolution), images=1)


async def test_models_json_lists_every_model_at_the_price_requests_are_charged(
    full_catalog, browsers
):
    catalog = full_catalog.rt.catalog
    response = await browsers(full_catalog).get("/models.json")
    assert response.status_code == 200
    listed = {model["id"]: model for model in response.json()["data"]}
    assert set(listed) == set(catalog.models)
    for model_id, spec in catalog.models.items():
        shown = listed[model_id]
        assert shown["kind"] == spec.kind
        assert shown["hosts"] == [route.provider for route in spec.routes]
        price = shown["price"]
        assert price["unit"] == spec.price.unit
        assert price["credits"] == _charged(spec), model_id
        for resolution, credits in price["by_resolution"].items():
            assert credits == _charged(spec, resolution=resolution), (model_id, resolution)
        assert set(price["by_resolution"]) == set(spec.price.by_resolution)
        with_input = price_of(spec, Shape(), images=1, input_images=1)
        assert price["per_input_image"] == with_input - price_of(spec, Shape(), images=1)
        assert shown["sizes"] == list(spec.capabilities.sizes)
        assert shown["seconds"] == list(spec.capabilities.seconds)


async def test_the_models_page_shows_each_model_its_hosts_and_prices(full_catalog, browsers):
    catalog = full_catalog.rt.catalog
    page = await browsers(full_catalog).get("/models")
    assert page.status_code == 200
    for model_id, spec in catalog.models.items():
        match = re.search(
            rf'<article class="model" id="{re.escape(model_id)}".*?</article>', page.text, re.S
        )
        assert match, model_id
        card = _text(match.group(0))
        assert spec.name in card
        hosts = [route.provider for route in spec.routes]
        # Hosts in failover order.
        positions = [card.index(host) for host in hosts]
        assert positions == sorted(positions), (model_id, hosts)
        unit = {"image": "per image", "second": "per second", "request": "per request"}
        assert f"{_charged(spec):,} credits {unit[spec.price.unit]}" in card, model_id
        for resolution in spec.price.by_resolution:
            assert f"{resolution}: {_charged(spec, resolution=resolution):,}" in card
        if spec.price.by_resolution:  # the default's resolutions are named too, with its price
            for resolution in spec.capabilities.resolutions:
                assert f"{resolution}: {_charged(spec, resolution=resolution):,}" in card
        if spec.price.per_input_image:
            assert f"{spec.price.per_input_image:,} credits per input image" in card
        for size in spec.capabilities.sizes:
            assert size in card
        for seconds in spec.capabilities.seconds:
            assert f"{seconds} s" in card
        # Shortest first (the catalog keeps the maker's default first: "8 s, 4 s, 6 s" read
        # as a jumble).
        listed = [int(s) for s in re.findall(r'<span class="chip">(\d+) s</span>', match[0])]
        assert listed == sorted(spec.capabilities.seconds), model_id


async def test_models_without_a_configured_host_are_not_offered(web, browsers):
    """The test gateway has keys for its two hosts only: what /v1/models serves."""
    listed = (await browsers(web).get("/models.json")).json()["data"]
    assert {m["id"] for m in listed} == {"gpt-image-2", "sim-video"}
    assert listed[0]["hosts"] == ["primary", "backup"]


# -- changelog and contact -----------------------------------------------------------------------


def test_the_changelog_ships_inside_the_package():
    packaged = resources.files("reapi_server.site").joinpath("CHANGELOG.md").read_text("utf-8")
    assert packaged == (ROOT / "CHANGELOG.md").read_text("utf-8")


async def test_the_changelog_page_renders_the_changelog(web, browsers):
    page = await browsers(web).get("/changelog")
    assert page.status_code == 200
    assert "<h2" in page.text and "Unreleased" in page.text
    assert "<h3" in page.text and "Added" in page.text
    # Markdown, not raw HTML: the changelog is text.
    assert "### Added" not in page.text


async def test_the_contact_page_gives_the_operators_details(make_gateway, browsers):
    gateway = await make_gateway(
        public_base_url=BASE,
        operator_name="Example Images Ltd",
        operator_contact="privacy@example.com",
        operator_address="1 Quay Street, Dublin, Ireland",
    )
    page = await browsers(gateway).get("/contact")
    assert page.status_code == 200
    text = _text(page.text)
    assert "Example Images Ltd" in text and "1 Quay Street, Dublin, Ireland" in text
    assert 'href="mailto:privacy@example.com"' in page.text
    for topic in ("export", "delet", "child"):
        assert topic in text.lower(), topic


async def test_without_contact_details_the_contact_page_says_so(web, browsers):
    page = await browsers(web).get("/contact")
    assert page.status_code == 200
    assert "has not published" in _text(page.text)


async def test_the_privacy_policy_sends_people_to_the_contact_page(web, browsers):
    page = await browsers(web).get("/legal/privacy")
    assert 'href="/contact"' in page.text


# -- status --------------------------------------------------------------------------------------


async def test_the_status_page_shows_an_opened_breaker_and_no_request_data(web, browsers):
    _, key = await web.account()
    web.upstream.faults["primary.test"] = "reset"  # unreachable: its breaker opens at once
    prompt = "a secret lighthouse at dusk"
    response = await web.client.post(
        "/v1/images/generations",
        headers=auth(key),
        json={"model": "gpt-image-2", "prompt": prompt},
    )
    assert response.status_code == 200  # the backup answered
    page = await browsers(web).get("/status")
    assert page.status_code == 200
    row = re.search(r'<tr[^>]*data-route="primary/gpt-image-2".*?</tr>', page.text, re.S)
    assert row, "no row for the primary route"
    assert "Open" in _text(row.group(0))
    # Failures of attempts, last five minutes; "failed" said in the cell, as on a phone the
    # table's header is hidden.
    assert "1 of 1 failed" in _text(row.group(0))
    backup = re.search(r'<tr[^>]*data-route="backup/gpt-image-2".*?</tr>', page.text, re.S)
    assert "Operational" in _text(backup.group(0))
    assert prompt not in page.text and key not in page.text
    assert 'http-equiv="refresh"' in page.text
    assert "Degraded" in _text(page.text)
    host = re.search(r"<li class=\"host-card\" data-host=\"primary\">.*?</li>", page.text, re.S)
    assert "Open" in _text(host.group(0)) and "1 of 1 failed" in _text(host.group(0))


async def test_the_status_page_reads_all_clear_when_nothing_failed(web, browsers):
    page = await browsers(web).get("/status")
    assert page.status_code == 200
    assert "All systems operational" in _text(page.text)


async def test_the_sites_pages_carry_the_security_headers_and_no_inline_code(web, browsers):
    from tests.web.staff import signed_in_admin

    from reapi_server.web.security import CSP

    admin, _ = await signed_in_admin(web, browsers)
    paths = ["/", "/models", "/changelog", "/contact", "/status", "/admin", "/admin/audit"]
    for path in [*paths, "/admin/users"]:
        response = await admin.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-security-policy"] == CSP, path
        assert response.headers["cache-control"] == "no-store", path
        assert "<script" not in response.text and "style=" not in response.text, path
    # The JSON list is data, not a page: the same headers, no cookie needed.
    listed = await browsers(web).get("/models.json")
    assert listed.headers["content-type"].startswith("application/json")

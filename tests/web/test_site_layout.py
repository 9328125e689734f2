"""The shared layout: one navigation (web/navigation.py) for every page, that changes when
signed in and for admins; a skip link, aria-current on the page's own item, a phone menu that
needs no JavaScript; a footer with the legal pages and the contact page."""

import re

from tests.web.staff import signed_in, signed_in_admin

from reapi_server.web.navigation import ACCOUNT, ADMIN, PUBLIC


def _header(html: str) -> str:
    return html.split('<header class="topbar"', 1)[1].split("</header>", 1)[0]


def _footer(html: str) -> str:
    return html.split('<footer class="footer"', 1)[1].split("</footer>", 1)[0]


def _hrefs(html: str) -> list[str]:
    return re.findall(r'href="([^"]+)"', html)


def _current(html: str) -> set[str]:
    return set(re.findall(r'href="([^"]+)"[^>]*aria-current="page"', html))


async def test_signed_out_visitors_see_the_public_links(web, browsers):
    page = await browsers(web).get("/legal/terms")
    assert page.status_code == 200
    header = _header(page.text)
    for link in PUBLIC:
        assert link.href in _hrefs(header), link
    assert "/login" in _hrefs(header) and "/signup" in _hrefs(header)
    for link in (*ACCOUNT, ADMIN):
        assert link.href not in _hrefs(header), link
    assert 'action="/logout"' not in header


async def test_signed_in_people_see_their_pages_and_the_current_one(web, browsers):
    browser, _ = await signed_in(web, browsers)
    page = await browser.get("/settings")
    header = _header(page.text)
    for link in ACCOUNT:
        assert link.href in _hrefs(header), link
    assert ADMIN.href not in _hrefs(header)
    assert "/login" not in _hrefs(header)
    assert 'action="/logout"' in header
    # The settings item is the current page, in the bar and in the phone menu alike.
    assert _current(header) == {"/settings"}
    assert header.count('aria-current="page"') == 2


async def test_admins_also_see_the_admin_link(web, browsers):
    browser, _ = await signed_in_admin(web, browsers)
    page = await browser.get("/settings")
    assert ADMIN.href in _hrefs(_header(page.text))


async def test_the_longest_matching_item_is_current():
    from reapi_server.web.navigation import current_href

    items = ACCOUNT
    assert current_href("/dashboard", items) == "/dashboard"
    assert current_href("/dashboard/keys", items) == "/dashboard/keys"
    assert current_href("/dashboard/keys/key_1/edit", items) == "/dashboard/keys"
    assert current_href("/dashboardx", items) is None
    assert current_href("/settings", items) == "/settings"


async def test_every_page_has_a_skip_link_a_phone_menu_and_the_footer(web, browsers):
    page = await browsers(web).get("/legal/privacy")
    html = page.text
    assert '<a class="skip-link" href="#main">' in html and 'id="main"' in html
    # The phone menu is a <details>: it opens without JavaScript.
    assert re.search(r"<details class=\"menu\"[^>]*>\s*<summary", html)
    assert "<script" not in html
    footer = _footer(html)
    for href in ("/legal/privacy", "/legal/terms", "/legal/cookies", "/contact"):
        assert href in _hrefs(footer), href

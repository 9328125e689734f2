"""Keys come in pages: `GET /api/keys` takes `limit` and `older` (the previous page's
`next_cursor`), as `/api/usage` does; the keys page shows every key not revoked and the latest
revoked ones, the older ones a link away."""

from __future__ import annotations

import re

import pytest
from tests.server.helpers import auth
from tests.web.test_management_api import error_of, management_key, verified

from reapi_server.api_keys.service import issue_key, revoke_key
from reapi_server.web.pages.keys import REVOKED_SHOWN


async def _made(gateway, account: str, count: int, *, revoked: bool) -> list[str]:
    """Ids of `count` new keys, a second apart, newest last (not through the throttled way)."""
    ids = []
    for n in range(count):
        gateway.rt.clock.advance(1)
        async with gateway.rt.db.write() as session:
            row, _ = await issue_key(session, account, name=f"k{n}", now=gateway.rt.now())
            if revoked:
                await revoke_key(session, row.id, now=gateway.rt.now())
        ids.append(row.id)
    return ids


async def test_the_management_api_pages_keys_active_first_then_revoked(db_web):
    gateway = db_web
    account, _ = await gateway.account(credits=0)
    mgmt = await management_key(gateway, account)
    revoked = await _made(gateway, account, 4, revoked=True)
    live = await _made(gateway, account, 3, revoked=False)
    api = gateway.client

    seen: list[dict] = []
    query = "?limit=2"
    pages = 0
    while True:
        answer = await api.get(f"/api/keys{query}", headers=auth(mgmt))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert set(body) == {"object", "data", "has_more", "next_cursor"}
        assert body["object"] == "list" and len(body["data"]) <= 2
        seen += body["data"]
        pages += 1
        if not body["has_more"]:
            assert body["next_cursor"] is None
            break
        query = f"?limit=2&older={body['next_cursor']}"
    ids = [k["id"] for k in seen]
    assert len(ids) == len(set(ids)) == 2 + 3 + 4 and pages == 5
    assert ids[:3] == live[::-1]  # not revoked first, newest first
    assert ids[-4:] == revoked[::-1]  # then the revoked ones, newest first
    assert [k["status"] for k in seen] == ["active"] * 5 + ["revoked"] * 4

    whole = (await api.get("/api/keys", headers=auth(mgmt))).json()
    assert [k["id"] for k in whole["data"]] == ids and whole["has_more"] is False


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("older=nonsense", "older"),
        ("older=a~nan~key_1", "older"),
        ("older=x~1.0~key_1", "older"),
    ],
)
async def test_bad_paging_parameters_are_400(web, query, param):
    account, _ = await web.account(credits=0)
    mgmt = await management_key(web, account)
    answer = await web.client.get(f"/api/keys?{query}", headers=auth(mgmt))
    assert answer.status_code == 400
    assert error_of(answer)["param"] == param


def _revoked_items(html: str) -> list[str]:
    section = html.split('id="revoked"', 1)[1].split("</details>", 1)[0]
    return re.findall(r'<li class="key-item key-revoked" id="key-([^"]+)"', section)


async def test_the_keys_page_shows_the_latest_revoked_keys_and_links_to_older(web, browsers):
    browser = browsers(web)
    account = await verified(web, browser)
    revoked = await _made(web, account, REVOKED_SHOWN + 3, revoked=True)
    live = await _made(web, account, 2, revoked=False)

    page = await browser.get("/dashboard/keys")
    assert page.status_code == 200
    for key_id in live:
        assert f'id="key-{key_id}"' in page.text.split('id="revoked"', 1)[0]
    assert _revoked_items(page.text) == revoked[::-1][:REVOKED_SHOWN]
    assert f"Revoked keys ({REVOKED_SHOWN} shown)" in page.text
    link = re.search(r'<a href="([^"]+)">Older revoked keys</a>', page.text)
    assert link, "no link to the older revoked keys"

    older = await browser.get(link.group(1).replace("&amp;", "&"))
    assert older.status_code == 200
    assert _revoked_items(older.text) == revoked[::-1][REVOKED_SHOWN:]
    assert "Older revoked keys" not in older.text and "Latest revoked keys" in older.text
    assert 'id="revoked" open' in older.text

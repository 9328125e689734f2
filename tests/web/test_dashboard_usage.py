"""The usage page, /api/usage and /api/usage.csv: rows, filters, totals per day and per key,
the person's time zone, keyset pages, CSV that matches the rows and never carries a formula,
another person's usage never shown, CSRF on the time zone form."""

from __future__ import annotations

import re

import pytest
from tests.web.dashboard import STAT, api_rows, key_for, person, read_csv, seed, ts, usage_row

from reapi_server.web.pages.usage import PAGE_SIZE

NOW = "2027-01-15T08:00:00"  # the web fixtures' clock


async def test_signed_out_the_page_asks_to_sign_in_and_the_api_answers_401(web, browsers):
    browser = browsers(web)
    page = await browser.get("/dashboard/usage")
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=/dashboard/usage"
    for path in ("/api/usage", "/api/usage.csv"):
        answer = await browser.get(path)
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "missing_api_key"


async def test_the_page_lists_rows_with_totals_per_key_and_per_day(web, browsers):
    someone = await person(web, browsers)
    key_a, _ = await key_for(web, someone.account_id, "Production")
    key_b, _ = await key_for(web, someone.account_id, "")
    rows = [
        usage_row(someone.account_id, ts("2027-01-14T10:00:00"), api_key_id=key_a, credit_cost=30),
        usage_row(someone.account_id, ts("2027-01-15T07:00:00"), api_key_id=key_b, credit_cost=12),
        usage_row(
            someone.account_id,
            ts("2027-01-15T07:30:00"),
            api_key_id=key_a,
            status="failed",
            error_code="upstream_error",
            credit_cost=0,
        ),
    ]
    await seed(web, rows)
    page = await someone.browser.get("/dashboard/usage")
    assert page.status_code == 200
    html = page.text
    for row in rows:
        assert row.id in html
    assert "upstream_error" in html
    # Totals: 3 requests, 42 credits, 1 failed; per key: Production 30 (2 requests), the
    # unnamed key 12; "All keys" is their sum.
    stats = dict(re.findall(STAT, html))
    assert stats["Requests"] == "3" and stats["Credits charged"] == "42"
    assert stats["Failed (not charged)"] == "1"
    assert re.search(
        r"Production \(…\w{4}\)</th><td class=\"num\">2</td><td class=\"num\">30<", html
    )
    assert re.search(r"All keys</th><td class=\"num\">3</td><td class=\"num\">42<", html)
    # The chart: an SVG with a title and a description, and the numbers as a table.
    assert 'role="img"' in html and '<title id="usage-chart-title">Credits spent per day' in html
    assert "42 credits over 30 days" in html
    assert '<th scope="row">2027-01-14</th><td class="num">1</td><td class="num">30</td>' in html
    assert "kept for 30 days, then deleted" in html


async def test_filters_narrow_rows_and_totals_alike(web, browsers):
    someone = await person(web, browsers)
    key_a, _ = await key_for(web, someone.account_id, "a")
    key_b, _ = await key_for(web, someone.account_id, "b")
    base = ts("2027-01-10T12:00:00")
    await seed(
        web,
        [
            usage_row(someone.account_id, base, api_key_id=key_a, credit_cost=1),
            usage_row(someone.account_id, base + 1, api_key_id=key_b, credit_cost=2),
            usage_row(
                someone.account_id, base + 2, api_key_id=key_b, model="sim-video", credit_cost=40
            ),
            usage_row(
                someone.account_id,
                base + 3,
                api_key_id=key_a,
                status="failed",
                error_code="x",
                credit_cost=0,
            ),
            usage_row(someone.account_id, ts("2027-01-02T12:00:00"), credit_cost=100),
        ],
    )

    async def costs(**params: str) -> tuple[list[int], int]:
        rows = await api_rows(someone.browser, **params)
        body = (await someone.browser.get("/api/usage", params=params)).json()
        assert body["totals"]["credits"] == sum(r["credit_cost"] for r in rows)
        assert body["totals"]["requests"] == len(rows)
        return [r["credit_cost"] for r in rows], body["totals"]["credits"]

    assert await costs() == ([0, 40, 2, 1, 100], 143)
    assert await costs(key=key_b) == ([40, 2], 42)
    assert await costs(model="sim-video") == ([40], 40)
    assert await costs(status="failed") == ([0], 0)
    assert await costs(key=key_a, status="succeeded") == ([1], 1)
    assert await costs(**{"from": "2027-01-03", "to": "2027-01-15"}) == ([0, 40, 2, 1], 43)
    assert await costs(**{"from": "2027-01-02", "to": "2027-01-02"}) == ([100], 100)

    # The page shows the same narrowing, and keeps the filters in its links.
    page = await someone.browser.get("/dashboard/usage", params={"key": key_b})
    assert page.text.count('<code class="request-id">') == 2
    assert f"/api/usage.csv?from=2026-12-17&amp;to=2027-01-15&amp;key={key_b}" in page.text


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"from": "yesterday"}, "from"),
        ({"to": "2027-13-01"}, "to"),
        ({"from": "2027-01-10", "to": "2027-01-01"}, "from"),
        ({"from": "2025-01-01", "to": "2027-01-01"}, "from"),
        ({"status": "charged"}, "status"),
        ({"time_zone": "Mars/Base"}, "time_zone"),
        ({"limit": "0"}, "limit"),
        ({"limit": "5000"}, "limit"),
    ],
)
async def test_the_api_refuses_a_bad_filter_by_name(web, browsers, params, param):
    someone = await person(web, browsers)
    answer = await someone.browser.get("/api/usage", params=params)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"


async def test_the_page_explains_a_bad_filter_and_shows_the_default_range(web, browsers):
    someone = await person(web, browsers)
    page = await someone.browser.get("/dashboard/usage", params={"from": "nonsense"})
    assert page.status_code == 200
    assert "Enter the start date as YYYY-MM-DD." in page.text
    assert 'value="2026-12-17"' in page.text and 'value="2027-01-15"' in page.text


async def test_days_follow_the_persons_time_zone(web, browsers):
    someone = await person(web, browsers)
    # 03:30 UTC on the 15th is still the 14th in New York (UTC-5 in January).
    late = usage_row(someone.account_id, ts("2027-01-15T03:30:00"), credit_cost=7)
    await seed(web, [late])

    def day_of_row(body: dict) -> dict:
        return {d["date"]: d["credits"] for d in body["totals"]["by_day"] if d["credits"]}

    utc = (await someone.browser.get("/api/usage")).json()
    assert day_of_row(utc) == {"2027-01-15": 7}
    assert utc["data"][0]["time"] == "2027-01-15T03:30:00+00:00"

    answer = await someone.browser.submit(
        "/dashboard/usage",
        "/dashboard/usage/time-zone",
        {"time_zone": "America/New_York", "next": "/dashboard/usage?status=succeeded"},
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == (
        "/dashboard/usage?status=succeeded&done=time_zone_saved#time-zone"
    )
    local = (await someone.browser.get("/api/usage")).json()
    assert local["filters"]["time_zone"] == "America/New_York"
    assert day_of_row(local) == {"2027-01-14": 7}
    assert local["data"][0]["time"] == "2027-01-14T22:30:00-05:00"
    # A range of one local day holds exactly that day's requests.
    only_14th = await api_rows(someone.browser, **{"from": "2027-01-14", "to": "2027-01-14"})
    assert [r["id"] for r in only_14th] == [late.id]
    assert await api_rows(someone.browser, **{"from": "2027-01-15", "to": "2027-01-15"}) == []
    page = await someone.browser.get("/dashboard/usage?done=time_zone_saved")
    assert "Your time zone is saved." in page.text
    assert '<time datetime="2027-01-14T22:30:00-05:00">14 Jan, 22:30:00</time>' in page.text
    assert '<option value="America/New_York" selected>' in page.text
    # The API may ask for another zone without changing the setting.
    tokyo = (await someone.browser.get("/api/usage", params={"time_zone": "Asia/Tokyo"})).json()
    assert tokyo["data"][0]["time"] == "2027-01-15T12:30:00+09:00"


async def test_a_zone_not_on_the_list_is_refused(web, browsers):
    someone = await person(web, browsers)
    answer = await someone.browser.submit(
        "/dashboard/usage", "/dashboard/usage/time-zone", {"time_zone": "../../etc/passwd"}
    )
    assert answer.status_code == 400
    assert "Choose a time zone from the list." in answer.text
    assert (await someone.browser.get("/api/usage")).json()["filters"]["time_zone"] == "UTC"


async def test_the_time_zone_form_needs_its_csrf_token(web, browsers):
    someone = await person(web, browsers)
    refused = await someone.browser.client.post(
        "/dashboard/usage/time-zone", data={"time_zone": "Europe/Paris"}
    )
    assert refused.status_code == 403
    forged = await someone.browser.client.post(
        "/dashboard/usage/time-zone", data={"time_zone": "Europe/Paris", "csrf_token": "0" * 64}
    )
    assert forged.status_code == 403
    assert (await someone.browser.get("/api/usage")).json()["filters"]["time_zone"] == "UTC"


async def test_pages_newest_first_there_and_back(web, browsers):
    someone = await person(web, browsers)
    base = ts("2027-01-12T00:00:00")
    size = PAGE_SIZE
    rows = [
        usage_row(someone.account_id, base + (i // 4) * 60, credit_cost=i)
        for i in range(2 * size + 20)
    ]
    await seed(web, rows)
    expected = [r.id for r in sorted(rows, key=lambda r: (r.created_at, r.id), reverse=True)]

    def ids(html: str) -> list[str]:
        return re.findall(r'<code class="request-id">([^<]+)</code>', html)

    def link(html: str, rel: str) -> str | None:
        found = re.search(rf'href="([^"]+)" rel="{rel}"', html)
        return found.group(1).replace("&amp;", "&") if found else None

    first = (await someone.browser.get("/dashboard/usage")).text
    assert ids(first) == expected[:size] and link(first, "prev") is None
    second = (await someone.browser.get(link(first, "next"))).text
    assert ids(second) == expected[size : 2 * size]
    third = (await someone.browser.get(link(second, "next"))).text
    assert ids(third) == expected[2 * size :] and link(third, "next") is None
    back = (await someone.browser.get(link(third, "prev"))).text
    assert ids(back) == expected[size : 2 * size]
    # A new request meanwhile does not shift the pages already being read.
    await seed(web, [usage_row(someone.account_id, ts("2027-01-15T07:59:00"))])
    again = (await someone.browser.get(link(first, "next"))).text
    assert ids(again) == expected[size : 2 * size]
    # The API pages the same way.
    assert [r["id"] for r in await api_rows(someone.browser, limit="7")][1:] == expected


async def test_the_csv_holds_the_rows_and_never_a_formula(web, browsers):
    someone = await person(web, browsers)
    hostile, _ = await key_for(web, someone.account_id, '=HYPERLINK("http://evil.test","x")')
    plain, _ = await key_for(web, someone.account_id, "@SUM(A1)")
    base = ts("2027-01-13T09:00:00")
    await seed(
        web,
        [
            usage_row(someone.account_id, base + i, api_key_id=[hostile, plain][i % 2])
            for i in range(2500)  # more than one batch of the export
        ],
    )
    for params in ({}, {"key": hostile}, {"from": "2027-01-13", "to": "2027-01-13"}):
        exported = await someone.browser.get("/api/usage.csv", params=params)
        assert exported.status_code == 200
        assert exported.headers["content-type"] == "text/csv; charset=utf-8"
        assert exported.headers["content-disposition"].startswith('attachment; filename="usage-')
        lines = read_csv(exported.text)
        shown = await api_rows(someone.browser, **params)
        assert [line["request_id"] for line in lines] == [r["id"] for r in shown]
        assert [int(line["credit_cost"]) for line in lines] == [r["credit_cost"] for r in shown]
        assert [line["time"] for line in lines] == [r["time"] for r in shown]
    everything = read_csv((await someone.browser.get("/api/usage.csv")).text)
    names = {line["key_name"] for line in everything}
    assert names == {'\'=HYPERLINK("http://evil.test","x")', "'@SUM(A1)"}
    assert not any(
        value.startswith(("=", "+", "-", "@")) for line in everything for value in line.values()
    )
    assert exported.text.endswith("\r\n")


async def test_another_persons_usage_is_never_shown(web, browsers):
    alice = await person(web, browsers)
    bob = await person(web, browsers)
    alices_key, _ = await key_for(web, alice.account_id, "alice-key")
    secret = usage_row(alice.account_id, ts("2027-01-14T10:00:00"), api_key_id=alices_key)
    await seed(web, [secret])
    for path, params in [
        ("/dashboard/usage", {}),
        ("/dashboard/usage", {"key": alices_key}),
        ("/dashboard", {}),
        ("/api/usage", {}),
        ("/api/usage", {"key": alices_key}),
        ("/api/usage.csv", {"key": alices_key}),
    ]:
        answer = await bob.browser.get(path, params=params)
        assert answer.status_code in (200, 404), (path, answer.status_code)
        assert secret.id not in answer.text and "alice-key" not in answer.text, path
    assert secret.id in (await alice.browser.get("/dashboard/usage")).text


async def test_a_management_key_reads_usage_in_the_owners_time_zone(web, browsers):
    from sqlalchemy import update
    from tests.server.helpers import auth

    from reapi_server.api_keys.service import keys_service
    from reapi_server.models import Account

    someone = await person(web, browsers)
    key_id, model_key = await key_for(web, someone.account_id, "=cmd|' /C calc'!A0")
    late = usage_row(someone.account_id, ts("2027-01-15T03:30:00"), api_key_id=key_id)
    await seed(web, [late])
    await someone.browser.submit(
        "/dashboard/usage", "/dashboard/usage/time-zone", {"time_zone": "America/New_York"}
    )
    created = await keys_service(web.rt).create(someone.account_id, name="ops", kind="management")
    mgmt = created.plaintext
    api = web.client  # no cookie: the key alone

    body = (await api.get("/api/usage", headers=auth(mgmt))).json()
    assert body["filters"]["time_zone"] == "America/New_York"
    assert [r["id"] for r in body["data"]] == [late.id]
    assert body["data"][0]["time"] == "2027-01-14T22:30:00-05:00"
    assert body["totals"]["by_key"] == [{"key_id": key_id, "requests": 1, "credits": 10}]
    exported = await api.get("/api/usage.csv", headers=auth(mgmt), params={"key": key_id})
    assert exported.status_code == 200
    [row] = read_csv(exported.text)
    assert row["request_id"] == late.id and row["key_name"].startswith("'=")
    # The page's filter errors, as 400 naming the parameter.
    bad = await api.get("/api/usage", headers=auth(mgmt), params={"from": "yesterday"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "from"

    # A model key calls models, never reads usage.
    for path in ("/api/usage", "/api/usage.csv"):
        refused = await api.get(path, headers=auth(model_key))
        assert refused.status_code == 401, path
        assert refused.json()["error"]["code"] == "invalid_api_key"

    async with web.rt.db.write() as session:
        await session.execute(
            update(Account).where(Account.id == someone.account_id).values(disabled_at=1.0)
        )
    for path in ("/api/usage", "/api/usage.csv"):
        disabled = await someone.browser.get(path)
        assert disabled.status_code == 403, path
        assert disabled.json()["error"]["code"] == "account_disabled"


async def test_requests_naming_no_model_here_are_labelled_so_a_person_understands(web, browsers):
    """A request refused for a model the gateway does not offer has the model `unknown` in its
    row (and in the API and the CSV); the page says what that means, and filters on it."""
    someone = await person(web, browsers)
    refused = usage_row(
        someone.account_id,
        ts("2027-01-10T12:00:00"),
        model="unknown",
        status="failed",
        error_code="model_not_found",
        credit_cost=0,
    )
    await seed(web, [refused, usage_row(someone.account_id, ts("2027-01-10T13:00:00"))])
    page = (await someone.browser.get("/dashboard/usage")).text
    assert '<option value="unknown">Model not offered here (refused)</option>' in page
    assert ">unknown<" not in page
    filtered = (await someone.browser.get("/dashboard/usage", params={"model": "unknown"})).text
    assert filtered.count('<code class="request-id">') == 1
    assert '<td data-label="Model" class="nowrap">Model not offered here (refused)</td>' in filtered
    assert [r["model"] for r in await api_rows(someone.browser, model="unknown")] == ["unknown"]

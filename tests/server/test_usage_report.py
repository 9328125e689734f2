"""The dashboard's usage queries on SQLite and PostgreSQL: rows grouped by the person's local
day (daylight saving included), filters, keyset pages that visit every row once, totals that
add up, and never a row of another account."""

from __future__ import annotations

from datetime import UTC, date, datetime

from tests.web.dashboard import seed, usage_row

from reapi_server.models import UsageRecord
from reapi_server.usage import report
from reapi_server.usage.calendar import DayRange, zone_named
from reapi_server.usage.filters import Cursor, UsageFilter


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def row(account: str, at: float, **fields: object) -> UsageRecord:
    return usage_row(account, at, **{"api_key_id": "key_a", **fields})


async def test_days_are_the_persons_days_across_daylight_saving(db_gateway):
    account, _ = await db_gateway.account()
    other, _ = await db_gateway.account()
    await seed(
        db_gateway,
        [
            row(account, ts("2027-03-14T04:59:59"), credit_cost=1),  # 13th, 23:59:59 EST
            row(account, ts("2027-03-14T05:00:00"), credit_cost=2),  # 14th, 00:00 EST
            row(account, ts("2027-03-15T03:59:59"), credit_cost=4),  # 14th, 23:59:59 EDT
            row(account, ts("2027-03-15T04:00:00"), credit_cost=8),  # 15th, 00:00 EDT
            row(other, ts("2027-03-14T12:00:00"), credit_cost=1000),
        ],
    )
    days = DayRange(date(2027, 3, 13), date(2027, 3, 15), zone_named("America/New_York"))
    async with db_gateway.rt.db.read() as session:
        totals = await report.totals(session, UsageFilter(account, days))
    assert [(d.day, d.credits, d.requests) for d in totals.by_day] == [
        (date(2027, 3, 13), 1, 1),
        (date(2027, 3, 14), 6, 2),
        (date(2027, 3, 15), 8, 1),
    ]
    assert (totals.credits, totals.requests) == (15, 4)

    # One day only: its bounds are its local midnights.
    only = DayRange(date(2027, 3, 14), date(2027, 3, 14), zone_named("America/New_York"))
    async with db_gateway.rt.db.read() as session:
        page = await report.rows_page(session, UsageFilter(account, only), limit=10)
    assert sorted(r.credit_cost for r in page.rows) == [2, 4]


async def test_filters_and_per_key_totals_add_up(db_gateway):
    account, _ = await db_gateway.account()
    base = ts("2027-01-10T12:00:00")
    await seed(
        db_gateway,
        [
            row(account, base, api_key_id="key_a", credit_cost=5),
            row(account, base + 1, api_key_id="key_b", credit_cost=7),
            row(account, base + 2, api_key_id="key_b", model="sim-video", credit_cost=40),
            row(
                account,
                base + 3,
                api_key_id="key_a",
                status="failed",
                error_code="upstream_error",
                credit_cost=0,
            ),
            row(account, base + 4, api_key_id=None, credit_cost=3),
            row(account, base + 5, api_key_id="key_b", status="pending", credit_cost=0),
        ],
    )
    days = DayRange(date(2027, 1, 1), date(2027, 1, 30), zone_named("UTC"))
    everything = UsageFilter(account, days)
    async with db_gateway.rt.db.read() as session:
        totals = await report.totals(session, everything)
        by_key = {k.key_id: (k.requests, k.credits) for k in totals.by_key}
        assert by_key == {"key_a": (2, 5), "key_b": (3, 47), None: (1, 3)}
        assert sum(k.credits for k in totals.by_key) == totals.credits == 55
        assert sum(d.credits for d in totals.by_day) == totals.credits
        assert (totals.requests, totals.failed) == (6, 1)

        async def costs(**only: object) -> list[int]:
            page = await report.rows_page(
                session,
                UsageFilter(account, days, **only),  # type: ignore[arg-type]
                limit=50,
            )
            narrowed = await report.totals(
                session,
                UsageFilter(account, days, **only),  # type: ignore[arg-type]
            )
            assert narrowed.credits == sum(r.credit_cost for r in page.rows)
            assert narrowed.requests == len(page.rows)
            return [r.credit_cost for r in page.rows]

        assert await costs(key_id="key_b") == [0, 40, 7]
        assert await costs(model="sim-video") == [40]
        assert await costs(status="failed") == [0]
        assert await costs(status="pending", key_id="key_b") == [0]
        assert await costs(key_id="key_other") == []


async def test_keyset_pages_visit_every_row_once_newest_first(db_gateway):
    account, _ = await db_gateway.account()
    base = ts("2027-01-10T12:00:00")
    # Ties on the time (many requests in one instant) are ordered by request id.
    rows = [row(account, base + (i // 3), credit_cost=i) for i in range(23)]
    await seed(db_gateway, rows)
    days = DayRange(date(2027, 1, 1), date(2027, 1, 30), zone_named("UTC"))
    expected = [r.id for r in sorted(rows, key=lambda r: (r.created_at, r.id), reverse=True)]
    seen: list[str] = []
    cursor: Cursor | None = None
    pages = []
    async with db_gateway.rt.db.read() as session:
        while True:
            page = await report.rows_page(
                session, UsageFilter(account, days), limit=5, older_than=cursor
            )
            pages.append(page)
            seen += [r.id for r in page.rows]
            if not page.has_older:
                break
            cursor = page.older_cursor
        assert seen == expected
        assert not pages[0].has_newer and all(p.has_newer for p in pages[1:])
        # Back again: the page before the last one, from the last one's first row.
        back = await report.rows_page(
            session, UsageFilter(account, days), limit=5, newer_than=pages[-1].newer_cursor
        )
    assert [r.id for r in back.rows] == [r.id for r in pages[-2].rows]
    assert back.has_older and back.has_newer


async def test_cursors_survive_encoding_and_refuse_garbage():
    cursor = Cursor(1_800_000_000.123456, "req_abc")
    assert Cursor.decode(cursor.encode()) == cursor
    for garbage in ("", "x", "nan~req", "inf~req", "1.0~", "1~" + "é", "1~" + "a" * 200):
        assert Cursor.decode(garbage) is None

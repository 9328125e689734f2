"""Usage that reconciles, on SQLite and PostgreSQL, after real requests through /v1: images that
succeed, fail (released) or are refused, videos that succeed, fail (refunded), are cancelled or
still run (held), one that settles the next day. The auditor's side is the ledger, read here with
its own SQL:

- the credits of the usage rows equal the settled ledger movements of the same requests (the
  holds opened in the period and closed since), in total, per local day and per key;
- the per-key totals and the per-day totals add up to the account total;
- the credit held by running requests is the balance's `reserved`, and nothing of it is counted
  as spent.
"""

from __future__ import annotations

import asyncio
import re
from collections import defaultdict
from datetime import date

from sqlalchemy import select
from tests.server.helpers import auth, ledger_matches
from tests.web.dashboard import STAT, api_rows, key_for, person, ts

from reapi_server.jobs.poller import JobPoller
from reapi_server.models import CreditHold, LedgerEntry, UsageRecord
from reapi_server.usage.calendar import DayRange, zone_named

IMAGE = 40  # gpt-image-2 in the test catalog, per image
VIDEO = 40  # sim-video: 10 credits a second, 4 seconds


async def drive(gateway, rounds: int = 4) -> None:
    poller = JobPoller(gateway.rt)
    for _ in range(rounds):
        await poller.run_once()
        await asyncio.sleep(0.02)


async def image(gateway, key: str, **fields: object):
    body = {"model": "gpt-image-2", "prompt": "a fox", "response_format": "url", **fields}
    return await gateway.client.post("/v1/images/generations", json=body, headers=auth(key))


async def video(gateway, key: str):
    body = {"model": "sim-video", "prompt": "a wave", "size": "1280x720"}
    answer = await gateway.client.post("/v1/videos", json=body, headers=auth(key))
    assert answer.status_code == 200, answer.text
    return answer.json()["id"]


async def ledger_side(gateway, account_id: str, zone: str):
    """From the ledger alone: (credits settled per local day of the request, per key, the
    credit still held), counting each hold on the day it was opened."""
    async with gateway.rt.db.read() as session:
        holds = (
            await session.execute(
                select(
                    CreditHold.id,
                    CreditHold.status,
                    CreditHold.amount,
                    CreditHold.created_at,
                    UsageRecord.api_key_id,
                )
                .join(UsageRecord, UsageRecord.id == CreditHold.request_id)
                .where(CreditHold.account_id == account_id)
            )
        ).all()
        entries = (
            await session.execute(
                select(LedgerEntry.hold_id, LedgerEntry.amount).where(
                    LedgerEntry.account_id == account_id, LedgerEntry.hold_id.is_not(None)
                )
            )
        ).all()
    moved: dict[str, int] = defaultdict(int)
    for hold_id, amount in entries:
        moved[hold_id] += amount
    days = DayRange(date(2027, 1, 1), date(2027, 1, 31), zone_named(zone))
    per_day: dict[str, int] = defaultdict(int)
    per_key: dict[str | None, int] = defaultdict(int)
    held = 0
    for hold_id, status, amount, created_at, key_id in holds:
        if status == "held":
            held += amount
            assert moved[hold_id] == -amount  # reserved, nothing settled yet
            continue
        spent = -moved[hold_id]
        per_day[days.day_of(created_at).isoformat()] += spent
        per_key[key_id] += spent
    return dict(per_day), dict(per_key), held


async def test_usage_totals_equal_the_settled_ledger(db_web, browsers, clock):
    gateway = db_web
    clock.now = ts("2027-01-15T04:00:00")  # 23:00 on the 14th in New York
    someone = await person(gateway, browsers, credits=1000)
    await someone.browser.submit(
        "/dashboard/usage", "/dashboard/usage/time-zone", {"time_zone": "America/New_York"}
    )
    key_a, a = await key_for(gateway, someone.account_id, "a")
    key_b, b = await key_for(gateway, someone.account_id, "b")

    assert (await image(gateway, a)).status_code == 200  # 40
    assert (await image(gateway, a, n=2)).status_code == 200  # 80
    gateway.upstream.faults = {"primary.test": "500", "backup.test": "500"}
    assert (await image(gateway, b)).status_code >= 500  # released: 0
    gateway.upstream.faults = {}
    assert (await image(gateway, a, size="7x7")).status_code == 400  # refused, no hold
    done = await video(gateway, b)  # 40, settled below
    gateway.upstream.video_outcome = "failed"
    refunded = await video(gateway, b)  # fails everywhere: refunded
    await drive(gateway, 8)
    gateway.upstream.video_outcome = "completed"
    cancelled = await video(gateway, a)
    assert (
        await gateway.client.delete(f"/v1/videos/{cancelled}", headers=auth(a))
    ).status_code == 200

    # A minute before local midnight, a video starts; it settles after midnight.
    clock.now = ts("2027-01-15T04:59:00")
    late = await video(gateway, a)
    clock.now = ts("2027-01-15T05:01:00")
    await drive(gateway)
    running = await video(gateway, b)  # still held at the end
    # A request the balance cannot pay is refused (and shows as such).
    assert (await image(gateway, a, n=10)).status_code in (200, 402)
    while (await image(gateway, a, n=10)).status_code == 200:
        pass

    for job, status in ((done, "completed"), (refunded, "failed"), (late, "completed")):
        got = (await gateway.client.get(f"/v1/videos/{job}", headers=auth(a))).json()
        assert got["status"] == status, (job, got)
    assert (await gateway.client.get(f"/v1/videos/{running}", headers=auth(b))).json()[
        "status"
    ] in ("queued", "in_progress")

    # The page's side: rows, totals, per key, per day (New York days).
    rows = await api_rows(someone.browser)
    body = (await someone.browser.get("/api/usage")).json()
    totals = body["totals"]
    assert sum(r["credit_cost"] for r in rows) == totals["credits"]
    assert len(rows) == totals["requests"]
    assert sum(k["credits"] for k in totals["by_key"]) == totals["credits"]
    assert sum(k["requests"] for k in totals["by_key"]) == totals["requests"]
    assert sum(d["credits"] for d in totals["by_day"]) == totals["credits"]
    assert {r["status"] for r in rows} == {"succeeded", "failed", "pending"}
    assert all(r["credit_cost"] == 0 for r in rows if r["status"] != "succeeded")
    codes = {r["error_code"] for r in rows if r["status"] == "failed"}
    assert {"insufficient_credits", "cancelled"} <= codes

    # The ledger's side.
    per_day, per_key, held = await ledger_side(gateway, someone.account_id, "America/New_York")
    assert sum(per_day.values()) == totals["credits"]
    assert per_day == {d["date"]: d["credits"] for d in totals["by_day"] if d["credits"]}
    assert per_key == {k["key_id"]: k["credits"] for k in totals["by_key"] if k["credits"]}
    assert set(per_key) == {key_a, key_b}
    assert per_day["2027-01-14"] >= IMAGE * 3 + VIDEO + VIDEO  # the late video counts on the 14th
    balance, reserved = await ledger_matches(gateway.rt, someone.account_id)
    assert reserved == held == VIDEO
    assert balance == 1000 - totals["credits"] - held

    # The page shows the same numbers.
    html = (await someone.browser.get("/dashboard/usage")).text
    assert dict(re.findall(STAT, html))["Credits charged"] == f"{totals['credits']:,}"
    overview = (await someone.browser.get("/dashboard")).text
    shown = dict(re.findall(STAT, overview))
    assert (shown["Held"], shown["Balance"]) == (f"{held:,}", f"{balance:,}")

    # The keys page's counter (this month's spend, what a spend limit is checked against) is
    # the key's usage plus what its running requests hold: the two pages never disagree.
    keys = {k["id"]: k for k in (await someone.browser.get("/api/keys")).json()["data"]}
    assert keys[key_a]["spend"]["current"] == per_key[key_a]
    assert keys[key_b]["spend"]["current"] == per_key[key_b] + held

"""Reading usage for the dashboard, the management API and exports: a page of rows (keyset, newest
first) and the totals of every row the filter matches, per local day and per key.

The totals come from one GROUP BY (day, key): the account total, the per-key totals and the
per-day totals are sums of the same groups, so they cannot disagree with each other. They read
`usage_rollups` (the rows counted per 15-minute slot, key, model and status, kept by triggers in
the same statement as each row), which holds the same numbers as the rows in far fewer groups:
every local midnight falls on a slot's edge. Rows still pending are not in it (migration 0023:
the hold's transaction writes one b-tree less): they are the requests of the holds still held,
a few rows however large the tables, counted from the rows in the same statement. A range
whose edges do not fall on slots (a zone with an offset that is not whole quarter hours) is
counted from the rows themselves. Every statement is bound to one account (the requests in
flight are read for all, then narrowed to it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    SQLColumnExpression,
    and_,
    case,
    func,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from ..db import Database
from ..models import ROLLUP_SLOT_SECONDS, CreditHold, UsageRecord, UsageRollup
from .calendar import DayRange
from .filters import Cursor, UsageFilter

__all__ = [
    "DayTotal",
    "KeyTotal",
    "UsagePage",
    "UsageTotals",
    "batches",
    "rows_page",
    "totals",
    "totals_from_rows",
]

_DAY = 86_400


@dataclass(frozen=True, slots=True)
class UsagePage:
    #: Newest first.
    rows: list[UsageRecord]
    has_older: bool
    has_newer: bool

    @property
    def older_cursor(self) -> Cursor | None:
        return _cursor(self.rows[-1]) if self.rows and self.has_older else None

    @property
    def newer_cursor(self) -> Cursor | None:
        return _cursor(self.rows[0]) if self.rows and self.has_newer else None


@dataclass(frozen=True, slots=True)
class DayTotal:
    day: date
    requests: int
    credits: int


@dataclass(frozen=True, slots=True)
class KeyTotal:
    #: None: requests made without a key (none are today; older rows may be).
    key_id: str | None
    requests: int
    credits: int


@dataclass(frozen=True, slots=True)
class UsageTotals:
    requests: int
    credits: int
    failed: int
    #: Every day of the range, oldest first (days without usage at zero).
    by_day: list[DayTotal]
    #: Keys with usage in the range, most credits first.
    by_key: list[KeyTotal]


def _cursor(row: UsageRecord) -> Cursor:
    return Cursor(row.created_at, row.id)


class _whole_days(FunctionElement[int]):
    """floor(x) as an integer, for x ≥ 0: SQLite truncates on CAST (and may lack floor()),
    PostgreSQL rounds on CAST, so it floors first."""

    type = Integer()
    inherit_cache = True


@compiles(_whole_days)
def _whole_days_sqlite(element: _whole_days, compiler: Any, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS INTEGER)"


@compiles(_whole_days, "postgresql")
def _whole_days_postgres(element: _whole_days, compiler: Any, **kw: Any) -> str:
    return f"CAST(floor({compiler.process(element.clauses, **kw)}) AS INTEGER)"


def _local_day(days: DayRange, instant: SQLColumnExpression[Any]) -> ColumnElement[int]:
    """The local day of `instant` (UTC seconds) as a day number: whole days of (instant + the
    offset in force then)."""
    changes = days.offset_changes()
    offset: ColumnElement[Any] | int = days.first_offset
    if changes:
        offset = case(
            # (offset changes fall on whole seconds: given as integers, they compare with an
            # integer column as well as a float one)
            *((instant >= int(at), value) for at, value in reversed(changes)),
            else_=days.first_offset,
        )
    return _whole_days((instant + offset) / float(_DAY))


def _on_slot_edges(days: DayRange) -> bool:
    """Whether every edge of the range's days (and every offset change) is a slot's edge."""
    edges = [days.start, days.end, *(at for at, _ in days.offset_changes())]
    return all(edge % ROLLUP_SLOT_SECONDS == 0 for edge in edges)


def _matching(query: Select[Any], f: UsageFilter) -> Select[Any]:
    query = query.where(
        UsageRecord.account_id == f.account_id,
        UsageRecord.created_at >= f.days.start,
        UsageRecord.created_at < f.days.end,
    )
    if f.key_id is not None:
        query = query.where(UsageRecord.api_key_id == f.key_id)
    if f.model is not None:
        query = query.where(UsageRecord.model == f.model)
    if f.status is not None:
        query = query.where(UsageRecord.status == f.status)
    return query


def _older(cursor: Cursor) -> ColumnElement[bool]:
    # The first condition alone bounds the index range; the second breaks ties on the time.
    return and_(
        UsageRecord.created_at <= cursor.created_at,
        or_(UsageRecord.created_at < cursor.created_at, UsageRecord.id < cursor.id),
    )


def _newer(cursor: Cursor) -> ColumnElement[bool]:
    return and_(
        UsageRecord.created_at >= cursor.created_at,
        or_(UsageRecord.created_at > cursor.created_at, UsageRecord.id > cursor.id),
    )


async def rows_page(
    session: AsyncSession,
    f: UsageFilter,
    *,
    limit: int,
    older_than: Cursor | None = None,
    newer_than: Cursor | None = None,
) -> UsagePage:
    """Up to `limit` rows, newest first: the first page, or the page after `older_than` (the
    last row of the page before), or the page before `newer_than` (the first row of the page
    after)."""
    query = _matching(select(UsageRecord), f)
    if newer_than is not None:
        query = query.where(_newer(newer_than)).order_by(
            UsageRecord.created_at.asc(), UsageRecord.id.asc()
        )
    else:
        if older_than is not None:
            query = query.where(_older(older_than))
        query = query.order_by(UsageRecord.created_at.desc(), UsageRecord.id.desc())
    found = list((await session.execute(query.limit(limit + 1))).scalars())
    more = len(found) > limit
    found = found[:limit]
    if newer_than is not None:
        found.reverse()
        return UsagePage(found, has_older=True, has_newer=more)
    return UsagePage(found, has_older=more, has_newer=older_than is not None)


async def totals(session: AsyncSession, f: UsageFilter) -> UsageTotals:
    """The totals of every row `f` matches: from the rollup when the range's days fall on its
    slots (every zone in use today), else from the rows."""
    if not _on_slot_edges(f.days):
        return await totals_from_rows(session, f)
    slot_start = UsageRollup.slot * ROLLUP_SLOT_SECONDS
    day = _local_day(f.days, slot_start).label("day")
    query = select(
        day,
        UsageRollup.api_key_id,
        func.sum(UsageRollup.requests),
        func.sum(UsageRollup.credits),
        func.sum(case((UsageRollup.status == "failed", UsageRollup.requests), else_=0)),
    ).where(
        UsageRollup.account_id == f.account_id,
        UsageRollup.slot >= int(f.days.start // ROLLUP_SLOT_SECONDS),
        UsageRollup.slot < int(f.days.end // ROLLUP_SLOT_SECONDS),
    )
    if f.key_id is not None:
        query = query.where(UsageRollup.api_key_id == f.key_id)
    if f.model is not None:
        query = query.where(UsageRollup.model == f.model)
    if f.status is not None:
        query = query.where(UsageRollup.status == f.status)
    grouped = query.group_by(day, UsageRollup.api_key_id)
    if f.status in (None, "pending"):  # and the rows in flight: one statement, one snapshot
        groups: Sequence[Any] = (await session.execute(union_all(grouped, _pending(f)))).all()
    else:
        groups = (await session.execute(grouped)).all()
    return _summed(f.days, [(d, k or None, n, c, x) for d, k, n, c, x in groups])


def _pending(f: UsageFilter) -> Select[Any]:
    """The (day, key) groups of the pending rows `f` matches, which the roll-up leaves out. A
    pending row is the request of a hold still held: the two are written in one transaction
    and closed in one (the settlement, a release, the sweeper's, a video job's end). The held
    holds are read through `ix_credit_holds_held_expires` (the requests in flight, of every
    account) and their rows by id, set apart (MATERIALIZED) before the account and range are
    compared: given those, SQLite's planner would walk the account's index of every row."""
    held = select(CreditHold.request_id).where(CreditHold.status == "held")
    rows = (
        select(
            UsageRecord.account_id,
            UsageRecord.created_at,
            UsageRecord.api_key_id,
            UsageRecord.model,
            UsageRecord.credit_cost,
        )
        .where(UsageRecord.id.in_(held), UsageRecord.status == "pending")
        .cte("in_flight")
        .prefix_with("MATERIALIZED")
    )
    day = _local_day(f.days, rows.c.created_at)
    query = select(
        day,
        rows.c.api_key_id,
        func.count(),
        func.coalesce(func.sum(rows.c.credit_cost), 0),
        literal(0, Integer),
    ).where(
        rows.c.account_id == f.account_id,
        rows.c.created_at >= f.days.start,
        rows.c.created_at < f.days.end,
    )
    if f.key_id is not None:
        query = query.where(rows.c.api_key_id == f.key_id)
    if f.model is not None:
        query = query.where(rows.c.model == f.model)
    return query.group_by(day, rows.c.api_key_id)


async def totals_from_rows(session: AsyncSession, f: UsageFilter) -> UsageTotals:
    """The same totals, counted from the usage rows themselves."""
    day = _local_day(f.days, UsageRecord.created_at).label("day")
    query = _matching(
        select(
            day,
            UsageRecord.api_key_id,
            func.count(),
            func.coalesce(func.sum(UsageRecord.credit_cost), 0),
            func.coalesce(func.sum(case((UsageRecord.status == "failed", 1), else_=0)), 0),
        ),
        f,
    ).group_by(day, UsageRecord.api_key_id)
    return _summed(f.days, list((await session.execute(query)).all()))


def _summed(days: DayRange, groups: Sequence[Any]) -> UsageTotals:
    """Totals from (day number, key, requests, credits, failed) groups."""
    per_day: dict[date, list[int]] = {d: [0, 0] for d in days.days()}
    per_key: dict[str | None, list[int]] = {}
    requests = credits = failed = 0
    for day_number, key_id, count, cost, failures in groups:
        count, cost = int(count), int(cost)
        requests += count
        credits += cost
        failed += int(failures)
        bucket = per_day.setdefault(DayRange.date_of_day_number(int(day_number)), [0, 0])
        bucket[0] += count
        bucket[1] += cost
        key = per_key.setdefault(key_id, [0, 0])
        key[0] += count
        key[1] += cost
    return UsageTotals(
        requests=requests,
        credits=credits,
        failed=failed,
        by_day=[DayTotal(d, n, c) for d, (n, c) in sorted(per_day.items())],
        by_key=sorted(
            (KeyTotal(k, n, c) for k, (n, c) in per_key.items()),
            key=lambda t: (-t.credits, -t.requests, t.key_id or ""),
        ),
    )


async def batches(
    db: Database, f: UsageFilter, *, size: int = 1000
) -> AsyncIterator[Sequence[UsageRecord]]:
    """Every row the filter matches, newest first, `size` at a time, each batch read in a
    transaction of its own (an export of a month never holds one open)."""
    cursor: Cursor | None = None
    while True:
        async with db.read() as session:
            page = await rows_page(session, f, limit=size, older_than=cursor)
        if page.rows:
            yield page.rows
        if not page.has_older:
            return
        cursor = page.older_cursor

"""What the dashboard, the management API and the CLI read about an account's usage: one page of
rows with the totals of everything the filter matches, read from one snapshot, so the totals
shown beside the rows count the same rows."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from ..accounts import repository as accounts
from ..api_keys import repository as keys
from ..db import Database
from ..models import UsageRecord
from . import report
from .calendar import DayRange
from .filters import Cursor, UsageFilter
from .report import UsagePage, UsageTotals

__all__ = [
    "AccountOverview",
    "KeyLabel",
    "UsageReport",
    "export_rows",
    "key_labels",
    "overview",
    "owner_time_zone",
    "usage_report",
]


@dataclass(frozen=True, slots=True)
class KeyLabel:
    id: str
    name: str
    last4: str
    revoked: bool

    @property
    def label(self) -> str:
        shown = f"{self.name} (…{self.last4})" if self.name else f"…{self.last4}"
        return f"{shown}, revoked" if self.revoked else shown


@dataclass(frozen=True, slots=True)
class UsageReport:
    page: UsagePage
    totals: UsageTotals
    #: Every key of the account, oldest first (revoked ones too: their usage stays).
    keys: list[KeyLabel]


@dataclass(frozen=True, slots=True)
class AccountOverview:
    balance: int
    #: Credits held by requests still running.
    reserved: int
    totals: UsageTotals
    recent: list[UsageRecord]
    keys: list[KeyLabel]
    #: An operator disabled the account: its keys are refused.
    disabled: bool = False


async def _snapshot(db: Database, session: AsyncSession) -> None:
    """PostgreSQL reads each statement at its own moment unless told otherwise; SQLite's read
    transaction is one snapshot already."""
    if db.is_postgres:
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


async def _keys(session: AsyncSession, account_id: str) -> list[KeyLabel]:
    return [
        KeyLabel(k.id, k.name, k.last4, k.revoked_at is not None)
        for k in await keys.list_for_account(session, account_id)
    ]


async def usage_report(
    db: Database,
    f: UsageFilter,
    *,
    limit: int,
    older_than: Cursor | None = None,
    newer_than: Cursor | None = None,
) -> UsageReport:
    async with db.read() as session:
        await _snapshot(db, session)
        page = await report.rows_page(
            session, f, limit=limit, older_than=older_than, newer_than=newer_than
        )
        totals = await report.totals(session, f)
        return UsageReport(page, totals, await _keys(session, f.account_id))


async def overview(
    db: Database, account_id: str, days: DayRange, *, recent: int
) -> AccountOverview:
    """The dashboard's first page: balance, held credit, spend per day, the latest requests."""
    f = UsageFilter(account_id, days)
    async with db.read() as session:
        await _snapshot(db, session)
        # The account's row: its balance and held credit (what `credits.balance_of` reads)
        # and whether it is disabled, in one query.
        account = await accounts.get(session, account_id)
        totals = await report.totals(session, f)
        latest = await report.rows_page(session, f, limit=recent)
        return AccountOverview(
            account.balance if account is not None else 0,
            account.reserved if account is not None else 0,
            totals,
            latest.rows,
            await _keys(session, account_id),
            disabled=account is not None and account.disabled_at is not None,
        )


async def owner_time_zone(db: Database, account_id: str) -> str:
    """The time zone setting of the account's owner ("UTC" without one): the days of a
    management key's usage queries, which no signed-in person's setting decides."""
    async with db.read() as session:
        owners = await accounts.owners(session, account_id)
    return owners[0].time_zone if owners else "UTC"


async def key_labels(db: Database, account_id: str) -> list[KeyLabel]:
    async with db.read() as session:
        return await _keys(session, account_id)


async def export_rows(db: Database, f: UsageFilter) -> AsyncIterator[Sequence[UsageRecord]]:
    """Every row the filter matches, newest first, a batch at a time (for CSV)."""
    async for batch in report.batches(db, f):
        yield batch

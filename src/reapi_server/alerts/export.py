"""A person's alert settings, for their data export: the thresholds of each account they own
and the share of each key's spend limit, with whether each is waiting for a crossing and when
it last mailed. `rows_about` has the shape of an export section's reader (as
`audit.export.rows_about`)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from . import repository

__all__ = ["rows_about"]


def _iso(timestamp: float | None) -> str | None:
    return (
        None if timestamp is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))
    )


async def rows_about(
    session: AsyncSession, user_id: str, account_ids: Sequence[str]
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for account_id in account_ids:
        for alert in await repository.balance_alerts_of(session, account_id):
            rows.append(
                {
                    "kind": "balance_below",
                    "account_id": account_id,
                    "threshold": alert.threshold,
                    "armed": alert.armed,
                    "set_at": _iso(alert.created_at),
                    "last_mailed_at": _iso(alert.fired_at),
                }
            )
        for key in await repository.key_alerts_of(session, account_id):
            rows.append(
                {
                    "kind": "key_spend",
                    "account_id": account_id,
                    "key_id": key.key_id,
                    "percent": key.percent,
                    "armed": key.armed,
                }
            )
    return rows

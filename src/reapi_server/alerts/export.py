"""A person's alert settings, for their data export: the thresholds of each account they own,
and the share of each key's spend limit, with whether each is waiting for a crossing and when
it last mailed. Each function has the shape of an export section's reader (as
`audit.export.rows_about`): the registry calls it with the person's user id and the accounts
they own."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from . import repository

__all__ = ["key_alerts_about", "thresholds_about"]


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


async def thresholds_about(
    session: AsyncSession, user_id: str, account_ids: Sequence[str]
) -> list[dict[str, Any]]:
    return [
        {
            "account_id": account_id,
            "threshold": alert.threshold,
            "armed": alert.armed,
            "set_at": _iso(alert.created_at),
            "last_mailed_at": _iso(alert.fired_at),
        }
        for account_id in account_ids
        for alert in await repository.balance_alerts_of(session, account_id)
    ]


async def key_alerts_about(
    session: AsyncSession, user_id: str, account_ids: Sequence[str]
) -> list[dict[str, Any]]:
    return [
        {
            "account_id": account_id,
            "key_id": alert.key_id,
            "percent": alert.percent,
            "armed": alert.armed,
            "set_at": _iso(alert.created_at),
            "last_mailed_at": _iso(alert.fired_at),
        }
        for account_id in account_ids
        for alert in await repository.key_alert_settings(session, account_id)
    ]

"""A person's promotion code redemptions, for their data export: which code, when, for how
many credits. `rows_about` has the shape of an export section's reader (as
`audit.export.rows_about`): the registry calls it with the person's user id and the accounts
they own."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from . import repository

__all__ = ["rows_about"]


def _iso(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


async def rows_about(
    session: AsyncSession, user_id: str, account_ids: Sequence[str]
) -> list[dict[str, Any]]:
    rows = []
    for account_id in account_ids:
        for redemption, code in await repository.redemptions_of(session, account_id, limit=None):
            rows.append(
                {
                    "at": _iso(redemption.created_at),
                    "code": code,
                    "credits": redemption.credits,
                    "account_id": account_id,
                }
            )
    return sorted(rows, key=lambda row: row["at"])

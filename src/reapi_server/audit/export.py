"""The audit rows about a person, for their data export: what operators did to them or their
accounts, and when. Which operator is not said (that is the operator's own data): the row
says an operator acted, and through which channel.

`rows_about` has the shape of an export section's reader: the export registry calls it with
the person's user id and the accounts they own."""

from __future__ import annotations

import json
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
    entries = await repository.about(session, user_id=user_id, account_ids=account_ids)
    return [
        {
            "at": _iso(entry.created_at),
            "action": entry.action,
            "by": f"operator ({entry.via})",
            "account_id": entry.account_id,
            "detail": json.loads(entry.detail),
        }
        for entry in reversed(entries)
    ]

"""A person's alert settings: thresholds of the balance and per key a share of its spend limit,
as typed on the settings page, and how they are saved (a new alert starts armed only when the
watched value is on the safe side of it: setting one is never a crossing)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from ..api_keys import repository as keys
from ..api_keys.periods import period_start
from ..identity.errors import FormInvalid
from ..models import MAX_CREDITS, BalanceAlert
from . import repository
from .rules import MAX_THRESHOLDS, key_threshold

__all__ = [
    "KeyAlertView",
    "key_alert_views",
    "parse_percent",
    "parse_thresholds",
    "save_key_percent",
    "save_thresholds",
    "thresholds_of",
]


@dataclass(frozen=True, slots=True)
class KeyAlertView:
    key_id: str
    name: str
    spend_limit: int | None
    spend_period: str
    percent: int | None


#: Between thresholds: a comma or semicolon followed by space, a semicolon, or space.
_BETWEEN = re.compile(r"[,;]\s+|;|\s+")
#: One number: digits, or digits grouped by thousands with commas ("1,000").
_NUMBER = re.compile(r"\d+|\d{1,3}(?:,\d{3})+")


def _whole(text: str) -> int | None:
    """A whole number as typed ("1,000" too); None when it is not one."""
    cleaned = text.strip()
    if not _NUMBER.fullmatch(cleaned) or len(cleaned) > 22:
        return None
    return int(cleaned.replace(",", ""), 10)


def parse_thresholds(text: str) -> list[int]:
    """Thresholds as typed: whole numbers of credits separated by a comma and a space (or a
    semicolon, or a new line); a comma inside a number groups thousands ("1,000, 200")."""
    found: list[int] = []
    for part in _BETWEEN.split(text.strip().rstrip(",;")):
        if not part:
            continue
        value = _whole(part)
        if value is None or not 1 <= value <= MAX_CREDITS:
            raise FormInvalid(
                {
                    "thresholds": "Enter whole numbers of credits of 1 or more, separated by a "
                    "comma and a space, like 1,000, 200."
                }
            )
        if value not in found:
            found.append(value)
    if len(found) > MAX_THRESHOLDS:
        raise FormInvalid({"thresholds": f"Set at most {MAX_THRESHOLDS} thresholds."})
    return sorted(found, reverse=True)


def parse_percent(text: str, field: str) -> int | None:
    """A key's percentage as typed: empty for none, else a whole number from 1 to 100."""
    typed = text.strip().removesuffix("%").strip()
    if not typed:
        return None
    value = _whole(typed)
    if value is None or not 1 <= value <= 100:
        raise FormInvalid({field: "Enter a whole percentage from 1 to 100, or leave it empty."})
    return value


async def thresholds_of(session: AsyncSession, account_id: str) -> list[BalanceAlert]:
    """The account's thresholds, highest first."""
    return await repository.balance_alerts_of(session, account_id)


async def save_thresholds(
    session: AsyncSession, account_id: str, thresholds: list[int], *, now: float
) -> None:
    await repository.replace_thresholds(session, account_id, thresholds, now=now)


async def key_alert_views(session: AsyncSession, account_id: str) -> list[KeyAlertView]:
    """The account's active model keys with their alert percentage (None: no alert)."""
    percents = {
        row.key_id: row.percent for row in await repository.key_alerts_of(session, account_id)
    }
    views = []
    for key in await keys.list_for_account(session, account_id):
        if key.revoked_at is not None or key.kind != "model":
            continue
        views.append(
            KeyAlertView(
                key_id=key.id,
                name=key.name or "Unnamed key",
                spend_limit=key.spend_limit,
                spend_period=key.spend_period,
                percent=percents.get(key.id),
            )
        )
    return views


async def save_key_percent(
    session: AsyncSession, account_id: str, key_id: str, percent: int | None, *, now: float
) -> None:
    """Set (or clear, None) a key's alert. A new percentage starts armed unless the key has
    spent past it already in this period (that is no crossing)."""
    if percent is None:
        await repository.clear_key_alert(session, key_id)
        return
    key = await keys.get_for_account(session, account_id, key_id)
    if key is None:
        return
    armed = True
    if key.spend_limit is not None:
        spent = 0 if period_start(key.spend_period, now) > key.period_start else key.period_spend
        armed = spent < key_threshold(key.spend_limit, percent)
    await repository.set_key_alert(session, account_id, key_id, percent, armed=armed, now=now)

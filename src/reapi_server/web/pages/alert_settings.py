"""The values of the low-balance alerts section of Settings → Notifications
(`_balance_alerts.html`), for the settings page and the alert forms' answers."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from ...accounts.service import account_of
from ...alerts import settings as alerts
from ...alerts.rules import MAX_THRESHOLDS, key_threshold
from ...identity.service import CurrentSession
from ..context import web_of

__all__ = ["alert_settings", "percent_field"]

_PERIOD_WORDS = {"daily": "a day", "weekly": "a week", "monthly": "a month", "never": "in total"}


def percent_field(key_id: str) -> str:
    return f"percent-{key_id}"


async def alert_settings(request: Request, current: CurrentSession) -> dict[str, Any]:
    """The values `_balance_alerts.html` reads."""
    async with web_of(request).db.read() as session:
        account = await account_of(session, current.user.id)
        if account is None:
            return {"alerts_account": False}
        thresholds = await alerts.thresholds_of(session, account.id)
        keys = await alerts.key_alert_views(session, account.id)
    return {
        "alerts_account": True,
        "alerts_max": MAX_THRESHOLDS,
        "alerts_thresholds": [
            {"threshold": row.threshold, "armed": row.armed, "fired_at": row.fired_at}
            for row in thresholds
        ],
        "alerts_typed": ", ".join(f"{row.threshold:,}" for row in thresholds),
        "alerts_keys": [
            {
                "id": key.key_id,
                "field": percent_field(key.key_id),
                "name": key.name,
                "limit": key.spend_limit,
                "per": _PERIOD_WORDS.get(key.spend_period, ""),
                "percent": "" if key.percent is None else str(key.percent),
                "at": key_threshold(key.spend_limit, key.percent)
                if key.spend_limit is not None and key.percent is not None
                else None,
            }
            for key in keys
        ],
        "alerts_typed_percents": {},
    }

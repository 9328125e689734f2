"""Settings → Notifications → Low-balance alerts (`_balance_alerts.html`): thresholds of the
balance, and per key a share of its spend limit, each mailed once per crossing (`alerts`).

Saving refreshes this process's copy of the account's alerts at once; other processes read
theirs again within `alert_interval`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from ...accounts.service import account_of
from ...alerts import settings as alerts
from ...errors import GatewayError
from ...identity.errors import FormInvalid
from ...identity.service import CurrentSession
from ...models import Account
from ..context import web_of
from ..forms import field_errors, read_form
from ..guards import require_session
from . import settings as settings_page
from .alert_settings import percent_field

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


async def _account(request: Request, current: CurrentSession) -> Account:
    async with web_of(request).db.read() as session:
        account = await account_of(session, current.user.id)
    if account is None:  # every user gets one at sign-up; an operator may have removed it
        raise GatewayError("this user has no account", code="no_account")
    return account


@router.post("/settings/notifications/balance-alerts")
async def save_thresholds(request: Request) -> Response:
    current = require_session(request)
    web = web_of(request)
    form = await read_form(request)
    typed = form.get("thresholds", "")
    try:
        account = await _account(request, current)
        thresholds = alerts.parse_thresholds(typed)
        async with web.db.write() as session:
            await alerts.save_thresholds(session, account.id, thresholds, now=web.clock())
    except GatewayError as error:
        return await settings_page._settings_page(
            request, status=error.http_status, errors=field_errors(error), alerts_typed=typed[:200]
        )
    await web.runtime.alerts.refresh(account.id)
    return RedirectResponse("/settings?done=alerts_saved#balance-alerts", 303)


@router.post("/settings/notifications/key-alerts")
async def save_key_alerts(request: Request) -> Response:
    current = require_session(request)
    web = web_of(request)
    form = await read_form(request)
    typed = {name: value[:10] for name, value in form.items() if name.startswith("percent-")}
    try:
        account = await _account(request, current)
        async with web.db.read() as session:
            keys = await alerts.key_alert_views(session, account.id)
        percents: dict[str, int | None] = {}
        errors: dict[str, str] = {}
        for key in keys:
            name = percent_field(key.key_id)
            if name not in form:
                continue
            try:
                percents[key.key_id] = alerts.parse_percent(form[name], name)
            except FormInvalid as invalid:
                errors.update(invalid.errors)
        if errors:
            raise FormInvalid(errors)
        async with web.db.write() as session:
            for key_id, percent in percents.items():
                await alerts.save_key_percent(session, account.id, key_id, percent, now=web.clock())
    except GatewayError as error:
        return await settings_page._settings_page(
            request,
            status=error.http_status,
            errors=field_errors(error),
            alerts_typed_percents=typed,
        )
    await web.runtime.alerts.refresh(account.id)
    return RedirectResponse("/settings?done=key_alerts_saved#key-alerts", 303)

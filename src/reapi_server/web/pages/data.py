"""Settings → Data: download your data (one JSON file, CSV for usage and payments; after a
recent authentication, `web.sudo`) and delete your account (step-up and a typed confirmation
first)."""

from __future__ import annotations

import re
import time
from typing import Any

from fastapi import APIRouter, Request
from starlette.exceptions import HTTPException
from starlette.responses import Response

from ...accounts.export import SPREADSHEETS, to_json
from ...accounts.service import account_of
from ...billing import views as billing_views
from ...errors import GatewayError
from ...identity.emails import normalise_email
from ..context import web_of
from ..forms import field_errors, read_form, retry_headers
from ..guards import require_session
from ..signin import signed_out_response
from ..step_up import require_step_up, step_up_needs
from ..sudo import sudo_redirect
from ..templates import render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


def _download(
    request: Request, body: bytes, kind: str, extension: str, media_type: str
) -> Response:
    """An attachment named after the site, what it holds and the day (no user data)."""
    web = web_of(request)
    site = re.sub(r"[^a-z0-9]+", "-", web.settings.site_name.lower()).strip("-") or "export"
    day = time.strftime("%Y-%m-%d", time.gmtime(web.clock()))
    filename = f"{site}-{kind}-{day}.{extension}"
    return Response(
        body,
        media_type=media_type,
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/settings/data/export.json")
async def download_data(request: Request) -> Response:
    current = require_session(request)
    if (confirm := sudo_redirect(request)) is not None:
        return confirm
    document = await web_of(request).personal_data.export(current.user.id)
    if document is None:
        raise HTTPException(404)
    return _download(request, to_json(document), "data", "json", "application/json")


@router.get("/settings/data/{section}.csv")
async def download_csv(request: Request, section: str) -> Response:
    current = require_session(request)
    if (confirm := sudo_redirect(request)) is not None:
        return confirm
    if section not in SPREADSHEETS:
        raise HTTPException(404)
    body = await web_of(request).personal_data.section_csv(current.user.id, section)
    if body is None:
        raise HTTPException(404)
    return _download(request, body, section, "csv", "text/csv; charset=utf-8")


async def _delete_page(request: Request, *, status: int = 200, **values: Any) -> Response:
    current = require_session(request)
    step_up = await step_up_needs(request)
    async with web_of(request).db.read() as session:
        account = await account_of(session, current.user.id)
        state = await billing_views.billing_state(session, account.id) if account else None
    # The credits that go with the account, said in numbers: bought credits are not paid back.
    balance = max(state.shown_balance, 0) if state is not None else 0
    return render(
        request,
        "delete_account.html",
        status=status,
        step_up=step_up,
        balance=f"{balance:,}" if balance else "",
        **values,
    )


@router.get("/settings/delete")
async def delete_page(request: Request) -> Response:
    return await _delete_page(request)


@router.post("/settings/delete")
async def delete_account(request: Request) -> Response:
    current = require_session(request)
    form = await read_form(request)
    web = web_of(request)
    typed = form.get("confirmation", "")
    try:
        confirmed = normalise_email(typed) == current.user.email
    except GatewayError:
        confirmed = False
    if not confirmed:  # before the step-up: a typo must not cost a code from the app
        message = "Type your email address exactly as shown to confirm."
        return await _delete_page(request, status=400, errors={"confirmation": message})
    try:
        proof = await require_step_up(request, form)
    except GatewayError as error:
        return await _delete_page(
            request,
            status=error.http_status,
            headers=retry_headers(error),
            errors=field_errors(error),
            confirmation=typed,
        )
    await web.personal_data.delete(proof.user_id)
    return signed_out_response(request, "/login?done=account_deleted")

"""The operator's promotion codes page (/admin/promo): the codes with their uses, a form to
create one, and withdrawing one. Both actions are `backoffice.promo` functions, audited in the
transaction that makes them; a code hands out credits, so both ask for a recent authentication
first (sudo mode, `web.sudo`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from ...audit import Actor
from ...backoffice import promo as actions
from ...errors import GatewayError
from ...models import PromoCode
from ...promo.service import NOTE_MAX, codes, parse_terms
from ..context import web_of
from ..forms import field_errors, read_form
from ..guards import require_admin
from ..sudo import sudo_or_confirm
from ..templates import render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

PAGE = "/admin/promo"
#: Codes listed, the newest first.
LISTED = 200


def _state(code: PromoCode, now: float) -> str:
    if code.disabled_at is not None:
        return "withdrawn"
    if code.expires_at is not None and code.expires_at <= now:
        return "expired"
    if code.max_uses is not None and code.redeemed >= code.max_uses:
        return "used_up"
    return "active"


async def _page(
    request: Request,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    created: str | None = None,
) -> Response:
    require_admin(request)
    web = web_of(request)
    async with web.db.read() as session:
        found = await codes(session, limit=LISTED)
    now = web.clock()
    rows: list[dict[str, Any]] = [{"code": c, "state": _state(c, now)} for c in found]
    return render(
        request,
        "admin/promo.html",
        status=status,
        title="Promotion codes",
        rows=rows,
        errors=errors or {},
        form=form or {},
        note_max=NOTE_MAX,
        created=created,
    )


@router.get(PAGE)
async def promo_codes(request: Request) -> Response:
    return await _page(request, created=request.query_params.get("created"))


@router.post(PAGE)
async def create(request: Request) -> Response:
    actor = Actor.admin(require_admin(request).user.id)
    web = web_of(request)
    form = await read_form(request)
    asked = await sudo_or_confirm(request, form.items(), back=PAGE, doing="create a promotion code")
    if asked is not None:
        return asked
    try:
        terms = parse_terms(
            code=form.get("code", ""),
            credits=form.get("credits", ""),
            max_uses=form.get("max_uses", ""),
            expires=form.get("expires", ""),
            note=form.get("note", ""),
        )
        async with web.db.write() as session:
            code = await actions.create_code(session, actor, terms, now=web.clock())
    except GatewayError as error:
        errors = {"expires" if k == "expires_at" else k: v for k, v in field_errors(error).items()}
        return await _page(request, status=error.http_status, errors=errors, form=form)
    return RedirectResponse(f"{PAGE}?done=promo_created&created={code.id}#code-{code.id}", 303)


@router.post(PAGE + "/{code_id}/disable")
async def disable(request: Request, code_id: str) -> Response:
    actor = Actor.admin(require_admin(request).user.id)
    web = web_of(request)
    form = await read_form(request)
    asked = await sudo_or_confirm(request, form.items(), back=PAGE, doing="withdraw the code")
    if asked is not None:
        return asked
    async with web.db.write() as session:
        await actions.disable_code(session, actor, code_id, now=web.clock())
    return RedirectResponse(f"{PAGE}?done=promo_disabled#code-{code_id}", 303)

"""The operator's pages (admins only; anyone else gets 404, see `admin_gate`): find people and
accounts, see an account's money, keys, usage, outputs and audit trail, adjust its credits,
disable or enable it, delete its owner, see the hosts' health and the audit log.

Every action is a `backoffice.actions` function, run in one transaction with its audit row, and
asks for a recent authentication first (sudo mode, `web.sudo`): a stolen admin session alone
moves no money and disables or deletes no one."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response

from ...audit import Actor
from ...backoffice import actions, lookup
from ...backoffice.actions import REASON_MAX
from ...errors import GatewayError
from ...identity.emails import normalise_email
from ...site.health import by_host, overall, route_health
from ..context import web_of
from ..forms import field_errors, read_form
from ..guards import require_admin
from ..sudo import sudo_or_confirm
from ..templates import render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

AUDIT_PAGE = 50


def _actor(request: Request) -> Actor:
    return Actor.admin(require_admin(request).user.id)


def _amount(text: str) -> int:
    cleaned = text.strip().replace(",", "").replace("_", "").replace(" ", "")
    digits = cleaned[1:] if cleaned[:1] in ("+", "-") else cleaned
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 20:
        raise GatewayError(
            "enter a whole number of credits, like 500 (to add) or -200 (to take away)",
            param="amount",
        )
    return int(cleaned, 10)


@router.get("/admin")
async def overview(request: Request) -> Response:
    require_admin(request)
    web = web_of(request)
    rt = web.runtime
    async with web.db.read() as session:
        summary = await lookup.overview(session)
    models = route_health(rt.router, rt.catalog, rt.core.connections)
    return render(
        request,
        "admin/overview.html",
        title="Admin",
        summary=summary,
        hosts=by_host(models),
        overall=overall(models),
    )


@router.get("/admin/users")
async def people(request: Request) -> Response:
    require_admin(request)
    query = request.query_params.get("q", "")[:320]
    async with web_of(request).db.read() as session:
        found = await lookup.find(session, query)
    return render(request, "admin/users.html", title="Users", query=query, found=found)


@router.get("/admin/users/{user_id}")
async def person(request: Request, user_id: str) -> Response:
    require_admin(request)
    async with web_of(request).db.read() as session:
        found = await lookup.find(session, user_id) if user_id.startswith("user_") else []
    if not found:
        raise HTTPException(404)
    account = found[0].account
    if account is None:
        return RedirectResponse(f"/admin/users?q={user_id}", 303)
    return RedirectResponse(f"/admin/accounts/{account.id}", 303)


async def _account_page(
    request: Request,
    account_id: str,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    current = require_admin(request)
    async with web_of(request).db.read() as session:
        detail = await lookup.account_detail(session, account_id)
    if detail is None:
        raise HTTPException(404)
    return render(
        request,
        "admin/account.html",
        status=status,
        title=f"Account {account_id}",
        detail=detail,
        me=current.user.id,
        errors=errors or {},
        form=form or {},
        reason_max=REASON_MAX,
    )


@router.get("/admin/accounts/{account_id}")
async def account(request: Request, account_id: str) -> Response:
    return await _account_page(request, account_id)


@router.post("/admin/accounts/{account_id}/credits")
async def adjust_credits(request: Request, account_id: str) -> Response:
    actor = _actor(request)
    web = web_of(request)
    form = await read_form(request)
    back = f"/admin/accounts/{account_id}"
    asked = await sudo_or_confirm(
        request, form.items(), back=back, doing="adjust this account's credits"
    )
    if asked is not None:
        return asked
    try:
        amount = _amount(form.get("amount", ""))
        async with web.db.write() as session:
            await actions.adjust_credits(
                session, actor, account_id, amount, form.get("reason", ""), now=web.clock()
            )
    except GatewayError as error:
        refused = error
    else:
        return RedirectResponse(f"/admin/accounts/{account_id}?done=credits_adjusted", 303)
    # A missing account is the 404 page (`_account_page` finds it missing).
    return await _account_page(
        request, account_id, status=400, errors=field_errors(refused), form=form
    )


async def _set_disabled(request: Request, account_id: str, *, disabled: bool) -> Response:
    actor = _actor(request)
    web = web_of(request)
    action = actions.disable_account if disabled else actions.enable_account
    async with web.db.read() as session:
        if not await lookup.account_exists(session, account_id):
            raise HTTPException(404)
    form = await read_form(request)
    doing = "disable the account" if disabled else "enable the account"
    back = f"/admin/accounts/{account_id}"
    asked = await sudo_or_confirm(request, form.items(), back=back, doing=doing)
    if asked is not None:
        return asked
    async with web.db.write() as session:
        await action(session, actor, account_id, now=web.clock())
    # This process refuses the account's keys at once; the others when they hear it (Redis) or
    # on their next lookup.
    web.runtime.auth.changed(account_id=account_id)
    done = "account_disabled" if disabled else "account_enabled"
    return RedirectResponse(f"/admin/accounts/{account_id}?done={done}", 303)


@router.post("/admin/accounts/{account_id}/disable")
async def disable(request: Request, account_id: str) -> Response:
    return await _set_disabled(request, account_id, disabled=True)


@router.post("/admin/accounts/{account_id}/enable")
async def enable(request: Request, account_id: str) -> Response:
    return await _set_disabled(request, account_id, disabled=False)


@router.post("/admin/users/{user_id}/delete")
async def delete_person(request: Request, user_id: str) -> Response:
    actor = _actor(request)
    web = web_of(request)
    form = await read_form(request)
    async with web.db.read() as session:
        found = await lookup.person(session, user_id)
    if found is None or found.user is None:
        raise HTTPException(404)
    user, account = found.user, found.account
    back = f"/admin/accounts/{account.id}" if account is not None else "/admin/users"
    asked = await sudo_or_confirm(request, form.items(), back=back, doing="delete this person")
    if asked is not None:
        return asked
    errors: dict[str, str] = {}
    if user.id == actor.user_id:
        errors["confirm_email"] = "you cannot delete yourself here: ask another admin"
    elif normalise_email(form.get("confirm_email", "")) != user.email:
        errors["confirm_email"] = "type the person's email address exactly to confirm"
    if errors:
        if account is None:
            raise HTTPException(400)
        return await _account_page(request, account.id, status=400, errors=errors, form=form)
    # The person's own deletion, audited: their account and its rows go with them.
    await web.personal_data.delete(user_id, actor=actor)
    return RedirectResponse("/admin/users?done=user_deleted", 303)


@router.get("/admin/audit")
async def audit_log(request: Request) -> Response:
    require_admin(request)
    before = request.query_params.get("before", "")
    # An id the column can hold (a 32-bit integer on PostgreSQL), or the first page.
    before_id = int(before) if before.isdigit() and len(before) <= 9 else None
    async with web_of(request).db.read() as session:
        lines = await lookup.audit_lines(session, limit=AUDIT_PAGE + 1, before_id=before_id)
    next_before = lines[AUDIT_PAGE - 1].entry.id if len(lines) > AUDIT_PAGE else None
    return render(
        request,
        "admin/audit.html",
        title="Audit log",
        lines=lines[:AUDIT_PAGE],
        next_before=next_before,
        first_page=before_id is None,
    )

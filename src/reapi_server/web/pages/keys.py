"""The keys page (/dashboard/keys): create a key with a name and optional limits (its secret is
shown once, on the page that answers the form), see each key's spend in its current period
against its limit, edit limits and the default webhook URL, show or renew the secret that signs
its webhooks (only on the answer to a form, never to a GET), revoke; management keys in a
section of their own. Making a key and showing a signing secret need a recent authentication
(`web.sudo`): a stolen session cookie alone mints no credential.

Everything goes through `api_keys.service.ApiKeys`, as the management API does."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from ...accounts.service import account_of
from ...api_keys.limits import MAX_MODELS, KeyLimits, LimitsInvalid, parse_limits
from ...api_keys.paging import KeyCursor
from ...api_keys.periods import PERIODS
from ...api_keys.service import (
    MAX_ACTIVE_KEYS,
    WEBHOOK_URL,
    CreatedKey,
    KeyView,
    keys_service,
)
from ...errors import AccountDisabled, GatewayError
from ...identity.service import CurrentSession, require_verified
from ...management.auth import runtime_of
from ...models import Account
from ...runtime import Runtime
from ...usage.calendar import zone_named
from ..forms import field_errors
from ..guards import require_session
from ..sudo import sudo_or_confirm
from ..templates import render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

PAGE = "/dashboard/keys"
#: Revoked keys shown at once (the latest first); older ones are a link away.
REVOKED_SHOWN = 20
#: Messages after a redirect (`?done=`): fixed texts, never echoed input.
_NOTICES = {
    "key_updated": "The key's limits are saved. They apply to its next request.",
    "key_revoked": "The key is revoked. Requests with it are refused from now on.",
}
#: The limit fields of the forms, as `api_keys.limits.parse_limits` reads them.
_TYPED = ("spend_limit", "spend_period", "expires_at", "requests_per_minute")
_PERIOD_WORDS = {
    "daily": "today",
    "weekly": "this week",
    "monthly": "this month",
    "never": "in total",
}


def _when(timestamp: float, zone: ZoneInfo) -> str:
    """In the person's time zone (the usage page's setting), its abbreviation said: periods and
    expiries begin at 00:00 UTC, which is another hour elsewhere."""
    return datetime.fromtimestamp(timestamp, zone).strftime("%d %b %Y, %H:%M %Z")


def _zone(request: Request) -> ZoneInfo:
    return zone_named(require_session(request).user.time_zone)


def _day(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(timestamp))


async def _account(rt: Runtime, current: CurrentSession) -> Account:
    async with rt.db.read() as session:
        account = await account_of(session, current.user.id)
    if account is None:  # every user gets one at sign-up; an operator may have removed it
        raise GatewayError("this user has no account", code="no_account")
    return account


def _row(view: KeyView, rt: Runtime, zone: ZoneInfo) -> dict[str, Any]:
    """What the list shows of a key."""
    limits = view.limits
    settings = rt.settings
    limit = limits.spend_limit
    return {
        "id": view.id,
        "name": view.name or "Unnamed key",
        "masked": view.masked,
        "state": "revoked" if view.revoked_at else "expired" if view.expired else "active",
        "created": _when(view.created_at, zone),
        "last_used": _when(view.last_used_at, zone) if view.last_used_at else None,
        "revoked": _when(view.revoked_at, zone) if view.revoked_at else None,
        "spend": view.spend,
        "limit": limit,
        "percent": min(100, round(view.spend * 100 / limit)) if limit else None,
        "period_words": _PERIOD_WORDS.get(limits.spend_period, limits.spend_period),
        "resets": _when(view.resets_at, zone) if view.resets_at else None,
        "models": ", ".join(limits.models) if limits.models is not None else None,
        "expires": _when(limits.expires_at, zone) if limits.expires_at else None,
        "rpm": limits.requests_per_minute,
        "default_rpm": settings.requests_per_minute,
        "videos": limits.max_concurrent_videos,
        "default_videos": settings.max_concurrent_videos,
        "webhook_url": view.webhook_url,
        "webhook_disabled": view.webhook_disabled,
    }


def _model_choices(rt: Runtime) -> list[dict[str, str]]:
    return [
        {"id": spec.id, "kind": spec.kind}
        for spec in sorted(rt.catalog.models.values(), key=lambda s: (s.kind, s.id))
    ]


def _form_values(
    limits: KeyLimits | None = None, name: str = "", webhook_url: str | None = None
) -> dict[str, Any]:
    """The create or edit form's fields, filled with `limits`."""
    limits = limits or KeyLimits()
    return {
        "name": name,
        WEBHOOK_URL: webhook_url or "",
        "spend_limit": "" if limits.spend_limit is None else str(limits.spend_limit),
        "spend_period": limits.spend_period,
        "model_access": "all" if limits.models is None else "only",
        "models": list(limits.models or ()),
        "expires_at": "" if limits.expires_at is None else _day(limits.expires_at),
        "requests_per_minute": ""
        if limits.requests_per_minute is None
        else str(limits.requests_per_minute),
        "max_concurrent_videos": ""
        if limits.max_concurrent_videos is None
        else str(limits.max_concurrent_videos),
    }


async def _read(request: Request) -> FormData:
    return await request.form(max_files=0, max_fields=MAX_MODELS + 16)


def _entered(form: FormData) -> dict[str, Any]:
    """The form as typed, to show it again beside its errors."""
    names = (*_TYPED, "max_concurrent_videos", "name", "model_access", WEBHOOK_URL)
    values: dict[str, Any] = {name: str(form.get(name, "")) for name in names}
    values["models"] = [str(m) for m in form.getlist("models")]
    return values


def _changes(form: FormData, *, stored: KeyLimits | None = None) -> dict[str, Any]:
    """The limits the form sets (`LimitsInvalid` for what it cannot read). With `stored` (the
    edit form), an expiry left on the date it had keeps its exact time."""
    typed = {name: str(form.get(name, "")) for name in (*_TYPED, "max_concurrent_videos")}
    kept = stored.expires_at if stored is not None else None
    if kept is not None and typed["expires_at"].strip() == _day(kept):
        del typed["expires_at"]
    changes = parse_limits(typed)
    if form.get("model_access", "all") == "only":
        models = tuple(str(m) for m in form.getlist("models"))
        if not models:
            raise LimitsInvalid({"models": "Choose at least one model, or allow every model."})
        changes["models"] = models
    else:
        changes["models"] = None
    return changes


async def _page(
    request: Request,
    *,
    status: int = 200,
    created: CreatedKey | None = None,
    errors: dict[str, str] | None = None,
    form: dict[str, Any] | None = None,
    management_errors: dict[str, str] | None = None,
) -> Response:
    current = require_session(request)
    rt = runtime_of(request)
    account = await _account(rt, current)
    service = keys_service(rt)
    # Every key not revoked (at most MAX_ACTIVE_KEYS), then a page of the revoked ones.
    live = await service.page(account.id, limit=MAX_ACTIVE_KEYS, revoked=False)
    older = KeyCursor.decode(request.query_params.get("revoked_older", ""))
    revoked = await service.page(account.id, limit=REVOKED_SHOWN, after=older, revoked=True)
    views = live.keys + revoked.keys
    more = revoked.next
    zone = zone_named(current.user.time_zone)
    model_keys = [_row(v, rt, zone) for v in views if v.kind == "model"]
    management_keys = [_row(v, rt, zone) for v in views if v.kind == "management"]
    return render(
        request,
        "keys.html",
        status=status,
        title="API keys",
        notice=_NOTICES.get(request.query_params.get("done", "")),
        keys=model_keys,
        management_keys=management_keys,
        revoked_older=older is not None,
        retention_days=f"{rt.settings.retention_days:g}",
        revoked_more=f"{PAGE}?revoked_older={quote(more.encode())}#revoked" if more else None,
        created=created,
        created_kind=created.view.kind if created else None,
        errors=errors or {},
        management_errors=management_errors or {},
        form=form or _form_values(),
        periods=PERIODS,
        model_choices=_model_choices(rt),
        verified=current.user.email_verified_at is not None,
        disabled=account.disabled_at is not None,
        default_rpm=rt.settings.requests_per_minute,
        default_videos=rt.settings.max_concurrent_videos,
        base_url=(rt.settings.public_base_url or str(request.base_url)).rstrip("/") + "/v1",
    )


@router.get(PAGE)
async def keys_page(request: Request) -> Response:
    return await _page(request)


async def _create(request: Request, *, kind: str) -> Response:
    current = require_session(request)
    rt = runtime_of(request)
    form = await _read(request)
    doing = "make a management key" if kind == "management" else "make an API key"
    asked = await sudo_or_confirm(request, form.multi_items(), back=PAGE, doing=doing)
    if asked is not None:
        return asked
    entered = _entered(form)
    try:
        require_verified(current.user)
        account = await _account(rt, current)
        if account.disabled_at is not None:
            raise AccountDisabled("This account is disabled: it cannot have new keys.")
        name = str(form.get("name", "")).strip()
        if not name:
            raise LimitsInvalid({"name": "Give the key a name, so that you can tell it apart."})
        limits = KeyLimits().changed(_changes(form)) if kind == "model" else None
        webhook_url = str(form.get(WEBHOOK_URL, "")) if kind == "model" else None
        created = await keys_service(rt).create(
            account.id, name=name, limits=limits, kind=kind, webhook_url=webhook_url
        )
    except GatewayError as error:
        errors = field_errors(error)
        if kind == "management":
            errors = {"management-name" if k == "name" else k: v for k, v in errors.items()}
            return await _page(request, status=error.http_status, management_errors=errors)
        return await _page(request, status=error.http_status, errors=errors, form=entered)
    # The secret is on this page, and only here: nothing keeps it for a later one.
    return await _page(request, status=201, created=created)


@router.post(PAGE)
async def create_key(request: Request) -> Response:
    return await _create(request, kind="model")


@router.post(f"{PAGE}/management")
async def create_management_key(request: Request) -> Response:
    return await _create(request, kind="management")


async def _key(request: Request, key_id: str) -> tuple[Runtime, str, KeyView]:
    current = require_session(request)
    rt = runtime_of(request)
    account = await _account(rt, current)
    return rt, account.id, await keys_service(rt).get(account.id, key_id)


async def _edit_page(
    request: Request,
    key_id: str,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    form: dict[str, Any] | None = None,
    webhook_secret: str | None = None,
    rotated: bool = False,
) -> Response:
    rt, _, view = await _key(request, key_id)
    return render(
        request,
        "key_edit.html",
        status=status,
        title=f"Edit {view.name or 'key'}",
        key=_row(view, rt, _zone(request)),
        kind=view.kind,
        errors=errors or {},
        form=form or _form_values(view.limits, view.name, view.webhook_url),
        periods=PERIODS,
        model_choices=_model_choices(rt),
        webhook_secret=webhook_secret,
        rotated=rotated,
        overlap_hours=round(rt.settings.webhook_secret_overlap_seconds / 3600),
    )


def _webhook_change(form: FormData, view: KeyView) -> dict[str, Any]:
    """The webhook URL, when the form changes it. The same URL again changes nothing, unless
    the owner asks for a URL stopped by a 410 Gone to be used again."""
    url = str(form.get(WEBHOOK_URL, "")).strip() or None
    again = view.webhook_disabled and bool(form.get("webhook_enable"))
    return {WEBHOOK_URL: url} if url != view.webhook_url or again else {}


@router.get(PAGE + "/{key_id}")
async def edit_page(request: Request, key_id: str) -> Response:
    return await _edit_page(request, key_id)


@router.post(PAGE + "/{key_id}")
async def save_limits(request: Request, key_id: str) -> Response:
    rt, account_id, view = await _key(request, key_id)
    form = await _read(request)
    webhook = _webhook_change(form, view) if view.kind == "model" else {}
    if webhook.get(WEBHOOK_URL):
        # Where the key's job results go: a stolen session must not redirect them.
        doing = "send the key's webhooks to a new address"
        back = f"{PAGE}/{key_id}"
        asked = await sudo_or_confirm(request, form.multi_items(), back=back, doing=doing)
        if asked is not None:
            return asked
    try:
        changes: dict[str, Any] = {"name": str(form.get("name", ""))}
        if view.kind == "model":
            changes.update(_changes(form, stored=view.limits))
            changes.update(webhook)
        await keys_service(rt).update(account_id, key_id, changes)
    except GatewayError as error:
        return await _edit_page(
            request,
            key_id,
            status=error.http_status,
            errors=field_errors(error),
            form=_entered(form),
        )
    return RedirectResponse(f"{PAGE}?done=key_updated#key-{key_id}", 303)


async def _show_secret(request: Request, key_id: str, *, rotate: bool) -> Response:
    rt, account_id, _ = await _key(request, key_id)
    form = await _read(request)
    doing = "renew the key's webhook signing secret" if rotate else "see its webhook signing secret"
    asked = await sudo_or_confirm(request, form.multi_items(), back=f"{PAGE}/{key_id}", doing=doing)
    if asked is not None:
        return asked
    try:
        secret = await keys_service(rt).webhook_secret(account_id, key_id, rotate=rotate)
    except GatewayError as error:
        return await _edit_page(
            request, key_id, status=error.http_status, errors=field_errors(error)
        )
    # On the answer to this form only: nothing keeps it for a later page.
    return await _edit_page(request, key_id, webhook_secret=secret, rotated=rotate)


@router.post(PAGE + "/{key_id}/webhook-secret")
async def show_webhook_secret(request: Request, key_id: str) -> Response:
    return await _show_secret(request, key_id, rotate=False)


@router.post(PAGE + "/{key_id}/webhook-secret/rotate")
async def rotate_webhook_secret(request: Request, key_id: str) -> Response:
    return await _show_secret(request, key_id, rotate=True)


@router.get(PAGE + "/{key_id}/revoke")
async def revoke_page(request: Request, key_id: str) -> Response:
    rt, _, view = await _key(request, key_id)
    key = _row(view, rt, _zone(request))
    return render(request, "key_revoke.html", title="Revoke key", key=key)


@router.post(PAGE + "/{key_id}/revoke")
async def revoke(request: Request, key_id: str) -> Response:
    rt, account_id, _ = await _key(request, key_id)
    await keys_service(rt).revoke(account_id, key_id)
    return RedirectResponse(f"{PAGE}?done=key_revoked", 303)

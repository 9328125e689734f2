"""The consent page (`consent_gate`): for a person whose account an operator made, the two boxes
every sign-up has, asked once at their first sign-in, before any other page; for a person who
accepted an older version of the terms or the privacy policy, the new version, once."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from ...errors import GatewayError
from ...identity.service import CurrentSession
from ..consent_gate import CONSENT_PAGE
from ..context import visitor_of, web_of
from ..forms import field_errors, read_form, safe_next
from ..templates import render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


def _due(request: Request) -> CurrentSession | None:
    pending = visitor_of(request).pending
    return pending if pending is not None and pending.consent_due else None


def _elsewhere(request: Request, next_url: str) -> Response:
    """Nothing to confirm: signed in already (go on), or not signed in at all."""
    target = next_url if visitor_of(request).user is not None else "/login"
    return RedirectResponse(target, status_code=303)


_TITLES = {"terms": "terms of service", "privacy": "privacy policy"}


async def _page(
    request: Request, current: CurrentSession, *, status: int = 200, **values: Any
) -> Response:
    due = await web_of(request).identity.consents_due(current)
    changed = [(name, _TITLES.get(name, name)) for name in due.changed]
    return render(
        request, "login_consent.html", status=status, ask_age=due.age, changed=changed, **values
    )


@router.get(CONSENT_PAGE)
async def consent_page(request: Request) -> Response:
    next_url = safe_next(request.query_params.get("next"))
    current = _due(request)
    if current is None:
        return _elsewhere(request, next_url)
    return await _page(request, current, next_url=next_url)


@router.post(CONSENT_PAGE)
async def consent(request: Request) -> Response:
    form = await read_form(request)
    next_url = safe_next(form.get("next"))
    current = _due(request)
    if current is None:
        return _elsewhere(request, next_url)
    age, terms = form.get("age_16_plus") == "yes", form.get("accept_terms") == "yes"
    try:
        await web_of(request).identity.give_consents(current, age_16_plus=age, accept_terms=terms)
    except GatewayError as error:
        return await _page(
            request,
            current,
            status=error.http_status,
            errors=field_errors(error),
            next_url=next_url,
            age_16_plus=age,
            accept_terms=terms,
        )
    return RedirectResponse(next_url, status_code=303)

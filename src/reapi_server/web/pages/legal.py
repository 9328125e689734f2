"""The privacy policy and terms (Markdown an operator may replace) and the cookie policy
(generated from what this installation sets)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from ...legal.documents import LegalFacts, load_policy
from ...legal.subprocessors import as_markdown, subprocessors
from ..context import WebContext, web_of
from ..templates import render

__all__ = ["facts", "router"]

router = APIRouter(include_in_schema=False)


def _days(value: float) -> str:
    return f"{value:g}"


def facts(web: WebContext) -> LegalFacts:
    settings = web.settings
    return LegalFacts(
        site_name=settings.site_name,
        operator_name=settings.operator_name,
        operator_contact=settings.operator_contact or "[the contact page](/contact)",
        retention_days=_days(settings.retention_days),
        session_idle_days=_days(settings.session_idle_days),
        session_max_days=_days(settings.session_max_days),
        subprocessors=as_markdown(subprocessors(settings, web.providers)),
        # Deliveries never outlive the general retention (`retention.service`).
        webhook_retention_days=_days(min(settings.webhook_retention_days, settings.retention_days)),
        idempotency_hours=f"{settings.idempotency_ttl_seconds / 3600:g}",
        audit_retention_days=_days(settings.audit_retention_days),
    )


def _policy(request: Request, name: str) -> Response:
    web = web_of(request)
    document = load_policy(name, web.settings.legal_dir, facts(web))
    return render(request, "legal.html", document=document)


@router.get("/legal/privacy")
async def privacy(request: Request) -> Response:
    return _policy(request, "privacy")


@router.get("/legal/terms")
async def terms(request: Request) -> Response:
    return _policy(request, "terms")


@router.get("/legal/cookies")
async def cookies(request: Request) -> Response:
    return render(request, "cookies.html", cookies=web_of(request).cookies.inventory())

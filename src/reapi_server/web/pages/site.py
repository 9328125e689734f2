"""The public site: the landing page, models and prices, the changelog, the contact page and
the status page. Everything shown is read from the running gateway (catalog, price function,
router, settings): nothing here keeps a copy that could drift."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from ...runtime import Runtime
from ...site.changelog import changelog_html
from ...site.health import by_host, overall, route_health
from ...site.models import model_views
from ..context import web_of
from ..templates import render

__all__ = ["STATUS_REFRESH_SECONDS", "router"]

router = APIRouter(include_in_schema=False)

#: The status page reloads itself this often (a meta refresh: no script).
STATUS_REFRESH_SECONDS = 30


def _api_base(request: Request) -> str:
    return web_of(request).links.base_url + "/v1"


@router.get("/")
async def landing(request: Request) -> Response:
    rt = web_of(request).runtime
    models = model_views(rt.catalog, rt.core.connections)
    images = [m for m in models if m.kind == "image"]
    example = next((m for m in images if m.id == "gpt-image-2"), images[0] if images else None)
    return render(
        request,
        "landing.html",
        title="One API for image and video models",
        api_base=_api_base(request),
        example_model=example.id if example else "MODEL",
        image_count=len(images),
        video_count=len(models) - len(images),
        hosts=sorted({host for m in models for host in m.hosts}),
        featured=models[:12],
        # A new account has no credits: where this gateway sells them, the steps say so.
        sells_credits=rt.billing.enabled,
    )


def _packs_on_sale(rt: Runtime) -> list[str]:
    """What credits cost, as the billing page sells them ("1,000 credits for 10.00 EUR"), the
    default currency first; none when this gateway sells no credits."""
    billing = rt.billing.settings
    if not rt.billing.enabled:
        return []
    return [
        f"{pack.credits:,} credits for {pack.price}"
        for currency in billing.currencies
        for pack in billing.packs
        if pack.currency == currency
    ]


@router.get("/models")
async def models_page(request: Request) -> Response:
    rt = web_of(request).runtime
    models = model_views(rt.catalog, rt.core.connections)
    return render(
        request,
        "models.html",
        title="Models and prices",
        images=[m for m in models if m.kind == "image"],
        videos=[m for m in models if m.kind == "video"],
        packs=_packs_on_sale(rt),
    )


@router.get("/models.json")
async def models_json(request: Request) -> Response:
    rt = web_of(request).runtime
    models = model_views(rt.catalog, rt.core.connections)
    return JSONResponse({"object": "list", "data": [m.as_json() for m in models]})


@router.get("/changelog")
async def changelog(request: Request) -> Response:
    return render(request, "changelog.html", title="API updates", changelog=changelog_html())


@router.get("/contact")
async def contact(request: Request) -> Response:
    settings = web_of(request).settings
    contact_value = settings.operator_contact
    email = (
        contact_value
        if contact_value and "@" in contact_value and " " not in contact_value
        else None
    )
    url = (
        contact_value
        if contact_value and contact_value.startswith(("https://", "http://"))
        else None
    )
    return render(
        request,
        "contact.html",
        title="Contact",
        operator_name=settings.operator_name,
        operator_contact=settings.operator_contact,
        contact_email=email,
        contact_url=url,
        operator_address=settings.operator_address,
    )


@router.get("/status")
async def status(request: Request) -> Response:
    rt = web_of(request).runtime
    models = route_health(rt.router, rt.catalog, rt.core.connections)
    return render(
        request,
        "status.html",
        title="Status",
        models=models,
        hosts=by_host(models),
        overall=overall(models),
        refresh_seconds=STATUS_REFRESH_SECONDS,
    )

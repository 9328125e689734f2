"""The dashboard's first page: balance, credit held by running requests, spend of the last 30
days per day, the latest requests, and how to call this gateway (its configured address, never
the Host header a client sent)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from ...usage.calendar import default_range
from ...usage.reading import overview
from ..account import require_account
from ..charts import credits_chart
from ..context import runtime_of, web_of
from ..templates import render
from ..usage_view import usage_rows

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

#: Days of spend the chart shows, and rows of the latest requests.
SPEND_DAYS = 30
RECENT = 10


def _example_model(request: Request) -> str:
    models = runtime_of(request).catalog.models
    images = [m for m, spec in models.items() if spec.kind == "image"]
    return "gpt-image-2" if "gpt-image-2" in images else (images or ["gpt-image-2"])[0]


@router.get("/dashboard")
async def dashboard_page(request: Request) -> Response:
    signed_in = await require_account(request)
    web = web_of(request)
    zone = signed_in.zone
    now = web.clock()
    days = default_range(now, zone, days=SPEND_DAYS)
    view = await overview(web.db, signed_in.account_id, days, recent=RECENT)
    keys = {k.id: k for k in view.keys}
    return render(
        request,
        "dashboard.html",
        title="Dashboard",
        balance=f"{view.balance:,}",
        reserved=f"{view.reserved:,}",
        spent=f"{view.totals.credits:,}",
        # The requests the credits were spent on (and those running): failed and refused
        # ones are counted apart, as they cost nothing.
        requests=f"{view.totals.requests - view.totals.failed:,}",
        failed=f"{view.totals.failed:,}",
        chart=credits_chart(view.totals.by_day, today=days.day_of(now), zone=zone.key),
        rows=usage_rows(view.recent, zone, keys),
        has_key=any(not k.revoked for k in view.keys),
        # Nothing to spend and nothing running: every request would be refused (402).
        no_credit=view.balance <= 0 and view.reserved <= 0,
        sells_credits=web.runtime.billing.enabled,
        disabled=view.disabled,
        verified=signed_in.session.user.email_verified_at is not None,
        base_url=web.links.base_url,
        model=_example_model(request),
        zone=zone.key,
    )

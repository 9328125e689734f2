"""The newsletter's one-click unsubscribe (RFC 8058) at the address every newsletter names in
List-Unsubscribe: a POST unsubscribes, a GET only shows a button (link scanners and previews
open links; only a person, or a mail client's one-click, posts)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from ..context import web_of
from ..csrf import EXEMPT
from ..templates import render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

# A mail provider posts here from its own servers, with no cookie and no page token (RFC 8058):
# the per-recipient token in the path is the proof, and all it can do is stop the newsletter.
EXEMPT.add("/unsubscribe/")


def _page(
    request: Request, state: str, *, status: int = 200, email: str = "", token: str = ""
) -> Response:
    return render(request, "unsubscribe.html", status=status, state=state, email=email, token=token)


@router.get("/unsubscribe/{token}")
async def unsubscribe_page(request: Request, token: str) -> Response:
    subscriber = await web_of(request).subscriptions.by_token(token)
    if subscriber is None:
        return _page(request, "invalid", status=404)
    state = "confirm" if subscriber.subscribed else "already"
    return _page(request, state, email=subscriber.email, token=token)


@router.post("/unsubscribe/{token}")
async def unsubscribe(request: Request, token: str) -> Response:
    subscriber = await web_of(request).subscriptions.unsubscribe(token)
    if subscriber is None:
        return _page(request, "invalid", status=404)
    return _page(request, "done", email=subscriber.email)

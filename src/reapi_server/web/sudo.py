"""Sudo mode: the actions that would let someone holding only a stolen session cookie keep the
account (mint an API key, read a webhook signing secret, link another GitHub or Google
identity, download everything) ask for a recent authentication, as GitHub's sudo mode does.

Recent: the session signed in, or its person confirmed who they are on the confirm-access page
(`CONFIRM_PAGE`), within the last ten minutes (`Identity.recently_authenticated`). Confirming
asks what `step_up` asks (the password, throttled as a sign-in; a code when two-factor
authentication is on); a user without a password signs in again with a linked provider instead.

- A POST handler calls `await sudo_or_confirm(request, form, back=...)` first: None lets it go
  on; otherwise it answers the page returned (403), whose form posts the same fields back to
  the same URL with the password, so the action is done once the password is right (the form
  is never lost). Wrong input shows the page again beside its field (401, or 429 throttled).
- A GET handler (a download) calls `sudo_redirect(request)`: None, or a redirect to the
  confirm-access page, which comes back to the download.
- The management API, when the caller is a session, calls `require_sudo(request)` (a JSON 403
  `step_up_required` the caller's browser resolves on `CONFIRM_PAGE`).
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..errors import GatewayError
from .context import web_of
from .forms import field_errors, retry_headers
from .guards import require_session
from .step_up import require_step_up, step_up_needs
from .templates import render

__all__ = [
    "CONFIRM_PAGE",
    "REPLAY_MARK",
    "StepUpRequired",
    "confirm_page",
    "require_sudo",
    "sudo_or_confirm",
    "sudo_redirect",
]

CONFIRM_PAGE = "/settings/confirm-access"
#: The field the confirm-access form adds to the fields it posts back: the password is in it.
REPLAY_MARK = "confirm_access"
#: Never posted back: the page's own fields, and the CSRF token (the page writes its own).
_OWN_FIELDS = frozenset({REPLAY_MARK, "csrf_token", "current_password", "code", "backup_code"})


class StepUpRequired(GatewayError):
    """A session asked for something that needs a recent authentication (the JSON answer)."""

    http_status = 403
    default_code = "step_up_required"

    def __init__(self) -> None:
        super().__init__(
            "Confirm it is you first: open "
            + CONFIRM_PAGE
            + " in this browser, then try again within 10 minutes."
        )


def _recent(request: Request) -> bool:
    return web_of(request).identity.recently_authenticated(require_session(request))


async def confirm_page(
    request: Request,
    *,
    action: str,
    fields: Iterable[tuple[str, str]] = (),
    back: str,
    doing: str = "",
    cancel: str | None = None,
    status: int = 403,
    errors: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """The confirm-access page: its form posts `fields` and the password to `action`; a user
    without a password signs in again and comes back to `back`. `doing`: what the person is
    about to do ("make a management key"), said in the page's lead; `cancel`: where "Cancel"
    goes (`back` by default)."""
    return render(
        request,
        "confirm_access.html",
        status=status,
        headers=headers,
        title="Confirm it is you",
        doing=doing,
        cancel=cancel or back,
        action=action,
        replay=[(k, v) for k, v in fields if k not in _OWN_FIELDS],
        step_up=await step_up_needs(request, back=back),
        errors=errors or {},
    )


async def sudo_or_confirm(
    request: Request,
    form: Iterable[tuple[str, object]],
    *,
    back: str,
    doing: str = "",
    cancel: str | None = None,
) -> Response | None:
    """None when the action may go on (recent, or the password the confirm-access page posted
    with `form` is right: the session remembers it); else the page to answer."""
    if _recent(request):
        return None
    pairs = [(k, v) for k, v in form if isinstance(v, str)]  # a form here has no files
    given = dict(pairs)
    action = request.url.path
    if REPLAY_MARK not in given:
        return await confirm_page(
            request, action=action, fields=pairs, back=back, doing=doing, cancel=cancel
        )
    try:
        await require_step_up(request, given, remember=True)
    except GatewayError as error:
        return await confirm_page(
            request,
            action=action,
            fields=pairs,
            back=back,
            doing=doing,
            cancel=cancel,
            status=error.http_status,
            errors=field_errors(error),
            headers=retry_headers(error),
        )
    return None


def sudo_redirect(request: Request) -> Response | None:
    """None when recent; else to the confirm-access page, which comes back to this URL."""
    if _recent(request):
        return None
    here = request.url.path + ("?" + request.url.query if request.url.query else "")
    return RedirectResponse(f"{CONFIRM_PAGE}?{urlencode({'next': here})}", status_code=303)


def require_sudo(request: Request) -> None:
    """For JSON endpoints: raises `StepUpRequired` unless recent."""
    if not _recent(request):
        raise StepUpRequired()

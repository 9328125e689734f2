"""Step-up: asking a signed-in person to confirm who they are again before a change that an
attacker with a stolen session must not make (turning two-factor authentication off, new
backup codes, changing the email, deleting the account).

A page shows `step_up_fields(errors, step_up)` inside its form and `sign_in_again_forms(step_up)`
after it (templates/_step_up.html) with `step_up=await step_up_needs(request)`, and its POST
handler calls `await require_step_up(request, form)` before acting: it returns the `StepUp`
proof the use case takes, or raises a `GatewayError` whose `param` names the field to show it
beside (`current_password`, `code`) and, when throttled, `retry_after` (see
`forms.retry_headers`).

What is asked: the password (throttled as a sign-in is) or, for a user without one (OAuth only),
a sign-in in the last ten minutes; and, when two-factor authentication is on, a TOTP code or an
unused backup code (throttled, used up). A user without a password whose sign-in is older signs
in again with a provider linked to them (`POST /auth/{name}/reauth`, back to this page with a
new session).
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from ..identity.service import RECENT_SIGN_IN, StepUp
from .context import client_of, web_of
from .guards import require_session

__all__ = ["StepUpNeeds", "require_step_up", "second_factor_code", "step_up_needs"]


@dataclass(frozen=True, slots=True)
class StepUpNeeds:
    """What the step-up form must ask for."""

    #: The user has a password: ask for it.
    password: bool
    #: Two-factor authentication is on: ask for a code.
    code: bool
    #: No password, and the session began long enough ago that a new sign-in is needed first.
    sign_in_again: bool
    #: (name, label) of the providers linked to the user, to sign in again with.
    providers: tuple[tuple[str, str], ...] = ()
    #: This page: where signing in again comes back to.
    back: str = "/settings"


async def step_up_needs(request: Request, *, back: str | None = None) -> StepUpNeeds:
    """`back`: where signing in again returns to (this page by default)."""
    current = require_session(request)
    user = current.user
    web = web_of(request)
    has_password = user.password_hash is not None
    stale = web.clock() - current.signed_in_at > RECENT_SIGN_IN
    again = not has_password and stale
    linked = await web.oauth.linked_providers(user.id) if again else []
    return StepUpNeeds(
        password=has_password,
        code=user.totp_enabled_at is not None,
        sign_in_again=again,
        providers=tuple((p.name, p.label) for p in linked),
        back=back or request.url.path,
    )


def second_factor_code(form: dict[str, str]) -> str:
    """The code typed: the app's (`code`) or a backup code (`backup_code`)."""
    return (form.get("code", "").strip() or form.get("backup_code", "")).strip()


async def require_step_up(
    request: Request, form: dict[str, str], *, remember: bool = False
) -> StepUp:
    """The proof that the signed-in person has just confirmed who they are; raises otherwise.
    `remember`: the session keeps it for ten minutes (sudo mode, see `web.sudo`)."""
    current = require_session(request)
    identity = web_of(request).identity
    confirm = identity.confirm_access if remember else identity.step_up
    return await confirm(
        current,
        password=form.get("current_password", ""),
        code=second_factor_code(form),
        client=client_of(request),
    )

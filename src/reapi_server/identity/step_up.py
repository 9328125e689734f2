"""Step-up: proving again that it is you, right before something that cannot be undone
(deleting the account). A live session is not enough: a browser left signed in, or a stolen
session cookie, must not be able to do it.

The proof is the password; for a person who has none (created by an operator, or signing in
with GitHub or Google), a sign-in within the last 10 minutes, which the provider's own check
(and its two-factor, if any) made. Two-factor authentication, when it is on, adds its code here.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import GatewayError
from . import repository
from .errors import SignInThrottled
from .service import CurrentSession, Identity
from .sessions import hash_token
from .throttle import SIGN_IN_PER_EMAIL, Throttle

__all__ = ["RECENT_SIGN_IN_SECONDS", "StepUpRequired", "require_step_up"]

#: How recent a sign-in stands in for the password of a person who has none.
RECENT_SIGN_IN_SECONDS = 600.0


class StepUpRequired(GatewayError):
    http_status = 403
    default_code = "step_up_required"

    def __init__(self, message: str, *, param: str) -> None:
        super().__init__(message, param=param)


async def require_step_up(
    identity: Identity, current: CurrentSession, form: Mapping[str, str]
) -> None:
    """Return if the form proves it is the signed-in person (see the module); else raise
    `StepUpRequired` (beside the field at fault) or `SignInThrottled`. A wrong password counts
    as a failed sign-in of the address."""
    now = identity.clock()
    async with identity.db.read() as session:
        user = await repository.get_user(session, current.user.id)
        found = await repository.find_session(session, hash_token(current.token) or "")
    if user is None or found is None:
        raise StepUpRequired("Sign in again to continue.", param="form")
    if user.password_hash is None:
        if now - found[0].created_at > RECENT_SIGN_IN_SECONDS:
            raise StepUpRequired(
                "To confirm it is you, sign out, sign in again, then come back here within "
                "10 minutes.",
                param="form",
            )
        return
    password = form.get("password", "")
    if not password:
        raise StepUpRequired("Enter your password to confirm it is you.", param="password")
    counter = identity.throttle.for_email(SIGN_IN_PER_EMAIL, user.email)
    async with identity.db.read() as session:
        wait = await Throttle.retry_after(session, [counter], now)
    if wait is not None:
        raise SignInThrottled(wait)
    if not await identity.passwords.verify(user.password_hash, password):
        async with identity.db.write() as session:
            await Throttle.count(session, [counter], identity.clock())
        raise StepUpRequired("That password is not right.", param="password")

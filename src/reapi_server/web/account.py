"""The signed-in person's account, for the dashboard's pages: every query a dashboard page makes
is bound to the account this returns, never to an id taken from the request."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from starlette.exceptions import HTTPException
from starlette.requests import Request

from ..accounts.service import owned_account_id
from ..identity.service import CurrentSession
from ..usage.calendar import zone_named
from .context import web_of
from .guards import require_session

__all__ = ["SignedIn", "account_id_of", "require_account"]


@dataclass(frozen=True, slots=True)
class SignedIn:
    session: CurrentSession
    account_id: str

    @property
    def zone(self) -> ZoneInfo:
        return zone_named(self.session.user.time_zone)


async def account_id_of(request: Request, session: CurrentSession) -> str | None:
    """The id of the account the session's user owns (None: an operator deleted it)."""
    async with web_of(request).db.read() as db_session:
        return await owned_account_id(db_session, session.user.id)


async def require_account(request: Request) -> SignedIn:
    """The live session and the account its user owns (a sign-in redirect without a session;
    404 for a user without an account)."""
    session = require_session(request)
    account_id = await account_id_of(request, session)
    if account_id is None:
        raise HTTPException(404)
    return SignedIn(session, account_id)

"""Who is calling the management API: a signed-in browser (its session cookie; its CSRF token is
checked by the web half's middleware on every change), or a management key sent as
`Authorization: Bearer rk_mgmt_...` with no cookie involved.

A request that carries an Authorization header is authenticated by that header alone: it never
falls back to the session (that is what lets such requests skip the CSRF check, see
`web.csrf`). A model key (`rk_live_...`) is refused: it calls models, never manages.

Every module of the management API depends on `Manager` (`from reapi_server.management.auth
import Manager`) and acts on `manager.account_id` only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from ..accounts.service import account_of
from ..api_keys.auth import client_address
from ..errors import AccountDisabled, InvalidApiKey
from ..identity.service import require_verified
from ..models import User
from ..runtime import Runtime
from ..web.context import visitor_of
from ..web.sudo import require_sudo

__all__ = ["Manager", "ManagerOf", "manager_of", "runtime_of"]


@dataclass(frozen=True, slots=True)
class ManagerOf:
    """The caller of a management endpoint: the account it manages, and how it proved it."""

    account_id: str
    #: The signed-in person (None: a management key).
    user: User | None
    #: The management key (None: a session).
    key_id: str | None

    def require_recent_authentication(self, request: Request) -> None:
        """Before minting a credential (a key, a webhook signing secret): a session must have
        authenticated in the last minutes (`web.sudo`); a management key is one already."""
        if self.user is not None:
            require_sudo(request)

    def require_verified(self) -> None:
        """Before anything that creates keys: a person must have verified their address (a
        management key was made by one who had)."""
        if self.user is not None:
            require_verified(self.user)


def runtime_of(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


async def manager_of(request: Request) -> ManagerOf:
    rt = runtime_of(request)
    authorization = request.headers.get("authorization")
    if authorization is not None:
        principal = await rt.auth.authenticate(authorization, client_address(request))
        if principal.kind != "management":
            raise InvalidApiKey(
                "an API key (rk_live_...) calls models and cannot manage keys: use a management "
                "key (rk_mgmt_...) made on the keys page"
            )
        if principal.account_disabled:
            raise AccountDisabled("this account is disabled; contact the operator of this gateway")
        # The cached principal may be up to the cache's age old: a key of an account another
        # process has just deleted or disabled must not create keys or read the account's data.
        await rt.auth.confirm(principal, rt.now())
        rt.auth.usage.saw(principal.key_id, rt.now())
        return ManagerOf(principal.account_id, None, principal.key_id)
    session = visitor_of(request).session
    if session is None:
        raise InvalidApiKey(
            "sign in, or send a management key as `Authorization: Bearer rk_mgmt_...`",
            code="missing_api_key",
        )
    async with rt.db.read() as db_session:
        account = await account_of(db_session, session.user.id)
    if account is None:
        raise InvalidApiKey("this user has no account", code="missing_api_key")
    if account.disabled_at is not None:
        raise AccountDisabled("this account is disabled; contact the operator of this gateway")
    return ManagerOf(account.id, session.user, None)


#: The dependency every management endpoint takes.
Manager = Annotated[ManagerOf, Depends(manager_of)]

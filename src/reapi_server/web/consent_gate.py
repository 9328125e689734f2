"""A person whose account an operator made (`reapi-server accounts create`) was never asked
what both ways of signing up ask: that they are 16 or older, and that they accept the terms and
the privacy policy. Their session waits for it (`CurrentSession.consent_due`: a pending visitor,
signed in to no page) until they confirm both on the consent page: every other page sends them
there, and they come back once done. The legal pages stay readable (the boxes link to them) and
signing out works; the management API answers to keys, not sessions.

The person's rights over their data need no acceptance (`serves_data_rights`): downloading it,
deleting the account, and the confirmation either may ask first. Someone who will not accept a
policy's new version, or whose account an operator made and who is not 16, must still be able
to take their data and leave, without saying yes to what they refuse.
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.responses import RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from .context import Visitor
from .sudo import CONFIRM_PAGE

__all__ = ["CONSENT_PAGE", "ConsentGate", "serves_data_rights"]

CONSENT_PAGE = "/login/consent"
_OPEN = frozenset({CONSENT_PAGE, "/logout"})
_OPEN_PREFIXES = ("/legal/",)
#: Download your data (JSON, CSV), delete your account, and the step-up both may ask first.
_DATA_RIGHTS = frozenset({"/settings/delete", CONFIRM_PAGE})
_DATA_RIGHTS_PREFIXES = ("/settings/data/",)


def serves_data_rights(path: str) -> bool:
    """A page of the person's rights over their data: a session still owing its consent is a
    session there (see the module)."""
    return path in _DATA_RIGHTS or path.startswith(_DATA_RIGHTS_PREFIXES)


class ConsentGate:
    def __init__(self, app: ASGIApp, *, key_prefixes: tuple[str, ...] = ()) -> None:
        self.app = app
        #: Paths whose requests are authenticated by a key, never by the session.
        self.key_prefixes = key_prefixes

    def _open(self, path: str) -> bool:
        return (
            path in _OPEN
            or path.startswith(_OPEN_PREFIXES + self.key_prefixes)
            or serves_data_rights(path)
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        visitor: Visitor | None = scope.get("state", {}).get("visitor")
        pending = visitor.pending if visitor is not None else None
        if pending is None or not pending.consent_due or self._open(scope["path"]):
            await self.app(scope, receive, send)
            return
        target = CONSENT_PAGE
        if scope["method"] in ("GET", "HEAD"):  # back to this page once done
            query = scope["query_string"].decode("latin-1")
            target += "?" + urlencode({"next": scope["path"] + ("?" + query if query else "")})
        await RedirectResponse(target, status_code=303)(scope, receive, send)

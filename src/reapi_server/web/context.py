"""What the web half holds once (`WebContext`, on the sub-application's state) and what it
knows about each request's browser (`Visitor`, on the request's scope)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.requests import HTTPConnection

from ..accounts.personal_data import PersonalData
from ..config import Settings
from ..db import Database
from ..derived_keys import keyed_digest
from ..email.subscriptions import Subscriptions
from ..identity.service import CurrentSession, Identity
from ..identity.sessions import Client
from ..links import Links
from ..models import User
from ..oauth.service import OAuthSignIn
from ..runtime import Runtime
from .cookies import CookiePolicy
from .embeds import Embeds
from .turnstile import Turnstile

__all__ = ["Visitor", "WebContext", "client_of", "runtime_of", "visitor_of", "web_of"]


@dataclass(frozen=True, slots=True)
class WebContext:
    settings: Settings
    db: Database
    identity: Identity
    cookies: CookiePolicy
    links: Links
    #: Derived from the installation secret for CSRF tokens only.
    csrf_key: bytes
    #: Origins whose form posts are accepted (this gateway's own).
    origins: frozenset[str]
    #: Upstream provider name → base URL (for the subprocessors in the privacy policy).
    providers: dict[str, str]
    clock: Callable[[], float]
    #: The newsletter choice and its one-click unsubscribe links.
    subscriptions: Subscriptions
    #: Sign-in with GitHub and Google (providers only when configured).
    oauth: OAuthSignIn
    #: Export and deletion of a person's data (Settings → Data).
    personal_data: PersonalData
    #: The gateway's runtime: its catalog, router and key cache, for pages about them.
    runtime: Runtime
    #: Turnstile and the chat widget, when the operator enabled them.
    embeds: Embeds = field(default_factory=Embeds)
    turnstile: Turnstile | None = None


@dataclass(slots=True)
class Visitor:
    """The browser behind a request: signed in (`session`) or not, and its browser id (the
    CSRF cookie's value) that anonymous forms are bound to."""

    session: CurrentSession | None
    browser_id: str
    #: The browser id was made for this request: the response sets the cookie.
    new_browser_id: bool = False
    #: The request carried a session cookie that no longer works: the response clears it.
    stale_session_cookie: bool = False
    #: The session cookie as sent (valid or not): a sign-in ends the session it names.
    session_cookie: str | None = None
    #: A sign-in waiting for its second factor, or a session whose person has still to confirm
    #: what a sign-up asks (`CurrentSession.consent_due`): good for the code page, or the
    #: consent page (`ConsentGate` sends every other page there), only. `session` is None
    #: meanwhile, so no page treats the browser as signed in.
    pending: CurrentSession | None = None

    @property
    def user(self) -> User | None:
        return self.session.user if self.session is not None else None

    def csrf_token(self, key: bytes) -> str:
        """Bound to the session when signed in, to the browser id before: a token lifted
        from one browser is worth nothing in another."""
        if self.session is not None:
            return keyed_digest(key, "csrf:" + self.session.token)
        if self.pending is not None:
            return keyed_digest(key, "csrf-pending:" + self.pending.token)
        return keyed_digest(key, "csrf-anon:" + self.browser_id)


def web_of(connection: HTTPConnection) -> WebContext:
    context: WebContext = connection.app.state.web
    return context


def runtime_of(connection: HTTPConnection) -> Runtime:
    """The gateway's runtime (storage, catalog, router), for pages that need more than the
    web context: the dashboard's outputs and usage."""
    runtime: Runtime = connection.app.state.runtime
    return runtime


def visitor_of(connection: HTTPConnection) -> Visitor:
    visitor: Visitor = connection.scope["state"]["visitor"]
    return visitor


def client_of(connection: HTTPConnection) -> Client:
    address = connection.client.host if connection.client is not None else ""
    return Client(address, connection.headers.get("user-agent", "")).trimmed()

"""The web half: a sub-application mounted at "/" after the API's routes.

Its middleware (security headers, the visitor's session and browser id, CSRF) wraps only this
sub-application, so none of it runs for /v1: the API never reads a cookie. `mount_web` keeps
every path of the API surface (/v1 and below, /healthz, /readyz, the OpenAPI pages, /metrics
for the holder of its token) out of the mount, so an unknown /v1 path or a wrong method still
gets the API's own JSON answer.
"""

from __future__ import annotations

import ipaddress
from importlib import resources

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..accounts.personal_data import PersonalData
from ..config import Settings
from ..derived_keys import derive_key
from ..email.compose import MailComposer
from ..email.subscriptions import Subscriptions
from ..email.unsubscribe import unsubscribe_key
from ..errors import GatewayError
from ..identity.keys import IdentityKeys
from ..identity.service import Identity, IdentityConfig
from ..identity.sessions import SessionPolicy
from ..identity.throttle import Throttle
from ..json_api.errors import error_response
from ..legal.documents import policy_versions
from ..links import Links
from ..management.app import PREFIX as MANAGEMENT_PREFIX
from ..management.app import create_management_app
from ..oauth import configured_providers
from ..oauth.service import OAuthSignIn
from ..observability.fastapi_telemetry import fastapi_without_telemetry
from ..observability.middleware import note_code
from ..runtime import Runtime
from .admin_gate import AdminGate
from .consent_gate import ConsentGate
from .context import WebContext
from .cookies import CookiePolicy
from .csrf import CsrfMiddleware
from .embeds import Embeds
from .forms import retry_headers
from .guards import SignInRequired
from .pages import (
    admin,
    admin_billing,
    admin_promo,
    alerts,
    auth,
    billing,
    confirm_access,
    consent,
    dashboard,
    data,
    email_change,
    keys,
    legal,
    notifications,
    oauth,
    outputs,
    promo,
    settings,
    site,
    two_factor,
    unsubscribe,
    usage,
)
from .security import SecurityHeadersMiddleware
from .templates import render
from .turnstile import Turnstile
from .visitor import VisitorMiddleware

__all__ = ["PAGES", "build_context", "create_web_app"]

_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")

#: The page modules, each with its `router`: a new area of the web half adds its module here.
PAGES = (
    site,
    auth,
    oauth,
    settings,
    two_factor,
    confirm_access,
    consent,
    email_change,
    notifications,
    alerts,
    data,
    legal,
    unsubscribe,
    keys,
    billing,
    promo,
    admin,
    admin_billing,
    admin_promo,
    dashboard,
    usage,
    outputs,
)


def _is_local(host: str) -> bool:
    if host in ("", "localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def _origins(links: Links, settings: Settings) -> frozenset[str]:
    """This gateway's origin. With no public address and a loopback or wildcard bind (the
    demo), also the loopback names a browser may reach it by."""
    origins = {links.origin}
    if settings.public_base_url is None and _is_local(settings.host):
        origins.update(f"http://{name}:{settings.port}" for name in _LOOPBACK_NAMES)
    return frozenset(origins)


def build_context(rt: Runtime) -> WebContext:
    settings = rt.settings
    links = Links.from_settings(settings)
    root = rt.fingerprint_secret
    policy = SessionPolicy.from_settings(settings)
    identity = Identity(
        rt.db,
        config=IdentityConfig(
            sessions=policy,
            policy_versions=policy_versions(settings.legal_dir),
            site_name=settings.site_name,
        ),
        mail=MailComposer.from_settings(settings),
        throttle=Throttle(derive_key(root, "throttle")),
        clock=rt.now,
        keys=IdentityKeys.derive(root),
    )
    embeds = Embeds.from_settings(settings)
    return WebContext(
        settings=settings,
        db=rt.db,
        identity=identity,
        cookies=CookiePolicy(
            secure=links.is_https,
            session_seconds=int(policy.absolute_seconds),
            third_party=tuple(embeds.cookies()),
        ),
        links=links,
        csrf_key=derive_key(root, "csrf"),
        origins=_origins(links, settings),
        providers={name: c.base_url for name, c in rt.core.connections.items()},
        clock=rt.now,
        subscriptions=Subscriptions(
            rt.db,
            key=unsubscribe_key(root),
            offered=settings.newsletter_default != "off",
        ),
        oauth=OAuthSignIn(identity, configured_providers(settings), links),
        personal_data=PersonalData.for_runtime(rt),
        runtime=rt,
        embeds=embeds,
        turnstile=_turnstile(settings),
    )


def _turnstile(settings: Settings) -> Turnstile | None:
    if settings.turnstile_site_key is None or settings.turnstile_secret_key is None:
        return None
    return Turnstile(
        settings.turnstile_site_key,
        settings.turnstile_secret_key.get_secret_value(),
        settings.turnstile_verify_url,
    )


def _not_found(request: Request) -> Response:
    note_code(request.scope, "http_404")
    return render(
        request,
        "error.html",
        status=404,
        title="Page not found",
        message="There is no page at this address.",
    )


async def _not_found_page(request: Request) -> Response:
    return _not_found(request)


def _install_error_pages(app: FastAPI) -> None:
    async def sign_in_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequired)
        return RedirectResponse(f"/login?next={exc.next_url}", status_code=303)

    # A page's access log line carries the code the API's JSON would (`json_api.errors`).
    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        note_code(request.scope, f"http_{exc.status_code}")
        if "visitor" not in request.scope.get("state", {}):
            # A static file (no visitor is made for those): no page to render, a bare status.
            return Response(status_code=exc.status_code, headers=exc.headers)
        if exc.status_code == 404:
            return _not_found(request)
        return render(
            request,
            "error.html",
            status=exc.status_code,
            title="Something is not right",
            message="This request cannot be handled.",
        )

    async def gateway_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, GatewayError)
        note_code(request.scope, exc.code)
        return render(
            request,
            "error.html",
            status=exc.http_status,
            headers=retry_headers(exc),
            title="Something is not right",
            message=exc.message,
        )

    async def server_error(request: Request, exc: Exception) -> Response:
        note_code(request.scope, "internal_error")
        return render(
            request,
            "error.html",
            status=500,
            title="Something went wrong",
            message="We could not handle this request. Try again in a moment.",
        )

    app.add_exception_handler(SignInRequired, sign_in_required)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(GatewayError, gateway_error)


class _ServerErrorPage:
    """An unexpected error becomes the 500 page, inside the security headers (Starlette's
    own handler sits outside every middleware). The error goes on up, to be logged by type."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception:
            if scope["type"] == "http" and not started:
                response = render(
                    Request(scope, receive),
                    "error.html",
                    status=500,
                    title="Something went wrong",
                    message="We could not handle this request. Try again in a moment.",
                )
                await response(scope, receive, send)
            raise


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int) -> None:
    request = Request(scope, receive)
    # The access log line says why, for a page as for the API's JSON (its ErrorAnswer says it).
    note_code(scope, "request_too_large" if status == 413 else "csrf_failed")
    if request.url.path.startswith(MANAGEMENT_PREFIX + "/"):  # an API: JSON, never a page
        if status == 413:
            refusal = error_response(413, "the request body is too large", code="request_too_large")
        else:
            refusal = error_response(
                403,
                "send the page's CSRF token as X-CSRF-Token, or authenticate with a management "
                "key instead of the session",
                code="csrf_failed",
            )
        await refusal(scope, receive, send)
        return
    if status == 413:
        response = render(
            request,
            "error.html",
            status=413,
            title="Too much data",
            message="This form sent more than it should. Go back and try again.",
        )
    else:
        response = render(
            request,
            "error.html",
            status=403,
            title="This form has expired",
            message="This form is out of date or was sent from another site. Go back, "
            "reload the page and try again.",
        )
    await response(scope, receive, send)


def create_web_app(rt: Runtime) -> FastAPI:
    web = build_context(rt)
    app = fastapi_without_telemetry(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.web = web
    app.state.runtime = rt
    app.mount(
        "/static",
        StaticFiles(directory=str(resources.files("reapi_server.web").joinpath("static"))),
        name="static",
    )
    management = create_management_app(rt)
    management.state.web = web  # its session callers are the web half's (`web.sudo`)
    app.mount(MANAGEMENT_PREFIX, management)
    for module in PAGES:
        app.include_router(module.router)
    _install_error_pages(app)
    app.add_middleware(AdminGate, not_found=_not_found_page)
    app.add_middleware(ConsentGate, key_prefixes=(MANAGEMENT_PREFIX + "/",))
    app.add_middleware(
        CsrfMiddleware, web=web, refuse=_refuse, bearer_prefixes=(MANAGEMENT_PREFIX + "/",)
    )
    app.add_middleware(VisitorMiddleware, web=web)
    app.add_middleware(_ServerErrorPage)
    app.add_middleware(SecurityHeadersMiddleware, https=web.links.is_https, csp=web.embeds.csp())
    return app

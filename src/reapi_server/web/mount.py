"""Where the web half sits in the gateway: mounted at "/" after every route of the API, and
built by its first request rather than at start-up.

Its pages, templates, sign-in, two-factor, billing and mail code (Jinja2, markdown-it, argon2,
pyotp, segno, httpx2, ~6 MiB resident) are loaded then, so a gateway that only serves /v1 never
holds them. The build is synchronous: the first request builds it without awaiting anything,
so two first requests at once cannot both build (the second finds it built); the event loop
pauses for it once, a few hundred milliseconds. What could make the build fail on a
configuration (the policy documents' versions) is read at start-up, so a bad setting still stops
the start.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from fastapi import FastAPI
from starlette.datastructures import State
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import Receive, Scope, Send

from ..legal.documents import policy_versions

if TYPE_CHECKING:
    from ..runtime import Runtime

__all__ = ["API_PREFIX", "LazyWebApp", "mount_web"]

#: Everything under this belongs to the API, never to the web half.
API_PREFIX = "/v1"


class LazyWebApp:
    """The web half's application, built when first called or first looked into (`state`)."""

    def __init__(self, build: Callable[[], FastAPI]) -> None:
        self._build = build
        self._app: FastAPI | None = None

    @property
    def app(self) -> FastAPI:
        if self._app is None:
            self._app = self._build()  # no await before this assignment: built once
        return self._app

    @property
    def state(self) -> State:
        return self.app.state

    @property
    def routes(self) -> list[BaseRoute]:
        """What the mount lists (a name looked up with `url_path_for` from the API's side)."""
        return self.app.routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


class _WebMount(Mount):
    """Mount("/") that never takes a request meant for the API: nothing under /v1, and no
    path an API route has (a wrong method there is the API's 405, not a web page)."""

    def __init__(self, app: LazyWebApp, api_routes: list[BaseRoute]) -> None:
        super().__init__("", app=app)
        self.api_routes = api_routes

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path: str = scope.get("path", "")
        if path == API_PREFIX or path.startswith(API_PREFIX + "/"):
            return Match.NONE, {}
        for route in self.api_routes:
            if route is not self and route.matches(scope)[0] != Match.NONE:
                return Match.NONE, {}
        return super().matches(scope)


def mount_web(api: FastAPI, rt: Runtime) -> None:
    """Mount the web half on `api`, after (and below) every route of the API."""
    policy_versions(rt.settings.legal_dir)  # a broken policy document stops the start

    def build() -> FastAPI:
        from .app import create_web_app

        return create_web_app(rt)

    api.router.routes.append(_WebMount(LazyWebApp(build), api.router.routes))

"""The management API's application, mounted at /api inside the web half: its cookies, CSRF
check and security headers apply, its errors are JSON in OpenAI's shape (never a page).

A module that adds endpoints adds its router to `ROUTERS`; each endpoint takes
the `Manager` dependency (`management.auth`)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from ..json_api.errors import install_error_handlers
from ..observability.fastapi_telemetry import fastapi_without_telemetry
from ..runtime import Runtime
from . import balance, keys, usage

__all__ = ["PREFIX", "ROUTERS", "create_management_app"]

#: Where the web half mounts this application.
PREFIX = "/api"

ROUTERS: tuple[APIRouter, ...] = (keys.router, balance.router, usage.router)


def create_management_app(rt: Runtime) -> FastAPI:
    app = fastapi_without_telemetry(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.runtime = rt
    for router in ROUTERS:
        app.include_router(router)
    install_error_handlers(app)
    return app

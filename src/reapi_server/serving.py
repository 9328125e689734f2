"""Running the gateway under uvicorn (uvloop event loop, httptools parser)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from fastapi import FastAPI

from . import admin
from .app import create_app
from .config import Settings
from .observability.logging import configure_logging

__all__ = ["run_server"]


def run_server(settings: Settings, app_instance: FastAPI | None = None) -> None:
    import uvicorn  # imported here: administration commands do not need it

    configure_logging(settings.log_level, json_lines=settings.log_json)
    asyncio.run(admin.migrate(settings))
    settings.fingerprint_secret()  # created once here, not raced by the workers
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "loop": "uvloop",
        "http": "httptools",
        "log_config": None,
        "access_log": False,
        "proxy_headers": True,
    }
    if app_instance is not None or settings.workers <= 1:
        uvicorn.run(app_instance or create_app(settings, migrate=False), **common)
        return
    # Workers import the app themselves and read the same settings from the environment.
    os.environ["REAPI_DATA_DIR"] = str(settings.data_dir)
    os.environ["REAPI_DATABASE_URL"] = settings.resolved_database_url
    uvicorn.run(
        "reapi_server.app:app_from_environment", factory=True, workers=settings.workers, **common
    )

"""reapi gateway server: the OpenAI-compatible /v1 API with keys, credits, usage and async jobs.

`create_app()` builds the ASGI application; `reapi-server` (see `reapi_server.cli`) runs it.
Both are imported on first use, so that the `reapi-server` command can name the missing extra
(`pip install 'reapi[server]'`) before anything needs it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

# httpx imports its command-line client with the package whenever click, rich and pygments are
# installed (typer brings rich): ~3 MiB resident in every gateway process, which never runs it.
# Marked absent, httpx falls back to the stub it has for an install without `httpx[cli]`. No
# effect when httpx is already imported (the process then keeps what it has).
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

if TYPE_CHECKING:
    from .app import create_app
    from .config import Settings

__all__ = ["Settings", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "Settings":
        from .config import Settings

        return Settings
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

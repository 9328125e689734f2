"""reapi gateway server: the OpenAI-compatible /v1 API with keys, credits, usage and async jobs.

`create_app()` builds the ASGI application; `reapi-server` (see `reapi_server.cli`) runs it.
"""

from .app import create_app
from .config import Settings

__all__ = ["Settings", "create_app"]

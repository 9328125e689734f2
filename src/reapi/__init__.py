"""reapi: one OpenAI-compatible API for every major image and video model.

Failover between upstream providers in well under a second, and zero retention of request bodies.

The errors are imported at once; every other name from its module on first use (PEP 562), so
`from reapi import ReapiError` does not load the client, its resources and their dependencies:
a gateway process that uses the engine, the catalog and the router never holds the client side.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

# The errors are a small module of plain classes, and every use of reapi raises or catches them.
from ._exceptions import (
    APIConnectionError,
    APIResponseError,
    APIStatusError,
    APITimeoutError,
    AttemptSummary,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ContentPolicyError,
    InsufficientCreditsError,
    InternalServerError,
    InvalidRequestError,
    JobFailedError,
    ModelNotFoundError,
    NoRouteAvailableError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    ReapiError,
    RouteRefusedError,
    WebhookVerificationError,
)
from ._version import __version__

if TYPE_CHECKING:
    from . import webhooks
    from ._client import AsyncReAPI, ReAPI
    from ._payload import File, Payload
    from ._urls import UrlPolicy
    from .catalog import Catalog, load_catalog
    from .router import BreakerPolicy, BreakerStore, HedgePolicy, InMemoryBreakerStore, RouterConfig
    from .types import BinaryContent, Image, ImagesResponse, Model, ModelList, Video, VideoList
    from .webhooks import Webhook

__all__ = [
    "APIConnectionError",
    "APIResponseError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncReAPI",
    "AttemptSummary",
    "AuthenticationError",
    "BadRequestError",
    "BinaryContent",
    "BreakerPolicy",
    "BreakerStore",
    "Catalog",
    "ConfigurationError",
    "ContentPolicyError",
    "File",
    "HedgePolicy",
    "Image",
    "ImagesResponse",
    "InMemoryBreakerStore",
    "InsufficientCreditsError",
    "InternalServerError",
    "InvalidRequestError",
    "JobFailedError",
    "Model",
    "ModelList",
    "ModelNotFoundError",
    "NoRouteAvailableError",
    "NotFoundError",
    "Payload",
    "PermissionDeniedError",
    "QuotaExceededError",
    "RateLimitError",
    "ReAPI",
    "ReapiError",
    "RouteRefusedError",
    "RouterConfig",
    "UrlPolicy",
    "Video",
    "VideoList",
    "Webhook",
    "WebhookVerificationError",
    "__version__",
    "load_catalog",
    "webhooks",
]

#: Where each public name lives (module relative to this package; "" for a submodule itself).
_HOMES = {
    "webhooks": "",
    "AsyncReAPI": "._client",
    "ReAPI": "._client",
    "File": "._payload",
    "Payload": "._payload",
    "UrlPolicy": "._urls",
    "Catalog": ".catalog",
    "load_catalog": ".catalog",
    **dict.fromkeys(
        ("BreakerPolicy", "BreakerStore", "HedgePolicy", "InMemoryBreakerStore", "RouterConfig"),
        ".router",
    ),
    **dict.fromkeys(
        ("BinaryContent", "Image", "ImagesResponse", "Model", "ModelList", "Video", "VideoList"),
        ".types",
    ),
    "Webhook": ".webhooks",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = import_module("." + name if home == "" else home, __name__)
    if home != "":
        value = getattr(value, name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

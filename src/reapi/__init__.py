"""reapi: one OpenAI-compatible API for every major image and video model.

Failover between upstream providers in well under a second, and zero retention of request bodies.
"""

from . import webhooks
from ._client import AsyncReAPI, ReAPI
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
from ._payload import File, Payload
from ._urls import UrlPolicy
from ._version import __version__
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

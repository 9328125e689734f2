import reapi

# Pinned: a change here is a change to the public API and belongs in the changelog.
EXPECTED = {
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
}


def test_public_api_is_pinned():
    assert set(reapi.__all__) == EXPECTED
    for name in reapi.__all__:
        assert hasattr(reapi, name)

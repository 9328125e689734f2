import traceback

import reapi
from reapi import (
    APIConnectionError,
    APITimeoutError,
    ContentPolicyError,
    NoRouteAvailableError,
    RateLimitError,
    ReapiError,
)
from reapi._exceptions import AttemptSummary


def test_one_root_and_connection_errors_apart_from_status_errors():
    for name in reapi.__all__:
        obj = getattr(reapi, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, ReapiError), name
    assert issubclass(APITimeoutError, APIConnectionError)
    assert not issubclass(APIConnectionError, reapi.APIStatusError)


def test_stable_codes_and_retryable_flags():
    assert APITimeoutError("t").code == "upstream_timeout"
    assert APITimeoutError("t").retryable
    assert ContentPolicyError("c").code == "content_policy_violation"
    assert not ContentPolicyError("c").retryable
    assert RateLimitError("r", retry_after=2.0).retry_after == 2.0


def test_repr_and_traceback_carry_metadata_only():
    error = RateLimitError(
        "openai answered HTTP 429", provider="openai", status=429, retry_after=1.0
    )
    text = repr(error) + str(error) + "".join(traceback.format_exception(error))
    assert "openai" in text and "429" in text


def test_exhausted_error_takes_the_status_class_of_the_last_failure():
    attempt = AttemptSummary("a", "a/m", "upstream_timeout", None, 800.0)
    timeout = NoRouteAvailableError("x", attempts=(attempt,), last_error=APITimeoutError("t"))
    assert timeout.http_status == 504
    limited = NoRouteAvailableError("x", last_error=RateLimitError("r"))
    assert limited.http_status == 429
    assert NoRouteAvailableError("x").http_status == 503

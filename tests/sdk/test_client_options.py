"""Client options as openai-python has them: timeout, max_retries, default and extra headers,
extra query and body, with_options and with_raw_response; retries in gateway mode."""

import time

import httpx
import pytest
from tests.sdk.scripted_gateway import error_answer, image_answer, serve, video

from reapi import (
    APITimeoutError,
    AsyncReAPI,
    ConfigurationError,
    InternalServerError,
    InvalidRequestError,
    RateLimitError,
    ReAPI,
    ReapiError,
)
from reapi._gateway import GatewayProtocols
from reapi._options import CallOptions
from reapi._secret import Secret
from reapi.testing import Fault


def gateway_client(server, **options) -> ReAPI:
    return ReAPI(base_url=server.base_url + "/v1", api_key="rk_test", **options)


def test_headers_query_and_body_extras_reach_the_gateway():
    server, app = serve(image_answer())
    with server, gateway_client(server, default_headers={"X-Team": "a", "X-Env": "dev"}) as client:
        client.images.generate(
            model="gpt-image-2",
            prompt="p",
            extra_headers={"X-Env": "prod"},
            extra_query={"trace": "1"},
            extra_body={"webhook_url": "https://hooks.example/x", "n": 2},
        )
    seen = app.seen[0]
    assert seen.headers["x-team"] == "a" and seen.headers["x-env"] == "prod"
    assert seen.headers["authorization"] == "Bearer rk_test"
    assert seen.query == {"trace": ["1"]}
    assert seen.json()["webhook_url"] == "https://hooks.example/x"
    assert seen.json()["n"] == 2  # an extra wins over the field it names, as in openai-python


def test_extra_body_goes_into_multipart_edits():
    server, app = serve(image_answer())
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 16
    with server, gateway_client(server) as client:
        client.images.edit(model="gpt-image-2", prompt="p", image=png, extra_body={"tag": "t"})
    assert b'name="tag"\r\n\r\nt\r\n' in app.seen[0].body


def test_retries_honour_retry_after_and_reuse_one_idempotency_key():
    server, app = serve(
        error_answer(429, "rate_limit_exceeded", **{"retry-after": "1"}),
        error_answer(503, "database_unavailable", **{"retry-after": "0"}),
        image_answer(),
    )
    with server, gateway_client(server) as client:
        started = time.monotonic()
        result = client.with_raw_response.images.generate(model="gpt-image-2", prompt="p")
        took = time.monotonic() - started
    assert result.retries_taken == 2 and result.parse().data[0].b64_json
    assert 1.0 <= took < 3.0  # Retry-After: 1, then 0
    keys = {seen.headers.get("idempotency-key") for seen in app.seen}
    assert len(app.seen) == 3 and len(keys) == 1 and next(iter(keys)).startswith("reapi-sdk-")


def test_a_key_in_progress_is_retried_but_another_conflict_is_not():
    server, app = serve(error_answer(409, "idempotency_key_in_progress"), image_answer())
    with server, gateway_client(server) as client:
        client.images.generate(model="gpt-image-2", prompt="p", idempotency_key="k1")
    assert len(app.seen) == 2 and app.seen[1].headers["idempotency-key"] == "k1"

    server, app = serve(error_answer(409, "invalid_request"), image_answer())
    with server, gateway_client(server) as client, pytest.raises(InvalidRequestError):
        client.images.generate(model="gpt-image-2", prompt="p")
    assert len(app.seen) == 1


def test_a_key_in_extra_headers_is_the_one_key_sent():
    server, app = serve(error_answer(502, "upstream_unavailable"), image_answer())
    with server, gateway_client(server) as client:
        client.images.generate(model="m", prompt="p", extra_headers={"idempotency-key": "mine"})
    assert [s.headers["idempotency-key"] for s in app.seen] == ["mine", "mine"]
    # One header, not the caller's and the SDK's side by side (a server would see "mine, mine").
    call = CallOptions(headers={"idempotency-key": "mine"})
    request = GatewayProtocols("http://gw/v1", Secret("rk"))._request(
        "POST", "videos", call, json_body={}, idempotency_key=call.idempotency_key(None)
    )
    assert [k for k in request.headers if k.lower() == "idempotency-key"] == ["Idempotency-Key"]


def test_a_create_without_an_idempotency_key_is_never_retried():
    server, app = serve(error_answer(500, "internal_error"), image_answer())
    with server, gateway_client(server, max_retries=0) as client:
        with pytest.raises(InternalServerError):
            client.images.generate(model="gpt-image-2", prompt="p")
        assert "idempotency-key" not in app.seen[0].headers
        # with_options: the same pool, retries on again, and so a key again.
        client.with_options(max_retries=1).images.generate(model="gpt-image-2", prompt="p")
    assert len(app.seen) == 2 and "idempotency-key" in app.seen[1].headers


def test_reads_are_retried_on_connection_errors_and_give_up_after_max_retries():
    server, app = serve((200, {}, {"object": "list", "data": []}))
    with server, gateway_client(server, max_retries=2) as client:
        server.faults.set(Fault.RESET, count=2)
        assert client.models.list().data == []
        assert len(app.seen) == 1  # the two reset requests never reached the app
        server.faults.set(Fault.ERROR_500)
        started = time.monotonic()
        with pytest.raises(InternalServerError):
            client.with_options(max_retries=1).models.list()
        assert time.monotonic() - started < 1.0  # one backoff of at most 0.5 s


def test_timeout_per_client_and_per_call():
    server, _ = serve(image_answer())
    with server, gateway_client(server, timeout=0.3, max_retries=0) as client:
        server.faults.set(Fault.HANG)
        started = time.monotonic()
        with pytest.raises(APITimeoutError):
            client.models.list()
        assert time.monotonic() - started < 1.5
        started = time.monotonic()
        with pytest.raises(APITimeoutError):
            client.models.list(timeout=0.1)
        assert time.monotonic() - started < 0.3 + 0.5
        assert client.timeout == 0.3 and client.with_options(timeout=5).timeout == 5


def test_timeout_takes_an_httpx_timeout_as_openai_python_does():
    """Its `read` part is the deadline (the wait for each byte), on the client, with_options
    and per call; `connect` alone cannot shorten it."""
    server, _ = serve(image_answer())
    with server, gateway_client(server, timeout=httpx.Timeout(0.3, connect=5.0)) as client:
        assert client.timeout == 0.3
        assert client.with_options(timeout=httpx.Timeout(60.0, connect=2.0)).timeout == 60.0
        server.faults.set(Fault.HANG)
        started = time.monotonic()
        with pytest.raises(APITimeoutError):
            client.with_options(max_retries=0).models.list()
        assert time.monotonic() - started < 1.5
        started = time.monotonic()
        with pytest.raises(APITimeoutError):
            client.with_options(timeout=30, max_retries=0).models.list(
                timeout=httpx.Timeout(10.0, read=0.1)
            )
        assert time.monotonic() - started < 0.3 + 0.5


async def test_async_timeout_takes_an_httpx_timeout():
    server, _ = serve(image_answer())
    with server:
        async with AsyncReAPI(
            base_url=server.base_url + "/v1",
            api_key="rk",
            timeout=httpx.Timeout(30.0),
            max_retries=0,
        ) as client:
            assert client.timeout == 30.0
            assert client.with_options(timeout=httpx.Timeout(None, connect=4.0)).timeout == 4.0
            server.faults.set(Fault.HANG)
            started = time.monotonic()
            with pytest.raises(APITimeoutError):
                await client.models.list(timeout=httpx.Timeout(0.1))
            assert time.monotonic() - started < 0.3 + 0.5


def test_an_httpx_timeout_without_any_deadline_is_refused(catalog):
    with pytest.raises(ConfigurationError, match=r"httpx.Timeout\(None\) sets no deadline"):
        ReAPI(catalog=catalog, provider_keys={"primary": "k"}, timeout=httpx.Timeout(None))
    client = ReAPI(catalog=catalog, provider_keys={"primary": "k"})
    with pytest.raises(InvalidRequestError, match="sets no deadline") as info:
        client.images.generate(model="gpt-image-2", prompt="p", timeout=httpx.Timeout(None))
    assert info.value.param == "timeout"


def test_raw_response_has_status_headers_and_request_id():
    server, _ = serve(image_answer())
    with server, gateway_client(server) as client:
        raw = client.with_raw_response.images.generate(model="gpt-image-2", prompt="p")
    assert raw.status_code == 200 and raw.request_id == "req_1"
    assert raw.headers["Content-Type"] == "application/json" and raw.retries_taken == 0
    assert raw.parse().data[0].b64_json


async def test_async_raw_response_and_extras():
    server, app = serve((200, {"x-request-id": "req_v"}, video("video_1", "queued")))
    with server:
        async with AsyncReAPI(
            base_url=server.base_url + "/v1", api_key="rk", default_headers={"X-A": "1"}
        ) as client:
            raw = await client.with_raw_response.videos.retrieve(
                "video_1", extra_headers={"X-B": "2"}
            )
            assert raw.request_id == "req_v" and raw.parse().status == "queued"
            created = await client.videos.create(model="m", prompt="p", extra_body={"x": 1})
    assert created.id == "video_1"
    assert app.seen[0].headers["x-a"] == "1" and app.seen[0].headers["x-b"] == "2"
    assert app.seen[1].json()["x"] == 1 and "idempotency-key" in app.seen[1].headers


def test_in_process_refuses_what_only_a_gateway_can_take(catalog):
    with pytest.raises(ConfigurationError, match="default_headers needs gateway mode"):
        ReAPI(catalog=catalog, provider_keys={"primary": "k"}, default_headers={"X": "1"})
    client = ReAPI(catalog=catalog, provider_keys={"primary": "k"})
    with pytest.raises(InvalidRequestError, match="extra_body needs gateway mode") as info:
        client.images.generate(model="gpt-image-2", prompt="p", extra_body={"x": 1})
    assert info.value.param == "extra_body"
    with pytest.raises(ConfigurationError, match="with_raw_response needs gateway mode"):
        client.with_raw_response
    with pytest.raises(ConfigurationError, match="max_retries"):
        ReAPI(catalog=catalog, provider_keys={"primary": "k"}, max_retries=-1)


def test_a_retry_after_over_a_minute_is_not_slept_on():
    server, app = serve(error_answer(429, "rate_limit_exceeded", **{"retry-after": "600"}))
    with server, gateway_client(server, max_retries=1) as client:
        started = time.monotonic()
        with pytest.raises(RateLimitError) as info:
            client.images.generate(model="gpt-image-2", prompt="p")
    assert time.monotonic() - started < 1.0  # backoff instead; the caller gets the hint
    assert info.value.retry_after == 600 and len(app.seen) == 2


@pytest.mark.parametrize(
    ("status", "code", "retried"),
    [
        (408, "request_timeout", True),
        (409, "idempotency_key_in_progress", True),
        (409, "invalid_request", False),
        (429, "rate_limit_exceeded", True),
        (500, "internal_error", True),
        (503, "database_unavailable", True),
        (400, "invalid_value", False),
        (401, "invalid_api_key", False),
        (402, "insufficient_credits", False),
        (404, "model_not_found", False),
    ],
)
def test_which_gateway_answers_are_retried(status, code, retried):
    server, app = serve(error_answer(status, code), image_answer())
    with server, gateway_client(server, max_retries=1) as client:
        try:
            client.images.generate(model="gpt-image-2", prompt="p")
        except ReapiError as error:
            assert not retried and error.status == status
    assert len(app.seen) == (2 if retried else 1)

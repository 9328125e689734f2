"""The engine and OpenAI adapter against pytest-httpx: error mapping, failover decisions."""

import base64
import json
import traceback

import httpx
import pytest

from reapi import (
    APIResponseError,
    AsyncReAPI,
    ContentPolicyError,
    NoRouteAvailableError,
    ReAPI,
    RouterConfig,
)

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()
MARKER = "MARKER-engine-5b1c"
PRIMARY = "http://primary.test/v1"
BACKUP = "http://backup.test/v1"


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "created": 1,
            "data": [{"b64_json": PNG}],
            "output_format": "png",
            "size": "1024x1024",
        },
    )


def client(catalog, **kw) -> ReAPI:
    return ReAPI(
        catalog=catalog,
        provider_keys={"primary": "sk-primary", "backup": "sk-backup"},
        provider_base_urls={"primary": PRIMARY, "backup": BACKUP},
        router=RouterConfig(first_byte_timeout=0.5),
        **kw,
    )


def test_request_fields_and_auth(httpx_mock, catalog):
    httpx_mock.add_callback(ok, url=f"{PRIMARY}/images/generations")
    result = client(catalog).images.generate(
        model="gpt-image-2", prompt=MARKER, size="1536x1024", quality="high", n=1, user="u1"
    )
    sent = httpx_mock.get_requests()[0]
    assert sent.headers["authorization"] == "Bearer sk-primary"
    assert sent.headers["idempotency-key"].startswith("reapi-")
    assert json.loads(sent.content) == {
        "model": "gpt-image-2",
        "prompt": MARKER,
        "n": 1,
        "size": "1536x1024",
        "quality": "high",
        "user": "u1",
    }
    assert result.data[0].content().startswith(b"\x89PNG")
    assert result.reapi.provider == "primary" and result.reapi.attempts == 1


@pytest.mark.parametrize(
    ("status", "body", "headers"),
    [
        (500, {"error": {"message": MARKER, "type": "server_error"}}, {}),
        (503, b"<html>" + MARKER.encode(), {}),
        (429, {"error": {"code": "rate_limit_exceeded", "message": MARKER}}, {"retry-after": "3"}),
        (429, {"error": {"code": "insufficient_quota", "message": MARKER}}, {}),
        (401, {"error": {"code": "invalid_api_key", "message": MARKER}}, {}),
        (200, b'{"created": 1, "data": [{"b64_js', {}),
    ],
)
def test_failover_on_upstream_faults(httpx_mock, catalog, status, body, headers):
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    httpx_mock.add_response(
        url=f"{PRIMARY}/images/generations", status_code=status, content=content, headers=headers
    )
    httpx_mock.add_callback(ok, url=f"{BACKUP}/images/generations")
    result = client(catalog).images.generate(model="gpt-image-2", prompt=MARKER)
    assert result.reapi.provider == "backup"
    assert result.reapi.attempts == 2
    assert MARKER not in result.model_dump_json()


def test_content_block_is_not_failed_over_and_message_is_dropped(httpx_mock, catalog):
    httpx_mock.add_response(
        url=f"{PRIMARY}/images/generations",
        status_code=400,
        json={
            "error": {
                "code": "moderation_blocked",
                "type": "image_generation_user_error",
                "message": f"Your prompt {MARKER} was blocked",
            }
        },
    )
    with pytest.raises(ContentPolicyError) as info:
        client(catalog).images.generate(model="gpt-image-2", prompt=MARKER)
    error = info.value
    assert error.provider == "primary" and error.provider_code == "moderation_blocked"
    assert MARKER not in "".join(traceback.format_exception(error)) + repr(error)
    assert len(httpx_mock.get_requests()) == 1


def test_upstream_400_echoing_prompt_is_reduced_to_a_code(httpx_mock, catalog):
    httpx_mock.add_response(
        url=f"{PRIMARY}/images/generations",
        status_code=400,
        json={
            "error": {
                "code": "invalid_value",
                "param": "prompt",
                "message": f"Invalid prompt '{MARKER}'",
            }
        },
    )
    with pytest.raises(Exception) as info:
        client(catalog).images.generate(model="gpt-image-2", prompt=MARKER)
    assert info.value.code == "upstream_invalid_request"
    assert MARKER not in "".join(traceback.format_exception(info.value))


def test_all_routes_down_reports_each_attempt(httpx_mock, catalog):
    httpx_mock.add_response(status_code=502, is_reusable=True)
    with pytest.raises(NoRouteAvailableError) as info:
        client(catalog).images.generate(model="gpt-image-2", prompt=MARKER)
    assert [a.provider for a in info.value.attempts] == ["primary", "backup"]
    assert info.value.http_status == 502


def test_rate_limited_everywhere_surfaces_retry_after(httpx_mock, catalog):
    httpx_mock.add_response(
        status_code=429,
        headers={"retry-after": "7"},
        is_reusable=True,
        json={"error": {"code": "rate_limit_exceeded"}},
    )
    with pytest.raises(NoRouteAvailableError) as info:
        client(catalog).images.generate(model="gpt-image-2", prompt=MARKER)
    assert info.value.http_status == 429 and info.value.retry_after == 7


def test_url_results_are_fetched_when_bytes_are_wanted(httpx_mock, catalog):
    httpx_mock.add_response(
        url=f"{PRIMARY}/images/generations",
        json={"created": 1, "data": [{"url": "http://cdn.test/a.png"}]},
    )
    httpx_mock.add_response(url="http://cdn.test/a.png", content=base64.b64decode(PNG))
    result = client(catalog).images.generate(model="gpt-image-2", prompt="p")
    assert result.data[0].content() == base64.b64decode(PNG)
    assert "authorization" not in httpx_mock.get_requests()[1].headers


def test_url_results_kept_as_urls_say_when_they_expire(httpx_mock, catalog):
    httpx_mock.add_response(
        url=f"{PRIMARY}/images/generations",
        json={"created": 1, "data": [{"url": "http://cdn.test/a.png"}]},
    )
    result = client(catalog).images.generate(model="gpt-image-2", prompt="p", response_format="url")
    assert result.data[0].url == "http://cdn.test/a.png"
    assert result.reapi.url_expires_at is not None


def test_not_json_everywhere_is_a_response_error(httpx_mock, catalog):
    httpx_mock.add_response(content=b"nope", is_reusable=True)
    with pytest.raises(NoRouteAvailableError) as info:
        client(catalog).images.generate(model="gpt-image-2", prompt="p")
    assert all(a.code == APIResponseError.default_code for a in info.value.attempts)


def test_edit_is_multipart_with_image_array_and_mask(httpx_mock, catalog):
    httpx_mock.add_callback(ok, url=f"{PRIMARY}/images/edits")
    png = base64.b64decode(PNG)
    client(catalog).images.edit(
        model="gpt-image-2", prompt=MARKER, image=[png, ("b.png", png)], mask=png
    )
    sent = httpx_mock.get_requests()[0]
    assert sent.headers["content-type"].startswith("multipart/form-data")
    assert sent.content.count(b'name="image[]"') == 2
    assert b'name="mask"' in sent.content


async def test_async_client_fails_over_too(httpx_mock, catalog):
    httpx_mock.add_response(url=f"{PRIMARY}/images/generations", status_code=500)
    httpx_mock.add_callback(ok, url=f"{BACKUP}/images/generations")
    async with AsyncReAPI(
        catalog=catalog,
        provider_keys={"primary": "a", "backup": "b"},
        provider_base_urls={"primary": PRIMARY, "backup": BACKUP},
    ) as aclient:
        result = await aclient.images.generate(model="gpt-image-2", prompt="p")
    assert result.reapi.provider == "backup"


def test_missing_provider_keys_name_the_environment_variables(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    from reapi import ConfigurationError

    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        ReAPI().images.generate(model="gpt-image-2", prompt="p")

"""Gemini image adapter against pytest-httpx: the documented wire format (PROVIDERS.md §3),
block detection on HTTP 200 answers, and Google's error object mapped onto failover."""

from __future__ import annotations

import base64
import json
import struct
import traceback
import zlib

import httpx
import pytest

from reapi import ContentPolicyError, InvalidRequestError, NoRouteAvailableError, ReAPI
from reapi.catalog import Catalog, default_catalog
from reapi.router import RouterConfig

PRIMARY = "http://gemini.test/v1beta"
BACKUP = "http://gemini-backup.test/v1beta"
MARKER = "MARKER-gemini-7d2e"


def png(width: int = 2, height: int = 1) -> bytes:
    """A real PNG (grey pixels) of the given size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    raw = b"".join(b"\0" + b"\x80" * width for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


IMAGE = png(1376, 768)


def answer(image: bytes = IMAGE, **extra: object) -> dict[str, object]:
    """The documented generateContent answer: a text part, then the image part."""
    body: dict[str, object] = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "Here is..."},
                        {
                            "inlineData": {
                                "mimeType": "image/png",
                                "data": base64.b64encode(image).decode(),
                            }
                        },
                    ],
                },
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 17,
            "candidatesTokenCount": 1306,
            "totalTokenCount": 1323,
            "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": 1290}],
        },
        "modelVersion": "gemini-3-pro-image-preview",
        "responseId": "r1",
    }
    body.update(extra)
    return body


def two_host_catalog() -> Catalog:
    """The shipped Gemini models, each served by `gemini` then `backup` (both Gemini API)."""
    base = default_catalog()
    models = {}
    for model_id in ("gemini-3-pro-image", "gemini-2.5-flash-image"):
        spec = base.models[model_id].model_dump(mode="json")
        # Unstreamed (`generateContent`): the streamed call has its own tests.
        first = {**spec["routes"][0], "stream_idle_timeout": None}
        spec["routes"] = [first, {**first, "provider": "backup"}]
        models[model_id] = spec
    gemini = base.providers["gemini"].model_dump(mode="json")
    return Catalog.model_validate(
        {"providers": {"gemini": gemini, "backup": gemini}, "models": models}
    )


def client(catalog: Catalog | None = None) -> ReAPI:
    return ReAPI(
        catalog=catalog or two_host_catalog(),
        provider_keys={"gemini": "g-primary", "backup": "g-backup"},
        provider_base_urls={"gemini": PRIMARY, "backup": BACKUP},
        router=RouterConfig(first_byte_timeout=0.5),
    )


def url(base: str, model: str = "gemini-3-pro-image-preview") -> str:
    return f"{base}/models/{model}:generateContent"


def google_error(code: int, status: str, *details: dict[str, object]) -> dict[str, object]:
    error: dict[str, object] = {"code": code, "message": f"echo {MARKER}", "status": status}
    if details:
        error["details"] = list(details)
    return {"error": error}


# -- the request ------------------------------------------------------------------------------
def test_generate_sends_documented_body_with_key_header(httpx_mock):
    httpx_mock.add_response(url=url(PRIMARY), json=answer())
    result = client().images.generate(model="gemini-3-pro-image", prompt=MARKER, size="2752x1536")
    sent = httpx_mock.get_requests()[0]
    assert sent.method == "POST"
    assert sent.headers["x-goog-api-key"] == "g-primary"
    assert "key=" not in str(sent.url) and "authorization" not in sent.headers
    assert json.loads(sent.content) == {
        "contents": [{"role": "user", "parts": [{"text": MARKER}]}],
        "generationConfig": {
            "responseModalities": ["TEXT", "IMAGE"],
            "imageConfig": {"aspectRatio": "16:9", "imageSize": "2K"},
        },
    }
    assert result.data[0].content() == IMAGE
    # The real pixel size, read from the PNG, and OpenAI's usage names.
    assert result.size == "1376x768" and result.output_format == "png"
    assert result.usage == {"input_tokens": 17, "output_tokens": 1306, "total_tokens": 1323}
    assert result.reapi.provider == "gemini"


def test_aspect_ratio_and_resolution_can_be_given_directly(httpx_mock):
    httpx_mock.add_response(url=url(PRIMARY), json=answer())
    client().images.generate(
        model="gemini-3-pro-image", prompt="p", aspect_ratio="21:9", resolution="4K"
    )
    body = json.loads(httpx_mock.get_requests()[0].content)
    assert body["generationConfig"]["imageConfig"] == {"aspectRatio": "21:9", "imageSize": "4K"}


def test_no_size_sends_no_image_config(httpx_mock):
    httpx_mock.add_response(url=url(PRIMARY), json=answer())
    client().images.generate(model="gemini-3-pro-image", prompt="p")
    body = json.loads(httpx_mock.get_requests()[0].content)
    assert body["generationConfig"] == {"responseModalities": ["TEXT", "IMAGE"]}


def test_single_tier_model_is_not_sent_image_size(httpx_mock):
    httpx_mock.add_response(url=url(PRIMARY, "gemini-2.5-flash-image"), json=answer())
    client().images.generate(model="gemini-2.5-flash-image", prompt="p", size="1536x1024")
    body = json.loads(httpx_mock.get_requests()[0].content)
    assert body["generationConfig"]["imageConfig"] == {"aspectRatio": "3:2"}


def test_edit_sends_input_images_inline_after_the_text(httpx_mock):
    httpx_mock.add_response(url=url(PRIMARY), json=answer())
    first, second = png(1, 1), png(3, 2)
    client().images.edit(model="gemini-3-pro-image", prompt=MARKER, image=[first, second])
    parts = json.loads(httpx_mock.get_requests()[0].content)["contents"][0]["parts"]
    assert parts == [
        {"text": MARKER},
        {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(first).decode()}},
        {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(second).decode()}},
    ]


def test_n_images_are_n_calls_sent_together(httpx_mock):
    httpx_mock.add_response(url=url(PRIMARY), json=answer(), is_reusable=True)
    result = client().images.generate(model="gemini-3-pro-image", prompt="p", n=3)
    assert len(httpx_mock.get_requests()) == 3
    assert len(result.data) == 3
    assert result.usage == {"input_tokens": 51, "output_tokens": 3918, "total_tokens": 3969}


def test_catalog_refuses_what_gemini_cannot_do(httpx_mock):
    gemini = client()
    with pytest.raises(InvalidRequestError):
        gemini.images.generate(model="gemini-3-pro-image", prompt="p", n=5)
    with pytest.raises(InvalidRequestError):
        gemini.images.generate(model="gemini-3-pro-image", prompt="p", resolution="512")
    with pytest.raises(InvalidRequestError):
        gemini.images.edit(model="gemini-2.5-flash-image", prompt="p", image=[png()] * 4)
    with pytest.raises(InvalidRequestError):
        gemini.images.edit(model="gemini-3-pro-image", prompt="p", image=png(), mask=png())
    assert httpx_mock.get_requests() == []


def test_draft_thought_images_are_skipped(httpx_mock):
    draft, final = png(1, 1), png(4, 4)
    body = answer(final)
    parts = body["candidates"][0]["content"]["parts"]  # type: ignore[index]
    parts.insert(
        0,
        {
            "inlineData": {"mimeType": "image/png", "data": base64.b64encode(draft).decode()},
            "thought": True,
        },
    )
    httpx_mock.add_response(url=url(PRIMARY), json=body)
    result = client().images.generate(model="gemini-3-pro-image", prompt="p")
    assert result.data[0].content() == final


# -- blocks on HTTP 200 -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}}, "PROHIBITED_CONTENT"),
        (
            {"candidates": [{"content": {"parts": []}, "finishReason": "IMAGE_SAFETY"}]},
            "IMAGE_SAFETY",
        ),
        (
            {"candidates": [{"content": {"parts": [{"text": MARKER}]}, "finishReason": "SAFETY"}]},
            "SAFETY",
        ),
        (
            {"candidates": [{"finishReason": "IMAGE_PROHIBITED_CONTENT"}]},
            "IMAGE_PROHIBITED_CONTENT",
        ),
    ],
)
def test_blocks_are_content_policy_errors_never_failed_over(httpx_mock, body, code):
    httpx_mock.add_response(url=url(PRIMARY), json=body)
    with pytest.raises(ContentPolicyError) as info:
        client().images.generate(model="gemini-3-pro-image", prompt=MARKER)
    assert info.value.provider_code == code and info.value.provider == "gemini"
    assert MARKER not in "".join(traceback.format_exception(info.value)) + repr(info.value)
    assert len(httpx_mock.get_requests()) == 1


@pytest.mark.parametrize("reason", ["NO_IMAGE", "IMAGE_OTHER", "STOP"])
def test_an_answer_without_image_is_failed_over(httpx_mock, reason):
    body = {"candidates": [{"content": {"parts": [{"text": "sorry"}]}, "finishReason": reason}]}
    httpx_mock.add_response(url=url(PRIMARY), json=body)
    httpx_mock.add_response(url=url(BACKUP), json=answer())
    result = client().images.generate(model="gemini-3-pro-image", prompt="p")
    assert result.reapi.provider == "backup"
    assert result.reapi.attempt_log[0].code == "upstream_bad_response"


# -- Google's error object ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (500, google_error(500, "INTERNAL"), "upstream_server_error"),
        (503, google_error(503, "UNAVAILABLE"), "upstream_server_error"),
        (429, google_error(429, "RESOURCE_EXHAUSTED"), "rate_limit_exceeded"),
        (403, google_error(403, "PERMISSION_DENIED"), "upstream_permission_denied"),
        (
            429,
            google_error(
                429,
                "RESOURCE_EXHAUSTED",
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [{"quotaId": "GenerateRequestsPerDayPerProjectPerModel"}],
                },
            ),
            "upstream_quota_exhausted",
        ),
        (400, google_error(400, "FAILED_PRECONDITION"), "upstream_quota_exhausted"),
        (
            400,
            google_error(
                400,
                "INVALID_ARGUMENT",
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                },
            ),
            "upstream_authentication_failed",
        ),
    ],
)
def test_upstream_faults_fail_over(httpx_mock, status, body, expected):
    httpx_mock.add_response(url=url(PRIMARY), status_code=status, json=body)
    httpx_mock.add_response(url=url(BACKUP), json=answer())
    result = client().images.generate(model="gemini-3-pro-image", prompt=MARKER)
    assert result.reapi.provider == "backup"
    assert result.reapi.attempt_log[0].code == expected
    assert MARKER not in result.model_dump_json()


def test_invalid_argument_is_not_failed_over_and_keeps_only_the_status_word(httpx_mock):
    httpx_mock.add_response(
        url=url(PRIMARY), status_code=400, json=google_error(400, "INVALID_ARGUMENT")
    )
    with pytest.raises(Exception) as info:
        client().images.generate(model="gemini-3-pro-image", prompt=MARKER)
    assert info.value.code == "upstream_invalid_request"
    assert info.value.provider_code == "INVALID_ARGUMENT"
    assert MARKER not in "".join(traceback.format_exception(info.value))
    assert len(httpx_mock.get_requests()) == 1


def test_retry_info_is_the_retry_after(httpx_mock):
    retry = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "24s"}
    httpx_mock.add_response(
        status_code=429, json=google_error(429, "RESOURCE_EXHAUSTED", retry), is_reusable=True
    )
    with pytest.raises(NoRouteAvailableError) as info:
        client().images.generate(model="gemini-3-pro-image", prompt="p")
    assert info.value.http_status == 429 and info.value.retry_after == 24


def test_one_failed_call_of_n_fails_the_attempt_over(httpx_mock):
    calls = {"n": 0}

    def primary(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 2:
            return httpx.Response(503, json=google_error(503, "UNAVAILABLE"))
        return httpx.Response(200, json=answer())

    httpx_mock.add_callback(primary, url=url(PRIMARY), is_reusable=True)
    httpx_mock.add_response(url=url(BACKUP), json=answer(), is_reusable=True)
    result = client().images.generate(model="gemini-3-pro-image", prompt="p", n=2)
    assert result.reapi.provider == "backup" and len(result.data) == 2

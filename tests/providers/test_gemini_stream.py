"""Gemini's streaming generate (`streamGenerateContent?alt=sse`): the simulator's events field by
field, the adapter's reading of them (chunks merged into one answer, blocks, an error chunk
mid-stream) against pytest-httpx, and failover through the simulators when a stream stops."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from pytest_httpx import IteratorStream
from tests.providers.test_gemini import BACKUP, IMAGE, MARKER, PRIMARY, answer, url
from tests.providers.test_gemini import two_host_catalog as plain_catalog

from reapi import ContentPolicyError, ReAPI
from reapi.catalog import Catalog
from reapi.router import RouterConfig
from reapi.testing import Fault, SimServer, is_png
from reapi.testing.gemini_sim import GeminiSimulator

KEY = "sk-gemini-sim"
IDLE = 0.5
BODY = {
    "contents": [{"role": "user", "parts": [{"text": "a fox"}]}],
    "generationConfig": {"responseModalities": ["TEXT", "IMAGE"]},
}


def streaming_catalog() -> Catalog:
    data = plain_catalog().model_dump(mode="json")
    for model in data["models"].values():
        for route in model["routes"]:
            route["stream_idle_timeout"] = IDLE
            route["first_byte_timeout"] = 30.0
    return Catalog.model_validate(data)


def stream_url(base: str, model: str = "gemini-3-pro-image-preview") -> str:
    return f"{base}/models/{model}:streamGenerateContent?alt=sse"


def data(chunk: object) -> bytes:
    return b"data: " + json.dumps(chunk).encode() + b"\r\n\r\n"


def chunks_of(body: dict) -> list[dict]:
    """A whole answer cut into Gemini's chunks: the text part, then the image and the rest."""
    candidate = body["candidates"][0]
    text, image = candidate["content"]["parts"]
    first = {
        "candidates": [{"content": {"role": "model", "parts": [text]}, "index": 0}],
        "usageMetadata": {"promptTokenCount": 17, "totalTokenCount": 17},
        "modelVersion": body["modelVersion"],
    }
    last = {
        "candidates": [
            {
                "content": {"role": "model", "parts": [image]},
                "finishReason": candidate["finishReason"],
                "index": 0,
            }
        ],
        "usageMetadata": body["usageMetadata"],
        "modelVersion": body["modelVersion"],
    }
    return [first, last]


def sse(*chunks: bytes, base: str = PRIMARY, model: str = "gemini-3-pro-image-preview") -> dict:
    return {
        "url": stream_url(base, model),
        "headers": {"content-type": "text/event-stream"},
        "stream": IteratorStream(list(chunks)),
    }


def client(catalog: Catalog | None = None) -> ReAPI:
    return ReAPI(
        catalog=catalog or streaming_catalog(),
        provider_keys={"gemini": "g-primary", "backup": "g-backup"},
        provider_base_urls={"gemini": PRIMARY, "backup": BACKUP},
        router=RouterConfig(first_byte_timeout=30.0),
    )


# -- the simulator's wire ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def sim():
    with SimServer(GeminiSimulator(KEY)) as server:
        yield server


def post(sim: SimServer, verb: str, body: object = BODY, query: str = "") -> httpx.Response:
    return httpx.post(
        f"{sim.base_url}/v1beta/models/gemini-3-pro-image-preview:{verb}{query}",
        json=body,
        headers={"x-goog-api-key": KEY},
    )


def sim_events(answer: httpx.Response) -> list[dict]:
    assert answer.headers["content-type"] == "text/event-stream"
    blocks = answer.content.split(b"\r\n\r\n")
    assert blocks[-1] == b""  # every event ends with a blank line (CRLF)
    assert all(block.startswith(b"data: ") for block in blocks[:-1])
    return [json.loads(block[len(b"data: ") :]) for block in blocks[:-1]]


def test_sim_streams_the_answer_chunk_by_chunk(sim):
    whole = post(sim, "generateContent").json()
    chunks = sim_events(post(sim, "streamGenerateContent", query="?alt=sse"))
    assert len(chunks) == 2
    parts = [p for c in chunks for p in c["candidates"][0]["content"]["parts"]]
    assert [list(p) for p in parts] == [["text"], ["inlineData"]]
    assert parts[1] == whole["candidates"][0]["content"]["parts"][1]
    assert "finishReason" not in chunks[0]["candidates"][0]
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert chunks[-1]["usageMetadata"] == whole["usageMetadata"]
    assert chunks[0]["usageMetadata"]["promptTokenCount"] == 12
    assert all(c["modelVersion"] == "gemini-3-pro-image-preview" for c in chunks)
    assert sim.app.requests["POST /models/{model}:streamGenerateContent"] >= 1


def test_sim_without_alt_sse_answers_one_json_array(sim):
    answer = post(sim, "streamGenerateContent")
    assert answer.headers["content-type"] == "application/json"
    assert [len(c["candidates"]) for c in answer.json()] == [1, 1]


def test_sim_blocks_a_prompt_in_one_chunk(sim):
    blocked = {**BODY, "contents": [{"role": "user", "parts": [{"text": "forbidden"}]}]}
    chunks = sim_events(post(sim, "streamGenerateContent", blocked, "?alt=sse"))
    assert [c["promptFeedback"]["blockReason"] for c in chunks] == ["PROHIBITED_CONTENT"]


def test_sim_task_fails_ends_the_stream_with_an_error_chunk(sim):
    sim.app.faults.set(Fault.TASK_FAILS, count=1)
    chunks = sim_events(post(sim, "streamGenerateContent", query="?alt=sse"))
    assert "candidates" in chunks[0]
    assert chunks[1] == {
        "error": {"code": 500, "message": "An internal error has occurred.", "status": "INTERNAL"}
    }


def test_sim_refuses_a_bad_request_before_streaming(sim):
    bad = {**BODY, "generationConfig": {"imageConfig": {"aspectRatio": "7:3"}}}
    answer = post(sim, "streamGenerateContent", bad, "?alt=sse")
    assert answer.status_code == 400 and answer.json()["error"]["status"] == "INVALID_ARGUMENT"


# -- the adapter ------------------------------------------------------------------------------
def test_generate_streams_and_merges_the_chunks(httpx_mock):
    httpx_mock.add_response(**sse(*(data(c) for c in chunks_of(answer()))))
    result = client().images.generate(model="gemini-3-pro-image", prompt=MARKER, size="2752x1536")
    sent = httpx_mock.get_requests()[0]
    assert sent.url.params["alt"] == "sse" and sent.headers["x-goog-api-key"] == "g-primary"
    assert json.loads(sent.content)["contents"][0]["parts"] == [{"text": MARKER}]
    assert result.data[0].content() == IMAGE
    assert result.size == "1376x768" and result.output_format == "png"
    assert result.usage == {"input_tokens": 17, "output_tokens": 1306, "total_tokens": 1323}


def test_a_streamed_answer_gives_what_the_plain_answer_gives(httpx_mock):
    httpx_mock.add_response(url=url(PRIMARY), json=answer())
    plain = client(plain_catalog()).images.generate(model="gemini-3-pro-image", prompt="p")
    httpx_mock.add_response(**sse(*(data(c) for c in chunks_of(answer()))))
    streamed = client().images.generate(model="gemini-3-pro-image", prompt="p")
    fields = {"created", "reapi"}
    assert streamed.model_dump(exclude=fields) == plain.model_dump(exclude=fields)


def test_n_images_are_n_streams(httpx_mock):
    httpx_mock.add_response(**sse(*(data(c) for c in chunks_of(answer()))), is_reusable=True)
    result = client().images.generate(model="gemini-3-pro-image", prompt="p", n=2)
    assert len(httpx_mock.get_requests()) == 2 and len(result.data) == 2


def test_a_blocked_prompt_in_a_stream_is_not_failed_over(httpx_mock):
    httpx_mock.add_response(**sse(data({"promptFeedback": {"blockReason": "SAFETY"}})))
    with pytest.raises(ContentPolicyError) as info:
        client().images.generate(model="gemini-3-pro-image", prompt="p")
    assert info.value.provider_code == "SAFETY" and len(httpx_mock.get_requests()) == 1


def test_a_withheld_image_in_a_stream_is_not_failed_over(httpx_mock):
    first, last = chunks_of(answer())
    last["candidates"][0] = {
        "content": {"role": "model", "parts": []},
        "finishReason": "IMAGE_SAFETY",
    }
    httpx_mock.add_response(**sse(data(first), data(last)))
    with pytest.raises(ContentPolicyError):
        client().images.generate(model="gemini-3-pro-image", prompt="p")


@pytest.mark.parametrize(
    ("error", "code"),
    [
        ({"code": 500, "message": MARKER, "status": "INTERNAL"}, "upstream_server_error"),
        ({"code": 503, "message": MARKER, "status": "UNAVAILABLE"}, "upstream_server_error"),
        ({"code": 429, "message": MARKER, "status": "RESOURCE_EXHAUSTED"}, "rate_limit_exceeded"),
    ],
)
def test_an_error_chunk_mid_stream_fails_over(httpx_mock, error, code):
    first, _ = chunks_of(answer())
    httpx_mock.add_response(**sse(data(first), data({"error": error})))
    httpx_mock.add_response(**sse(*(data(c) for c in chunks_of(answer())), base=BACKUP))
    result = client().images.generate(model="gemini-3-pro-image", prompt="p")
    assert result.reapi.provider == "backup"
    assert result.reapi.attempt_log[0].code == code
    assert MARKER not in json.dumps(result.model_dump(mode="json"))


def test_a_stream_that_ends_before_its_image_fails_over(httpx_mock):
    first, _ = chunks_of(answer())
    httpx_mock.add_response(**sse(data(first)))
    httpx_mock.add_response(**sse(*(data(c) for c in chunks_of(answer())), base=BACKUP))
    assert client().images.generate(model="gemini-3-pro-image", prompt="p").reapi.provider == (
        "backup"
    )


# -- failover on real sockets ------------------------------------------------------------------
@pytest.fixture
def sims():
    primary = SimServer(GeminiSimulator(KEY)).start()
    backup = SimServer(GeminiSimulator(KEY)).start()
    yield primary, backup
    primary.stop()
    backup.stop()


def sim_client(sims) -> ReAPI:
    primary, backup = sims
    return ReAPI(
        catalog=streaming_catalog(),
        provider_keys={"gemini": KEY, "backup": KEY},
        provider_base_urls={
            "gemini": primary.base_url + "/v1beta",
            "backup": backup.base_url + "/v1beta",
        },
        router=RouterConfig(first_byte_timeout=30.0),
    )


@pytest.mark.parametrize(
    ("fault", "latency", "first_chunk_at"),
    [
        (Fault.HANG_FIRST_EVENT, 20.0, 0.0),  # 20 s of generation when healthy
        (Fault.HANG_MID_STREAM, 0.6, 0.3),
        (Fault.RESET_MID_STREAM, 0.6, 0.3),
    ],
)
def test_a_stream_that_stops_fails_over_within_the_idle_deadline(
    sims, fault, latency, first_chunk_at
):
    sims[0].faults.set(fault, latency=latency)
    started = time.perf_counter()
    result = sim_client(sims).images.generate(model="gemini-3-pro-image", prompt="p")
    assert result.reapi.provider == "backup" and is_png(result.data[0].content())
    assert time.perf_counter() - started < first_chunk_at + IDLE + 1.0


def test_a_slow_healthy_stream_is_not_cut(sims):
    sims[0].faults.set(latency=0.8)  # a chunk every 0.4 s: never silent for IDLE
    result = sim_client(sims).images.generate(model="gemini-3-pro-image", prompt="p")
    assert result.reapi.provider == "gemini"

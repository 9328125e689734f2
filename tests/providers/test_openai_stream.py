"""OpenAI images streamed (`stream: true`, `partial_images`) against pytest-httpx: the request,
server-sent events read field by field as OpenAI sends them (`image_generation.partial_image`,
`image_generation.completed`, `image_edit.*`, an `error` event mid-stream), and the result the
same as the answer that is not streamed."""

from __future__ import annotations

import base64
import json

import httpx
import pytest
from pytest_httpx import IteratorStream
from tests.conftest import two_host_catalog

from reapi import ContentPolicyError, NoRouteAvailableError, ReAPI, RouterConfig
from reapi.catalog import Catalog

PRIMARY = "http://primary.test/v1"
BACKUP = "http://backup.test/v1"
MARKER = "MARKER-stream-40ab"
FINAL = b"\x89PNG\r\n\x1a\n" + b"final" * 8
DRAFT = b"\x89PNG\r\n\x1a\n" + b"draft" * 8
USAGE = {
    "input_tokens": 50,
    "input_tokens_details": {"image_tokens": 0, "text_tokens": 50},
    "output_tokens": 4160,
    "output_tokens_details": {"image_tokens": 4160, "text_tokens": 0},
    "total_tokens": 4210,
}
OUTCOME = {"background": "opaque", "output_format": "png", "quality": "high", "size": "1536x1024"}


def streaming_catalog(partial_images: int = 2) -> Catalog:
    """gpt-image-2 on `primary` then `backup`, both streamed."""
    data = two_host_catalog().model_dump(mode="json")
    for route in data["models"]["gpt-image-2"]["routes"]:
        route["stream_idle_timeout"] = 5.0
        route["options"] = {"partial_images": partial_images}
    return Catalog.model_validate(data)


def client(catalog: Catalog | None = None) -> ReAPI:
    return ReAPI(
        catalog=catalog or streaming_catalog(),
        provider_keys={"primary": "sk-primary", "backup": "sk-backup"},
        provider_base_urls={"primary": PRIMARY, "backup": BACKUP},
        router=RouterConfig(first_byte_timeout=5.0),
    )


def event(kind: str, **fields: object) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **fields})}\n\n".encode()


def partial(index: int, kind: str = "image_generation") -> bytes:
    b64 = base64.b64encode(DRAFT).decode()
    return event(
        f"{kind}.partial_image", b64_json=b64, created_at=1, partial_image_index=index, **OUTCOME
    )


def completed(kind: str = "image_generation", image: bytes = FINAL) -> bytes:
    b64 = base64.b64encode(image).decode()
    return event(f"{kind}.completed", b64_json=b64, created_at=1, usage=USAGE, **OUTCOME)


def stream(*events: bytes, url: str = f"{PRIMARY}/images/generations") -> dict[str, object]:
    """pytest-httpx arguments for an SSE answer, one chunk per event."""
    return {
        "url": url,
        "headers": {"content-type": "text/event-stream; charset=utf-8"},
        "stream": IteratorStream(list(events)),
    }


def test_generate_streams_and_keeps_only_the_final_image(httpx_mock):
    httpx_mock.add_response(**stream(partial(0), partial(1), completed()))
    result = client().images.generate(
        model="gpt-image-2", prompt=MARKER, size="1536x1024", quality="high"
    )
    body = json.loads(httpx_mock.get_requests()[0].content)
    assert body["stream"] is True and body["partial_images"] == 2
    assert body["prompt"] == MARKER and body["n"] == 1
    assert [image.content() for image in result.data] == [FINAL]
    assert result.usage == USAGE
    assert (result.size, result.quality, result.background) == ("1536x1024", "high", "opaque")
    assert result.reapi.provider == "primary" and result.reapi.attempts == 1


def test_a_streamed_answer_gives_what_the_plain_answer_gives(httpx_mock):
    plain = {"created": 1, **OUTCOME, "data": [{"b64_json": base64.b64encode(FINAL).decode()}]}
    httpx_mock.add_response(url=f"{PRIMARY}/images/generations", json={**plain, "usage": USAGE})
    unstreamed = ReAPI(
        catalog=two_host_catalog(),
        provider_keys={"primary": "sk-primary", "backup": "sk-backup"},
        provider_base_urls={"primary": PRIMARY, "backup": BACKUP},
    ).images.generate(model="gpt-image-2", prompt="p", size="1536x1024", quality="high")
    httpx_mock.add_response(**stream(partial(0), completed()))
    streamed = client().images.generate(
        model="gpt-image-2", prompt="p", size="1536x1024", quality="high"
    )
    fields = {"created", "reapi"}
    assert streamed.model_dump(exclude=fields) == unstreamed.model_dump(exclude=fields)
    assert "stream" not in json.loads(httpx_mock.get_requests()[0].content)


def test_zero_partial_images_is_one_completed_event(httpx_mock):
    httpx_mock.add_response(**stream(completed()))
    result = client(streaming_catalog(partial_images=0)).images.generate(
        model="gpt-image-2", prompt="p"
    )
    assert json.loads(httpx_mock.get_requests()[0].content)["partial_images"] == 0
    assert result.data[0].content() == FINAL


@pytest.mark.parametrize(("asked", "sent"), [(1, 2), (3, 3)])
def test_a_caller_streaming_keeps_at_least_the_routes_drafts(asked, sent):
    """The route's idle deadline counts on its drafts (2 here) to break its silences: a caller
    streaming with fewer (`partial_images=1`) has the route's asked for (it is passed its own
    count only: `image_stream`), one with more its own. Asking for 1 made the silences longer
    than the deadline was set for."""
    from reapi.core import image_request

    setup = client()._setup
    params, payload = image_request(prompt="p", model="gpt-image-2", partial_images=asked)
    prepared = setup.core.prepare_image(params, payload, edit=False)
    protocol = setup.core.image_attempt(prepared, prepared.routes[0])
    request = next(protocol)
    protocol.close()
    assert request.json["stream"] is True and request.json["partial_images"] == sent
    assert request.idle_timeout == 5.0


def test_several_images_are_not_streamed(httpx_mock):
    """How a stream carries n > 1 images is not documented: such requests go unstreamed."""
    b64 = base64.b64encode(FINAL).decode()
    httpx_mock.add_response(
        url=f"{PRIMARY}/images/generations",
        json={"created": 1, **OUTCOME, "data": [{"b64_json": b64}] * 2, "usage": USAGE},
    )
    result = client().images.generate(model="gpt-image-2", prompt="p", n=2)
    body = json.loads(httpx_mock.get_requests()[0].content)
    assert "stream" not in body and "partial_images" not in body
    assert len(result.data) == 2


def test_edit_streams_image_edit_events(httpx_mock):
    url = f"{PRIMARY}/images/edits"
    httpx_mock.add_response(**stream(partial(0, "image_edit"), completed("image_edit"), url=url))
    result = client().images.edit(model="gpt-image-2", prompt=MARKER, image=DRAFT)
    sent = httpx_mock.get_requests()[0]
    assert b'name="stream"\r\n\r\ntrue' in sent.content
    assert b'name="partial_images"\r\n\r\n2' in sent.content
    assert result.data[0].content() == FINAL


def test_events_parse_with_any_line_ending_comments_and_split_chunks(httpx_mock):
    whole = b": keep-alive\r\n\r\n" + partial(0).replace(b"\n", b"\r\n") + completed()
    chunks = [whole[i : i + 7] for i in range(0, len(whole), 7)]  # events cut anywhere
    httpx_mock.add_response(**stream(*chunks))
    assert client().images.generate(model="gpt-image-2", prompt="p").data[0].content() == FINAL


def test_a_moderation_error_mid_stream_is_a_content_block_never_failed_over(httpx_mock):
    error = {"type": "image_generation_user_error", "code": "moderation_blocked"}
    httpx_mock.add_response(
        **stream(partial(0), event("error", error={**error, "message": MARKER, "param": None}))
    )
    with pytest.raises(ContentPolicyError) as info:
        client().images.generate(model="gpt-image-2", prompt="p")
    assert info.value.provider_code == "moderation_blocked"
    assert MARKER not in str(info.value) and MARKER not in repr(info.value)
    assert len(httpx_mock.get_requests()) == 1


def test_a_server_error_mid_stream_fails_over(httpx_mock):
    error = {"type": "server_error", "code": None, "message": MARKER, "param": None}
    httpx_mock.add_response(**stream(partial(0), event("error", error=error)))
    httpx_mock.add_response(**stream(completed(), url=f"{BACKUP}/images/generations"))
    result = client().images.generate(model="gpt-image-2", prompt="p")
    assert result.reapi.provider == "backup" and result.data[0].content() == FINAL
    failed = result.reapi.attempt_log[0]
    assert failed.provider == "primary" and failed.code == "upstream_server_error"


def test_a_stream_that_ends_without_its_image_fails_over(httpx_mock):
    httpx_mock.add_response(**stream(partial(0), partial(1)))
    httpx_mock.add_response(**stream(completed(), url=f"{BACKUP}/images/generations"))
    result = client().images.generate(model="gpt-image-2", prompt="p")
    assert result.reapi.provider == "backup"


def test_an_event_that_is_not_json_fails_over_without_echoing_it(httpx_mock):
    httpx_mock.add_response(
        **stream(b"event: image_generation.completed\ndata: {" + MARKER.encode() + b"\n\n")
    )
    httpx_mock.add_response(**stream(completed(), url=f"{BACKUP}/images/generations"))
    result = client().images.generate(model="gpt-image-2", prompt="p")
    assert result.reapi.provider == "backup"


def test_an_event_over_the_size_bound_fails_over(httpx_mock, monkeypatch):
    """An event larger than the decoder takes (a hostile or broken upstream) is the upstream's
    fault, like one that is not JSON: the next route is tried."""
    monkeypatch.setattr("reapi._sse.MAX_UPSTREAM_EVENT_BYTES", 4096)
    httpx_mock.add_response(**stream(partial(0), completed(image=FINAL * 200)))
    httpx_mock.add_response(**stream(completed(), url=f"{BACKUP}/images/generations"))
    result = client().images.generate(model="gpt-image-2", prompt="p")
    assert result.reapi.provider == "backup"
    assert result.reapi.attempt_log[0].code == "upstream_bad_response"


def test_an_error_status_before_the_stream_is_mapped_as_usual(httpx_mock):
    httpx_mock.add_response(
        url=f"{PRIMARY}/images/generations",
        status_code=429,
        json={"error": {"code": "insufficient_quota", "message": MARKER}},
    )
    httpx_mock.add_response(
        url=f"{BACKUP}/images/generations",
        status_code=500,
        json={"error": {"message": MARKER, "type": "server_error"}},
    )
    with pytest.raises(NoRouteAvailableError) as info:
        client().images.generate(model="gpt-image-2", prompt="p")
    assert [a.code for a in info.value.attempts] == [
        "upstream_quota_exhausted",
        "upstream_server_error",
    ]
    assert MARKER not in str(info.value)


def test_a_proxy_that_answers_json_to_a_stream_request_still_works(httpx_mock):
    b64 = base64.b64encode(FINAL).decode()
    httpx_mock.add_response(
        url=f"{PRIMARY}/images/generations",
        json={"created": 1, **OUTCOME, "data": [{"b64_json": b64}], "usage": USAGE},
    )
    assert client().images.generate(model="gpt-image-2", prompt="p").data[0].content() == FINAL


def test_the_streamed_request_carries_the_routes_idle_deadline(httpx_mock):
    """The engine reads a streamed answer with the route's idle deadline per read."""
    seen: list[dict[str, float | None]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return httpx.Response(
            200,
            headers={"content-type": "text/event-stream"},
            stream=IteratorStream([completed()]),
        )

    httpx_mock.add_callback(answer, url=f"{PRIMARY}/images/generations")
    client().images.generate(model="gpt-image-2", prompt="p")
    assert seen[0]["read"] == 5.0


async def test_a_tapped_drive_hears_each_event_and_lets_the_drafts_go(httpx_mock):
    """`AsyncEngine.drive` with a tap (a caller streaming): the tap hears every event as it comes;
    the adapter reads the stream without its drafts (multi-line data kept line by line) and
    makes the same result."""
    from reapi import AsyncReAPI
    from reapi.core import image_request
    from reapi.providers import UpstreamResponse

    spread = b'event: keepalive\ndata: {"a":\ndata: 1}\n\n'
    httpx_mock.add_response(**stream(partial(0), spread, partial(1), completed()))
    sdk = AsyncReAPI(
        catalog=streaming_catalog(),
        provider_keys={"primary": "sk-primary", "backup": "sk-backup"},
        provider_base_urls={"primary": PRIMARY, "backup": BACKUP},
        router=RouterConfig(first_byte_timeout=5.0),
    )
    core, engine = sdk._setup.core, sdk._engine
    params, payload = image_request(prompt=MARKER, model="gpt-image-2", partial_images=2)
    prepared = core.prepare_image(params, payload, edit=False)
    seen: list[UpstreamResponse] = []

    def spied(protocol):  # the adapter's protocol, noting the answers it is given
        step = next(protocol)
        while True:
            reply = yield step
            seen.append(reply)
            try:
                step = protocol.send(reply)
            except StopIteration as stop:
                return stop.value

    heard: list[str] = []
    attempt = spied(core.image_attempt(prepared, prepared.routes[0]))
    result = await engine.drive(attempt, "primary", 5.0, lambda e: heard.append(e.event))
    assert heard == [
        "image_generation.partial_image",
        "keepalive",
        "image_generation.partial_image",
        "image_generation.completed",
    ]
    assert result.images[0].data == FINAL
    body = seen[0].content
    assert b"partial_image" not in body and base64.b64encode(DRAFT) not in body
    assert b'data: {"a":\ndata: 1}' in body
    sent = json.loads(httpx_mock.get_requests()[0].content)
    assert sent["stream"] is True and sent["partial_images"] == 2
    await sdk.aclose()


def test_a_drafts_event_is_let_go_unread_and_every_other_event_is_read(httpx_mock):
    """A `.partial_image` event's JSON is not parsed (nobody uses a draft unless a tap hears
    it, and the tap's path lets it go unread too): a draft that is not JSON costs nothing. An
    event of any other name is still read: one that is not JSON fails over, as before."""
    broken_draft = b"event: image_generation.partial_image\ndata: {" + MARKER.encode() + b"\n\n"
    httpx_mock.add_response(**stream(broken_draft, partial(1), completed()))
    result = client().images.generate(model="gpt-image-2", prompt="p")
    assert result.reapi.provider == "primary"
    assert [image.content() for image in result.data] == [FINAL]

    unnamed = b"data: {" + MARKER.encode() + b"\n\n"  # no `event:` field: "message", read
    httpx_mock.add_response(**stream(unnamed, completed()))
    httpx_mock.add_response(**stream(completed(), url=f"{BACKUP}/images/generations"))
    result = client().images.generate(model="gpt-image-2", prompt="p")
    assert result.reapi.provider == "backup"
    assert result.reapi.attempt_log[0].code == "upstream_bad_response"


def test_a_drafts_event_over_the_size_bound_still_fails_over(httpx_mock, monkeypatch):
    monkeypatch.setattr("reapi._sse.MAX_UPSTREAM_EVENT_BYTES", 4096)
    huge_draft = event("image_generation.partial_image", b64_json="A" * 8000)
    httpx_mock.add_response(**stream(huge_draft, completed()))
    httpx_mock.add_response(**stream(completed(), url=f"{BACKUP}/images/generations"))
    result = client().images.generate(model="gpt-image-2", prompt="p")
    assert result.reapi.provider == "backup"
    assert result.reapi.attempt_log[0].code == "upstream_bad_response"

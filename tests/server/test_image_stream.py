"""`stream: true` on the image endpoints: server-sent events as OpenAI sends them, read by the
official `openai` client, over the same request as a JSON answer (hold, failover, settlement,
usage row). Upstreams are the OpenAI simulators, which stream (`sim_upstream`), or the fake
upstream, which answers in JSON only."""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import replace

import anyio
import httpx
import openai
import pytest
from tests.server.fakes import PNG
from tests.server.helpers import access_entries, auth, client_for, ledger_matches
from tests.server.sim_upstream import SimUpstream

from reapi.testing import Fault, is_png

GENERATIONS = "/v1/images/generations"
MARKER = "MARKER-streamed-prompt-41c9"
#: gpt-image-2 at its default settings in the test catalog.
PRICE = 40


@pytest.fixture
def sims() -> SimUpstream:
    return SimUpstream()


@pytest.fixture
async def streaming(make_gateway, upstream, sims, monkeypatch):
    """A gateway whose upstream hosts are the two OpenAI simulators."""
    monkeypatch.setattr(upstream, "transport", sims.transport)
    return await make_gateway()


async def usage_of(gateway, key: str) -> dict:
    rows = (await gateway.client.get("/v1/usage", headers=auth(key))).json()["data"]
    assert len(rows) == 1, rows
    return rows[0]


async def test_the_openai_client_streams_a_generation_with_its_partial_images(
    streaming, sims, caplog
):
    caplog.set_level(logging.INFO, logger="reapi_server.access")
    account, key = await streaming.account(credits=1000)
    stream = await client_for(streaming, key).images.generate(
        model="gpt-image-2", prompt="a lighthouse", stream=True, partial_images=2
    )
    events = [event async for event in stream]
    assert [e.type for e in events] == [
        "image_generation.partial_image",
        "image_generation.partial_image",
        "image_generation.completed",
    ]
    assert [e.partial_image_index for e in events[:2]] == [0, 1]
    completed = events[-1]
    assert is_png(base64.b64decode(completed.b64_json))
    assert base64.b64decode(events[0].b64_json) != base64.b64decode(completed.b64_json)
    assert completed.usage.total_tokens > 0 and completed.size == "1024x1024"
    assert completed.output_format == "png" and completed.quality == "medium"
    sent = json.loads(sims.bodies[0])
    assert sent["stream"] is True and sent["partial_images"] == 2
    usage = await usage_of(streaming, key)
    assert usage["status"] == "succeeded" and usage["credit_cost"] == PRICE
    assert await ledger_matches(streaming.rt, account) == (1000 - PRICE, 0)
    (entry,) = [e for e in access_entries(caplog) if e["route"] == GENERATIONS]
    assert entry["status"] == 200 and "code" not in entry


async def test_the_openai_client_streams_a_multipart_edit(streaming, sims):
    _, key = await streaming.account(credits=1000)
    stream = await client_for(streaming, key).images.edit(
        model="gpt-image-2",
        image=("a.png", PNG, "image/png"),
        prompt="add a moon",
        stream=True,
        partial_images=1,
    )
    events = [event async for event in stream]
    assert [e.type for e in events] == ["image_edit.partial_image", "image_edit.completed"]
    assert is_png(base64.b64decode(events[-1].b64_json))
    usage = await usage_of(streaming, key)
    assert usage["status"] == "succeeded" and usage["endpoint"] == "images.edits"


async def test_an_upstream_that_does_not_stream_gives_the_completed_events_only(gateway):
    """The fake upstream answers in JSON: no partial image, one completed event per image, on
    the wire as OpenAI writes it (an event line, a data line, a blank line)."""
    _, key = await gateway.account(credits=1000)
    body = {"model": "gpt-image-2", "prompt": "p", "n": 2, "stream": True, "partial_images": 3}
    response = await gateway.client.post(GENERATIONS, json=body, headers=auth(key))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    blocks = response.text.split("\n\n")
    assert blocks[-1] == "" and len(blocks) == 3
    for block in blocks[:2]:
        name, data = block.split("\n")
        assert name == "event: image_generation.completed"
        event = json.loads(data.removeprefix("data: "))
        assert event["type"] == "image_generation.completed"
        assert base64.b64decode(event["b64_json"]) == PNG
        assert isinstance(event["created_at"], int)
    usage = await usage_of(gateway, key)
    assert usage["status"] == "succeeded" and usage["credit_cost"] == 2 * PRICE
    assert usage["id"] == response.headers["x-request-id"]


async def test_a_host_that_breaks_before_its_first_event_is_failed_over(streaming, sims):
    sims.cut_after["primary.test"] = 0
    _, key = await streaming.account(credits=1000)
    stream = await client_for(streaming, key).images.generate(
        model="gpt-image-2", prompt="p", stream=True, partial_images=2
    )
    events = [event async for event in stream]
    assert [e.type.rsplit(".", 1)[1] for e in events] == [
        "partial_image",
        "partial_image",
        "completed",
    ]
    assert [host for host, _ in sims.calls] == ["primary.test", "backup.test"]
    usage = await usage_of(streaming, key)
    assert usage["status"] == "succeeded" and usage["attempts"] == 2


async def test_after_a_partial_image_a_second_host_finishes_the_stream(streaming, sims):
    sims.cut_after["primary.test"] = 1  # one draft, then a reset
    _, key = await streaming.account(credits=1000)
    stream = await client_for(streaming, key).images.generate(
        model="gpt-image-2", prompt="p", stream=True, partial_images=2
    )
    events = [event async for event in stream]
    # The second host's drafts continue the numbering; no more than asked go out.
    assert [getattr(e, "partial_image_index", None) for e in events] == [0, 1, None]
    assert events[-1].type == "image_generation.completed"
    assert (await usage_of(streaming, key))["attempts"] == 2


@pytest.mark.parametrize(
    ("primary_pace", "backup_pace", "winner"),
    [(0.2, 0.2, "primary"), (0.5, 0.01, "backup")],
    ids=["the-owner-wins", "the-hedge-wins"],
)
async def test_hedged_attempts_drafts_come_from_one_attempt(
    streaming, sims, primary_pace, backup_pace, winner
):
    """The primary sends its first draft before the hedge starts, so it owns the drafts: the
    hedge's, sent while the primary runs, are dropped (not interleaved with the primary's). The
    completed image is the winner's, which may be the hedge (its drafts never shown)."""
    rt = streaming.rt
    rt.router.config = replace(
        rt.router.config, hedge_after=0.1, first_byte_timeout=5.0, body_timeout=10.0
    )
    sims.pace.update({"primary.test": primary_pace, "backup.test": backup_pace})
    sims.stamps.update({"primary.test": 1, "backup.test": 2})
    _, key = await streaming.account(credits=1000)
    body = {"model": "gpt-image-2", "prompt": "p", "stream": True, "partial_images": 3}
    response = await streaming.client.post(GENERATIONS, json=body, headers=auth(key))
    assert response.status_code == 200, response.text
    assert [host for host, _ in sims.calls] == ["primary.test", "backup.test"]
    events = _events(response.text)
    drafts = [data for name, data in events if name.endswith("partial_image")]
    assert [d["created_at"] for d in drafts] == [1] * len(drafts)  # the primary's only
    assert [d["partial_image_index"] for d in drafts] == list(range(len(drafts)))
    assert len(drafts) == (3 if winner == "primary" else 1)
    assert [name for name, _ in events[len(drafts) :]] == ["image_generation.completed"]
    assert events[-1][1]["reapi"]["provider"] == winner
    assert (await usage_of(streaming, key))["attempts"] == 2


async def test_a_failure_after_the_first_event_is_an_error_event_and_costs_nothing(
    streaming, sims, caplog
):
    caplog.set_level(logging.INFO, logger="reapi_server.access")
    for sim in sims.sims.values():
        sim.faults.set(Fault.TASK_FAILS)  # drafts, then an error event
    account, key = await streaming.account(credits=1000)
    stream = await client_for(streaming, key).images.generate(
        model="gpt-image-2", prompt="p", stream=True, partial_images=1
    )
    seen = []
    with pytest.raises(openai.APIError) as raised:
        async for event in stream:
            seen.append(event.type)
    assert seen == ["image_generation.partial_image"]
    assert raised.value.body["code"] == "upstream_unavailable"
    assert raised.value.body["type"] == "server_error"
    usage = await usage_of(streaming, key)
    assert usage["status"] == "failed" and usage["error_code"] == "upstream_unavailable"
    assert usage["credit_cost"] == 0
    assert await ledger_matches(streaming.rt, account) == (1000, 0)
    # Sent as 200 (with the head): the access log line says it failed, as its usage row does.
    (entry,) = [e for e in access_entries(caplog) if e["route"] == GENERATIONS]
    assert entry["status"] == 200 and entry["code"] == "upstream_unavailable"


async def test_a_failure_before_the_first_event_is_a_json_error(streaming, sims, caplog):
    caplog.set_level(logging.INFO, logger="reapi_server.access")
    for host in sims.sims:
        sims.cut_after[host] = 0
    account, key = await streaming.account(credits=1000)
    body = {"model": "gpt-image-2", "prompt": "p", "stream": True, "partial_images": 1}
    response = await streaming.client.post(GENERATIONS, json=body, headers=auth(key))
    assert response.status_code == 502
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == "upstream_unavailable"
    assert await ledger_matches(streaming.rt, account) == (1000, 0)
    _, poor_key = await streaming.account(credits=0)
    response = await streaming.client.post(GENERATIONS, json=body, headers=auth(poor_key))
    assert response.status_code == 402 and response.json()["error"]["code"]
    # Failed as JSON: logged with its status, and its code as a failed stream is.
    logged = [(e["status"], e.get("code")) for e in access_entries(caplog)]
    assert logged == [(502, "upstream_unavailable"), (402, "insufficient_credits")]


@pytest.mark.parametrize(
    ("fields", "headers", "param"),
    [
        ({"stream": True, "partial_images": 4}, {}, "partial_images"),
        ({"stream": True, "partial_images": -1}, {}, "partial_images"),
        ({"stream": "yes"}, {}, "stream"),
        ({"stream": 1}, {}, "stream"),
        # JSON has booleans and numbers: their spelling is a form's (OpenAI refuses it too).
        ({"stream": "true"}, {}, "stream"),
        ({"stream": "false"}, {}, "stream"),
        ({"stream": True, "partial_images": "2"}, {}, "partial_images"),
        ({"stream": True, "partial_images": True}, {}, "partial_images"),
        ({"stream": True, "partial_images": 1.0}, {}, "partial_images"),
        ({"stream": True}, {"idempotency-key": "k1"}, "stream"),
        ({"stream": True, "response_format": "url"}, {}, "response_format"),
    ],
)
async def test_bad_stream_input_is_a_400_in_openai_shape(gateway, fields, headers, param):
    account, key = await gateway.account(credits=1000)
    body = {"model": "gpt-image-2", "prompt": "p", **fields}
    response = await gateway.client.post(GENERATIONS, json=body, headers=auth(key) | headers)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"
    assert set(error) == {"message", "type", "param", "code"}
    assert gateway.upstream.calls == []
    assert await ledger_matches(gateway.rt, account) == (1000, 0)


async def test_a_multipart_stream_flag_other_than_true_or_false_is_refused(gateway):
    _, key = await gateway.account()
    response = await gateway.client.post(
        "/v1/images/edits",
        data={"model": "gpt-image-2", "prompt": "p", "stream": "on"},
        files={"image": ("a.png", PNG, "image/png")},
        headers=auth(key),
    )
    assert response.status_code == 400 and response.json()["error"]["param"] == "stream"
    response = await gateway.client.post(
        "/v1/images/edits",
        data={"model": "gpt-image-2", "prompt": "p", "stream": "false"},
        files={"image": ("a.png", PNG, "image/png")},
        headers=auth(key),
    )
    assert response.status_code == 200 and response.json()["data"][0]["b64_json"]


def _asgi_request(key: str, fields: dict) -> tuple[dict, object]:
    """The scope and `receive` of a streamed generation sent straight to the app (a test that
    plays the server: its `send` breaks, or the server cancels the request)."""
    body = json.dumps({"model": "gpt-image-2", "prompt": "p", "stream": True, **fields}).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": GENERATIONS,
        "raw_path": GENERATIONS.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"gateway.test"),
            (b"authorization", f"Bearer {key}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("gateway.test", 80),
    }
    bodies = iter([{"type": "http.request", "body": body, "more_body": False}])

    async def receive():
        message = next(bodies, None)
        if message is None:
            await anyio.sleep_forever()
        return message

    return scope, receive


async def test_a_caller_gone_mid_stream_is_charged_as_for_a_json_answer(streaming, sims):
    """The socket breaks after the first event: the generation runs to its end and settles,
    as a request answered in JSON whose caller left does; nothing more is written."""
    account, key = await streaming.account(credits=1000)
    scope, receive = _asgi_request(key, {"partial_images": 2})
    sent: list[dict] = []

    async def send(message):
        if message["type"] == "http.response.body" and any(
            m["type"] == "http.response.body" for m in sent
        ):
            raise OSError("client disconnected")
        sent.append(message)

    with anyio.fail_after(10):
        await streaming.app(scope, receive, send)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert b"image_generation.partial_image" in sent[1]["body"]
    usage = await usage_of(streaming, key)
    assert usage["status"] == "succeeded" and usage["credit_cost"] == PRICE
    assert await ledger_matches(streaming.rt, account) == (1000 - PRICE, 0)


async def test_a_stream_cut_before_its_image_ends_with_an_error_event(streaming, sims):
    """The drain's end cancels a request whose drafts went out and whose image is not made:
    its hold comes back, and the stream says why it ends (a `server_shutting_down` error
    event, the answer completed) rather than breaking off mid-stream. (Cut while its charge
    commits, it sends its image: test_drain.)"""
    for host in sims.sims:
        sims.hang_after[host] = 1  # one draft, then silence
    account, key = await streaming.account(credits=1000)
    scope, receive = _asgi_request(key, {"partial_images": 2})
    sent: list[dict] = []
    first_event = anyio.Event()

    async def send(message):
        sent.append(message)
        if message["type"] == "http.response.body":
            first_event.set()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as server:
            server.start_soon(streaming.app, scope, receive, send)
            await first_event.wait()
            server.cancel_scope.cancel()  # uvicorn, once `drain_seconds` are up
    bodies = [m for m in sent if m["type"] == "http.response.body"]
    assert b"image_generation.partial_image" in bodies[0]["body"]
    events = _events(b"".join(m["body"] for m in bodies[1:]).decode())
    assert [name for name, _ in events] == ["error"]
    assert events[0][1]["error"]["code"] == "server_shutting_down"
    assert bodies[-1]["more_body"] is False
    assert await ledger_matches(streaming.rt, account) == (1000, 0)


async def test_a_stream_cut_while_its_image_waits_for_a_slow_reader_still_sends_it(streaming, sims):
    """Charged, its completed event waiting for the caller's socket (a slow reader: the
    server's `send` waits), the drain's end cuts the request: the event still goes out, once,
    and the answer ends."""
    account, key = await streaming.account(credits=1000)
    scope, receive = _asgi_request(key, {"partial_images": 1})
    sent: list[dict] = []
    waiting = anyio.Event()

    async def send(message):
        if b"image_generation.completed" in message.get("body", b"") and not waiting.is_set():
            waiting.set()
            await anyio.sleep_forever()  # the socket's buffer is full: cut here
        sent.append(message)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as server:
            server.start_soon(streaming.app, scope, receive, send)
            await waiting.wait()
            server.cancel_scope.cancel()  # uvicorn, once `drain_seconds` are up
    events = _events(b"".join(m.get("body", b"") for m in sent[1:]).decode())
    assert [name for name, _ in events] == [
        "image_generation.partial_image",
        "image_generation.completed",
    ]
    assert sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    assert await ledger_matches(streaming.rt, account) == (1000 - PRICE, 0)


async def test_partial_images_are_never_stored(streaming, sims, caplog):
    """Only the final image is kept (as for a JSON answer); no draft reaches storage, the
    database, the data directory or the logs, nor does the prompt."""
    caplog.set_level(logging.DEBUG)
    _, key = await streaming.account(credits=1000)
    stream = await client_for(streaming, key).images.generate(
        model="gpt-image-2", prompt=MARKER, stream=True, partial_images=3
    )
    events = [event async for event in stream]
    drafts = {base64.b64decode(e.b64_json) for e in events[:-1]}
    final = base64.b64decode(events[-1].b64_json)
    assert len(events) == 4 and final not in drafts
    assert list(streaming.stored().values()) == [final]
    await streaming.rt.db.dispose()
    for path in streaming.data_dir.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            for draft in drafts:
                assert draft not in content, path
            assert MARKER.encode() not in content, path
    logs = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert caplog.records and MARKER not in logs
    for event in events[:-1]:
        assert event.b64_json not in logs


def sdk(gateway, key: str):
    from reapi import AsyncReAPI

    return AsyncReAPI(
        base_url="http://gateway.test/v1",
        api_key=key,
        http_client=httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway.app)),
    )


async def test_the_sdk_pointed_at_the_gateway_streams_typed_events(streaming, sims):
    from reapi import InsufficientCreditsError
    from reapi.types import ImageStreamEvent

    _, key = await streaming.account(credits=1000)
    client = sdk(streaming, key)
    stream = await client.images.generate(
        model="gpt-image-2", prompt="p", stream=True, partial_images=2
    )
    events = [event async for event in stream]
    assert all(isinstance(e, ImageStreamEvent) for e in events)
    assert [e.partial_image_index for e in events] == [0, 1, None]
    assert events[-1].type == "image_generation.completed" and is_png(events[-1].image_bytes)
    edited = await client.images.edit(
        model="gpt-image-2", prompt="p", image=PNG, stream=True, partial_images=1
    )
    assert [e.type async for e in edited] == ["image_edit.partial_image", "image_edit.completed"]
    _, poor = await streaming.account(credits=0)
    with pytest.raises(InsufficientCreditsError):  # refused before the stream: raised at once
        await sdk(streaming, poor).images.generate(model="gpt-image-2", prompt="p", stream=True)
    await client.aclose()


async def test_the_sdk_raises_an_error_event(streaming, sims):
    from reapi import ReapiError

    for sim in sims.sims.values():
        sim.faults.set(Fault.TASK_FAILS)
    _, key = await streaming.account(credits=1000)
    stream = await sdk(streaming, key).images.generate(
        model="gpt-image-2", prompt="p", stream=True, partial_images=1
    )
    seen = []
    with pytest.raises(ReapiError) as raised:
        async for event in stream:
            seen.append(event.type)
    assert seen == ["image_generation.partial_image"]
    assert raised.value.code == "upstream_unavailable"


def test_the_sdk_in_process_streams_the_completed_events(httpx_mock):
    """In-process there is no one to stream from: the images come as completed events."""
    from tests.conftest import two_host_catalog

    from reapi import ReAPI
    from reapi.router import RouterConfig

    httpx_mock.add_response(
        url="http://primary.test/v1/images/generations",
        json={"created": 1, "data": [{"b64_json": base64.b64encode(PNG).decode()}] * 2},
    )
    client = ReAPI(
        catalog=two_host_catalog(),
        provider_keys={"primary": "k1", "backup": "k2"},
        provider_base_urls={"primary": "http://primary.test/v1", "backup": "http://b.test/v1"},
        router=RouterConfig(first_byte_timeout=1),
    )
    events = list(client.images.generate(model="gpt-image-2", prompt="p", n=2, stream=True))
    assert [e.type for e in events] == ["image_generation.completed"] * 2
    assert events[0].image_bytes == PNG and events[0].created_at > 0
    with pytest.raises(Exception, match="response_format"):
        client.images.generate(model="gpt-image-2", prompt="p", stream=True, response_format="url")


def _events(text: str) -> list[tuple[str, dict]]:
    blocks = [b for b in text.split("\n\n") if b]
    pairs = [block.split("\n") for block in blocks]
    return [(n.removeprefix("event: "), json.loads(d.removeprefix("data: "))) for n, d in pairs]


async def test_the_events_validate_against_openais_schemas(streaming, sims):
    from tests.server.test_openai_schemas import check

    _, key = await streaming.account(credits=1000)
    body = {"model": "gpt-image-2", "prompt": "p", "stream": True, "partial_images": 1}
    generated = await streaming.client.post(GENERATIONS, json=body, headers=auth(key))
    edited = await streaming.client.post(
        "/v1/images/edits",
        data={"model": "gpt-image-2", "prompt": "p", "stream": "true", "partial_images": "1"},
        files={"image": ("a.png", PNG, "image/png")},
        headers=auth(key),
    )
    schemas = {
        "image_generation.partial_image": "ImageGenPartialImageEvent",
        "image_generation.completed": "ImageGenCompletedEvent",
        "image_edit.partial_image": "ImageEditPartialImageEvent",
        "image_edit.completed": "ImageEditCompletedEvent",
    }
    seen = _events(generated.text) + _events(edited.text)
    assert [name for name, _ in seen] == list(schemas)
    for name, data in seen:
        assert data["type"] == name
        check(schemas[name], data)


async def test_a_json_edit_streams_too(gateway):
    """images/edits in JSON (images by URL): `stream` read from the JSON body."""
    _, key = await gateway.account(credits=1000)
    data_url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    response = await gateway.client.post(
        "/v1/images/edits",
        json={
            "model": "gpt-image-2",
            "prompt": "p",
            "images": [{"image_url": data_url}],
            "stream": True,
        },
        headers=auth(key),
    )
    assert response.status_code == 200
    assert [name for name, _ in _events(response.text)] == ["image_edit.completed"]


async def test_a_json_edit_refuses_a_spelled_stream_flag(gateway):
    _, key = await gateway.account(credits=1000)
    data_url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    body = {"model": "gpt-image-2", "prompt": "p", "images": [{"image_url": data_url}]}
    response = await gateway.client.post(
        "/v1/images/edits", json={**body, "stream": "true"}, headers=auth(key)
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "stream"
    assert gateway.upstream.calls == []

"""What a request cost, in its answer: the `x-reapi-credits-charged` header on an image's JSON
answer (and its idempotent replay) and on a settled video, `reapi.credits_charged` in a
streamed image's completed events, and the SDK's `RawResponse.credits_charged`."""

import json

import httpx
from tests.server.fakes import PNG
from tests.server.helpers import auth

from reapi import AsyncReAPI
from reapi_server.jobs.poller import JobPoller

HEADER = "x-reapi-credits-charged"
GENERATIONS = "/v1/images/generations"


async def last_usage(gateway, key: str) -> dict:
    return (await gateway.client.get("/v1/usage", headers=auth(key))).json()["data"][0]


async def test_an_image_answer_says_what_it_was_charged(gateway):
    _, key = await gateway.account(credits=1000)
    body = {"model": "gpt-image-2", "prompt": "p", "n": 2}
    response = await gateway.client.post(GENERATIONS, json=body, headers=auth(key))
    assert response.status_code == 200
    assert int(response.headers[HEADER]) == (await last_usage(gateway, key))["credit_cost"] == 80
    edited = await gateway.client.post(
        "/v1/images/edits",
        data={"model": "gpt-image-2", "prompt": "p"},
        files=[("image", ("a.png", PNG, "image/png"))],
        headers=auth(key),
    )
    assert edited.status_code == 200, edited.text
    assert int(edited.headers[HEADER]) == (await last_usage(gateway, key))["credit_cost"]


async def test_a_replay_repeats_the_first_answer_s_charge(gateway):
    _, key = await gateway.account(credits=1000)
    headers = {**auth(key), "Idempotency-Key": "k1"}
    body = {"model": "gpt-image-2", "prompt": "p"}
    first = await gateway.client.post(GENERATIONS, json=body, headers=headers)
    again = await gateway.client.post(GENERATIONS, json=body, headers=headers)
    assert first.headers[HEADER] == again.headers[HEADER] == "40"
    assert again.headers["idempotent-replayed"] == "true"
    assert (await gateway.client.get("/v1/credits", headers=auth(key))).json()["balance"] == 960


async def test_a_refused_request_has_no_charge_header(gateway):
    _, key = await gateway.account(credits=1)
    body = {"model": "gpt-image-2", "prompt": "p"}
    response = await gateway.client.post(GENERATIONS, json=body, headers=auth(key))
    assert response.status_code == 402 and HEADER not in response.headers


async def test_a_streamed_image_says_its_charge_in_its_completed_events(gateway):
    _, key = await gateway.account(credits=1000)
    body = {"model": "gpt-image-2", "prompt": "p", "n": 2, "stream": True}
    response = await gateway.client.post(GENERATIONS, json=body, headers=auth(key))
    assert response.status_code == 200 and HEADER not in response.headers
    events = [
        json.loads(block.split("\n")[1].removeprefix("data: "))
        for block in response.text.split("\n\n")
        if block
    ]
    assert len(events) == 2
    assert [e["reapi"]["credits_charged"] for e in events] == [80, 80]
    assert (await last_usage(gateway, key))["credit_cost"] == 80


async def test_a_video_says_its_charge_once_it_has_settled(gateway):
    _, key = await gateway.account(credits=100)
    body = {"model": "sim-video", "prompt": "p", "size": "1280x720"}
    created = await gateway.client.post("/v1/videos", json=body, headers=auth(key))
    assert created.status_code == 200 and HEADER not in created.headers  # held, not charged
    url = f"/v1/videos/{created.json()['id']}"
    await JobPoller(gateway.rt).run_once()
    running = await gateway.client.get(url, headers=auth(key))
    assert running.json()["status"] == "in_progress" and HEADER not in running.headers
    await JobPoller(gateway.rt).run_once()
    done = await gateway.client.get(url, headers=auth(key))
    assert done.json()["status"] == "completed"
    assert int(done.headers[HEADER]) == (await last_usage(gateway, key))["credit_cost"] == 40


async def test_a_failed_video_says_it_cost_nothing(gateway):
    _, key = await gateway.account(credits=100)
    gateway.upstream.video_outcome = "failed"
    body = {"model": "sim-video", "prompt": "p", "size": "1280x720"}
    created = (await gateway.client.post("/v1/videos", json=body, headers=auth(key))).json()
    poller = JobPoller(gateway.rt)
    for _ in range(8):
        await poller.run_once()
    failed = await gateway.client.get(f"/v1/videos/{created['id']}", headers=auth(key))
    assert failed.json()["status"] == "failed" and failed.headers[HEADER] == "0"


async def test_the_sdk_surfaces_the_charge_in_gateway_mode(gateway):
    _, key = await gateway.account(credits=1000)
    client = AsyncReAPI(
        base_url="http://gateway.test/v1",
        api_key=key,
        http_client=httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway.app)),
    )
    raw = await client.with_raw_response.images.generate(model="gpt-image-2", prompt="p", n=2)
    assert raw.credits_charged == 80 and raw.parse().data
    stream = await client.images.generate(model="gpt-image-2", prompt="p", stream=True)
    events = [event async for event in stream]
    assert events[-1].reapi is not None and events[-1].reapi.credits_charged == 40
    models = await client.with_raw_response.models.list()
    assert models.credits_charged is None  # an answer that charges nothing says nothing
    await client.aclose()


async def test_the_openapi_document_declares_the_header_where_answers_carry_it(gateway):
    """The header was sent and not declared: clients generated from `/openapi.json` did not know
    it, and schemathesis did not check its value."""
    document = (await gateway.client.get("/openapi.json")).json()
    declared = {
        (path, method): answer["headers"][HEADER]
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        for status, answer in operation.get("responses", {}).items()
        if HEADER in answer.get("headers", {}) and status == "200"
    }
    assert set(declared) == {
        (GENERATIONS, "post"),
        ("/v1/images/edits", "post"),
        ("/v1/videos/{video_id}", "get"),  # not its create: a price held is not charged yet
    }
    for header in declared.values():
        assert header["schema"] == {"type": "integer", "minimum": 0}
        assert header["required"] is False  # absent while not known
    # The image answer's 200 still documents both its JSON body and its event stream.
    content = document["paths"][GENERATIONS]["post"]["responses"]["200"]["content"]
    assert {"application/json", "text/event-stream"} <= set(content)

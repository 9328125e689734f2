"""`JsonAnswer`: every /v1 JSON answer without headers of its own, built without Starlette's
generic `render` and `init_headers`, and the same on the wire as Starlette's `Response`."""

import pytest
from starlette.responses import Response

from reapi_server.json_api.responses import JsonAnswer, json_response


@pytest.mark.parametrize("status", [100, 101, 200, 201, 204, 304, 400, 401, 404, 429, 500, 502])
def test_the_same_status_headers_and_body_as_starlettes_response(status):
    body = b'{"data":[{"b64_json":"AAAA"}]}'
    ours, theirs = JsonAnswer(body, status), Response(body, status, media_type="application/json")
    assert (ours.status_code, ours.raw_headers, ours.body) == (
        theirs.status_code,
        theirs.raw_headers,
        theirs.body,
    )
    assert ours.headers == theirs.headers and ours.background is None


async def test_it_sends_what_starlettes_response_sends():
    sent: dict[str, list[dict]] = {"ours": [], "theirs": []}
    body = b'{"a":1}'
    for name, response in (
        ("ours", json_response({"a": 1})),
        ("theirs", Response(body, media_type="application/json")),
    ):

        async def send(message, name=name):
            sent[name].append(message)

        await response({"type": "http"}, None, send)
    assert sent["ours"] == sent["theirs"]
    assert isinstance(json_response({"a": 1}), JsonAnswer)


def test_headers_of_its_own_go_the_long_way():
    response = json_response({"a": 1}, 200, {"Idempotent-Replayed": "true"})
    assert not isinstance(response, JsonAnswer)
    assert response.raw_headers[0] == (b"idempotent-replayed", b"true")

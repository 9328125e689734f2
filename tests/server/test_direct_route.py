"""`DirectRoute`: the image endpoints hand themselves their dependencies (no FastAPI dependency
solving on the hot path), and still answer every request as a FastAPI route did."""

from typing import Annotated

import pytest
from fastapi import APIRouter, Query, Request
from tests.server.helpers import auth

from reapi_server.openai_api.dependencies import Caller, Context, Rt
from reapi_server.openai_api.direct_route import DirectRoute


def _openai_error(response, status: int, code: str) -> None:
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code


async def test_the_caller_is_authenticated_and_rate_limited(make_gateway):
    gateway = await make_gateway(requests_per_minute=2)
    _, key = await gateway.account()
    body = {"model": "gpt-image-2", "prompt": "a lighthouse"}
    path = "/v1/images/generations"
    _openai_error(await gateway.client.post(path, json=body), 401, "missing_api_key")
    bad = auth("rk_live_" + "0" * 40)
    _openai_error(await gateway.client.post(path, json=body, headers=bad), 401, "invalid_api_key")
    for _ in range(2):
        assert (await gateway.client.post(path, json=body, headers=auth(key))).status_code == 200
    limited = await gateway.client.post(path, json=body, headers=auth(key))
    _openai_error(limited, 429, "rate_limit_exceeded")
    assert "retry-after" in limited.headers
    assert limited.headers["x-request-id"].startswith("req_")  # the access layer saw it


async def test_a_method_the_route_does_not_serve_is_405_as_before(gateway):
    _, key = await gateway.account()
    response = await gateway.client.get("/v1/images/generations", headers=auth(key))
    _openai_error(response, 405, "http_405")


async def test_the_request_context_reaches_the_access_log(gateway):
    """The same `RequestContext` the access layer made (its id is the usage row's)."""
    _, key = await gateway.account()
    body = {"model": "gpt-image-2", "prompt": "a lighthouse"}
    response = await gateway.client.post("/v1/images/generations", json=body, headers=auth(key))
    assert response.status_code == 200
    usage = (await gateway.client.get("/v1/usage", headers=auth(key))).json()["data"][0]
    assert usage["id"] == response.headers["x-request-id"]


def test_an_endpoint_declaring_anything_else_is_refused_when_the_route_is_made():
    router = APIRouter(route_class=DirectRoute)

    async def with_query(request: Request, rt: Rt, q: Annotated[str, Query()]) -> None: ...

    async def fine(request: Request, rt: Rt, principal: Caller, context: Context) -> None: ...

    router.add_api_route("/fine", fine, methods=["POST"])
    with pytest.raises(TypeError, match="direct route"):
        router.add_api_route("/query", with_query, methods=["POST"])


async def test_an_image_request_reads_the_runtime_once(gateway, monkeypatch):
    """Each read is a failed attribute lookup on Starlette's `State` before its `__getattr__`
    (~1.6 us): the route reads it once for the endpoint, the caller and the base URL."""
    from starlette.datastructures import State

    reads: list[str] = []
    original = State.__getattr__

    def counting(self, name):
        reads.append(name)
        return original(self, name)

    _, key = await gateway.account()
    monkeypatch.setattr(State, "__getattr__", counting)
    body = {"model": "gpt-image-2", "prompt": "a lighthouse"}
    response = await gateway.client.post("/v1/images/generations", json=body, headers=auth(key))
    assert response.status_code == 200
    assert reads.count("runtime") == 1


@pytest.mark.parametrize("name", ["authorization", "Content-Type", "x-twice", "idempotency-key"])
def test_a_direct_request_reads_its_headers_as_starlette_does(name):
    from starlette.requests import Request

    from reapi_server.openai_api.direct_request import DirectRequest

    raw = [(b"authorization", b"Bearer k"), (b"content-type", b"application/json")]
    raw += [(b"x-twice", b"first"), (b"x-twice", b"second"), (b"x-latin", "é".encode("latin-1"))]
    scope = {"type": "http", "headers": raw}
    direct, starlette = DirectRequest(dict(scope)).headers, Request(dict(scope)).headers
    assert direct.get(name) == starlette.get(name)
    assert direct.get(name, "default") == starlette.get(name, "default")
    assert direct.get("x-latin") == starlette.get("x-latin") == "é"
    assert direct.raw == starlette.raw and dict(direct) == dict(starlette)


def test_direct_headers_answer_as_starlettes():
    """One dict made per request answers as `Headers.get` does: any case, the first value of a
    repeated header, the default for a missing one."""
    from starlette.datastructures import Headers

    from reapi_server.openai_api.direct_request import DirectHeaders

    scope = {
        "type": "http",
        "headers": [(b"x-a", b"1"), (b"host", b"h\xe9"), (b"x-a", b"2"), (b"empty", b"")],
    }
    direct, theirs = DirectHeaders(scope=scope), Headers(scope=scope)
    for name in ("x-a", "X-A", "host", "empty", "missing"):
        assert direct.get(name) == theirs.get(name), name
        assert direct.get(name, "d") == theirs.get(name, "d"), name

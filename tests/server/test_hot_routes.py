"""`HotRoutes`: the image endpoints are served straight from the access layer, skipping the
router's layers, and answer every request exactly as the long way through the router does:
the same statuses and OpenAI error bodies, the request id, the access log line and the metrics
labelled with the route's template."""

import json
import logging

import pytest
from tests.server.fakes import PNG
from tests.server.helpers import auth, scrape_metrics

from reapi_server.observability.logging import JsonFormatter
from reapi_server.openai_api.hot_routes import HotRoutes

GENERATIONS = "/v1/images/generations"
EDITS = "/v1/images/edits"


def _counted(text: str, method: str, route: str, status: int) -> float:
    prefix = f'reapi_http_requests_total{{method="{method}",route="{route}",status="{status}"}} '
    line = next((line for line in text.splitlines() if line.startswith(prefix)), None)
    return float(line.removeprefix(prefix)) if line else 0.0


def _access_entries(caplog) -> list[dict]:
    records = [r for r in caplog.records if r.name == "reapi_server.access"]
    return [json.loads(JsonFormatter().format(r)) for r in records]


async def _requests(gateway, key: str) -> list[tuple[str, str, dict]]:
    """(method, path, httpx options): answers of every kind on the hot paths."""
    good = {"model": "gpt-image-2", "prompt": "a lighthouse"}
    return [
        ("POST", GENERATIONS, {"json": good, "headers": auth(key)}),
        ("POST", GENERATIONS, {"json": good}),  # 401: no key
        ("POST", GENERATIONS, {"json": good, "headers": auth("rk_live_" + "0" * 40)}),
        ("POST", GENERATIONS, {"content": b"{not json", "headers": auth(key)}),  # 400
        ("POST", GENERATIONS, {"json": {"prompt": ""}, "headers": auth(key)}),  # 400 (pydantic)
        ("POST", GENERATIONS, {"json": {**good, "n": True}, "headers": auth(key)}),
        ("POST", GENERATIONS, {"json": {**good, "model": "no-such"}, "headers": auth(key)}),
        ("POST", GENERATIONS, {"json": {**good, "stream": "yes"}, "headers": auth(key)}),
        ("POST", GENERATIONS, {"content": b"x" * 2048, "headers": auth(key)}),  # 413
        ("GET", GENERATIONS, {"headers": auth(key)}),  # 405
        ("PUT", GENERATIONS, {"json": good, "headers": auth(key)}),  # 405
        ("POST", GENERATIONS + "/", {"json": good, "headers": auth(key)}),  # the long way
        (
            "POST",
            EDITS,
            {
                "data": {"model": "gpt-image-2", "prompt": "p"},
                "files": {"image": ("a.png", PNG, "image/png")},
                "headers": auth(key),
            },
        ),
        ("POST", EDITS, {"content": b"text", "headers": auth(key)}),  # 400: neither kind
    ]


def _shape(response) -> tuple:
    """What must be the same both ways: status, the error body (or that it succeeded), and
    the headers a client reads."""
    body = response.json() if response.content else None
    if response.status_code == 200:
        body = sorted(body)
    return (
        response.status_code,
        body,
        response.headers.get("content-type"),
        response.headers.get("retry-after"),
        response.headers.get("allow"),
        response.headers.get("location"),
        response.headers["x-request-id"][:4],
    )


async def test_every_answer_is_the_same_as_the_long_way(make_gateway, monkeypatch):
    gateway = await make_gateway(max_body_bytes=1024)
    _, key = await gateway.account()
    requests = await _requests(gateway, key)
    taken: list[str] = []
    take = HotRoutes.take

    def counting(self, scope):
        app = take(self, scope)
        if app is not None:
            taken.append(scope["path"])
        return app

    monkeypatch.setattr(HotRoutes, "take", counting)
    hot = [_shape(await gateway.client.request(m, p, **options)) for m, p, options in requests]
    assert taken.count(GENERATIONS) == 9 and taken.count(EDITS) == 2  # the rest went long
    monkeypatch.setattr(HotRoutes, "take", lambda self, scope: None)
    long_way = [_shape(await gateway.client.request(m, p, **options)) for m, p, options in requests]
    assert hot == long_way
    statuses = [shape[0] for shape in hot]
    assert statuses == [200, 401, 401, 400, 400, 400, 404, 400, 413, 405, 405, 307, 200, 400]


@pytest.mark.parametrize("path", [GENERATIONS, EDITS])
async def test_the_router_serves_each_hot_path_with_the_same_route(gateway, path):
    """The hot routes are the routes the app's router picks for those paths."""
    hot = next(
        m.kwargs["hot_routes"] for m in gateway.app.user_middleware if "hot_routes" in m.kwargs
    )
    assert path in hot.paths
    scope = {"type": "http", "path": path, "method": "POST", "root_path": ""}
    assert hot.take(dict(scope)) is not None
    seen: dict = {}

    async def endpoint_of(scope, receive, send):
        seen["route"] = scope.get("route")

    route = hot._routes[path]
    original = route.handle
    try:
        route.handle = endpoint_of  # type: ignore[method-assign]
        await gateway.app.router({**scope, "headers": [], "query_string": b""}, None, None)
    finally:
        route.handle = original  # type: ignore[method-assign]
    assert seen["route"] is route


async def test_an_error_inside_the_hot_path_keeps_the_shape_the_id_the_log_and_the_count(
    gateway, monkeypatch, caplog
):
    from reapi_server.images import service

    async def explode(*args, **kwargs):
        raise ValueError("MARKER-internal-detail")

    caplog.set_level(logging.INFO, logger="reapi_server")
    monkeypatch.setattr(service, "generate", explode)
    _, key = await gateway.account()
    before = _counted(await scrape_metrics(gateway), "POST", GENERATIONS, 500)
    response = await gateway.client.post(GENERATIONS, json={"prompt": "p"}, headers=auth(key))
    assert response.status_code == 500
    assert response.json() == {
        "error": {
            "message": "the gateway failed to handle this request",
            "type": "server_error",
            "param": None,
            "code": "internal_error",
        }
    }
    request_id = response.headers["x-request-id"]
    assert request_id.startswith("req_")
    (entry,) = [e for e in _access_entries(caplog) if e["msg"] == "request"]
    assert entry["route"] == GENERATIONS and entry["status"] == 500
    assert entry["request_id"] == request_id
    rendered = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    assert "ValueError" in rendered and "MARKER" not in rendered
    after = _counted(await scrape_metrics(gateway), "POST", GENERATIONS, 500)
    assert after == before + 1


async def test_handled_errors_and_wrong_methods_are_logged_and_counted_by_template(gateway, caplog):
    caplog.set_level(logging.INFO, logger="reapi_server")
    text = await scrape_metrics(gateway)
    before = {(m, s): _counted(text, m, GENERATIONS, s) for m, s in (("POST", 401), ("GET", 405))}
    assert (await gateway.client.post(GENERATIONS, json={"prompt": "p"})).status_code == 401
    assert (await gateway.client.get(GENERATIONS)).status_code == 405
    text = await scrape_metrics(gateway)
    assert _counted(text, "POST", GENERATIONS, 401) == before["POST", 401] + 1
    assert _counted(text, "GET", GENERATIONS, 405) == before["GET", 405] + 1
    entries = [(e["method"], e["route"], e["status"]) for e in _access_entries(caplog)]
    assert ("POST", GENERATIONS, 401) in entries and ("GET", GENERATIONS, 405) in entries


async def test_the_metrics_listener_is_still_asked_first(gateway):
    """A request to an image path on the metrics listener is that listener's 404, never the
    endpoint (nor logged, nor counted)."""
    host, port = gateway.rt.settings.metrics_address
    import httpx

    transport = httpx.ASGITransport(app=gateway.app)
    async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}:{port}") as client:
        response = await client.post(GENERATIONS, json={"prompt": "p"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "http_404"
    assert "x-request-id" not in response.headers


async def test_a_hot_request_passes_none_of_the_routing_layers(gateway, monkeypatch):
    from starlette.middleware.exceptions import ExceptionMiddleware
    from starlette.routing import Router

    passed: list[str] = []
    for cls in (ExceptionMiddleware, Router):
        original = cls.__call__

        async def counting(self, scope, receive, send, original=original, name=cls.__name__):
            passed.append(name)
            await original(self, scope, receive, send)

        monkeypatch.setattr(cls, "__call__", counting)
    _, key = await gateway.account()
    body = {"model": "gpt-image-2", "prompt": "p"}
    response = await gateway.client.post(GENERATIONS, json=body, headers=auth(key))
    assert response.status_code == 200 and passed == []
    assert (await gateway.client.get("/v1/models", headers=auth(key))).status_code == 200
    assert "ExceptionMiddleware" in passed and "Router" in passed

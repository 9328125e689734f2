"""`EnteredAtAccess`: an HTTP request of the gateway enters at its access layer, past FastAPI's
and Starlette's outer layers (which have nothing to do for it); it is answered as before."""

import sys

import pytest
from tests.server.helpers import auth

#: The outer layers' frames, as a request's coroutines would show them.
OUTER = (
    "FastAPI.__call__",
    "Starlette.__call__",
    "ServerErrorMiddleware.__call__",
    "ExceptionTelemetryMiddleware.__call__",
    "AppBodyLimitMiddleware.__call__",
)


def _callers() -> list[str]:
    frame = sys._getframe(2)
    names = []
    while frame is not None:
        names.append(frame.f_code.co_qualname)
        frame = frame.f_back
    return names


async def _layers_passed(app, method: str, path: str, headers: list, body: bytes) -> list[str]:
    """The frames above the call that sends the answer's start, and its status."""
    seen: list[str] = []
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "scheme": "http",
        "server": ("127.0.0.1", 8080),
        "client": ("127.0.0.1", 5000),
        "method": method,
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1:8080"), *headers],
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive():
        return messages.pop() if messages else {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start":
            seen.extend(_callers())
            seen.append(f"status {message['status']}")

    await app(scope, receive, send)
    return seen


@pytest.mark.parametrize("hot", [True, False])
async def test_a_request_enters_at_the_access_layer(gateway, hot):
    _, key = await gateway.account()
    if hot:
        args = ("POST", "/v1/images/generations", [*auth(key).items()])
        body = b'{"model": "gpt-image-2", "prompt": "a lighthouse"}'
    else:
        args = ("GET", "/v1/models", [*auth(key).items()])
        body = b""
    headers = [(k.lower().encode(), v.encode()) for k, v in args[2]]
    headers.append((b"content-type", b"application/json"))
    seen = await _layers_passed(gateway.app, args[0], args[1], headers, body)
    assert "status 200" in seen
    assert "AccessMiddleware.__call__" in seen
    assert not [name for name in seen if name in OUTER]

"""The answer to a request uvicorn cancels at the end of the drain (`AccessMiddleware`)."""

import asyncio

import orjson
import pytest

from reapi_server.observability.metrics import Metrics
from reapi_server.observability.middleware import AccessMiddleware


async def _cut(scope, receive, send):
    raise asyncio.CancelledError


async def test_the_503_of_a_cut_request_is_honest_about_a_charge_that_may_have_landed():
    """A request cut as its settlement committed was charged: the message said only that it
    did not finish, and to retry (a retry without the key is charged again)."""
    sent = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/images/generations",
        "raw_path": b"/v1/images/generations",
        "query_string": b"",
        "headers": [],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8000),
        "scheme": "http",
        "http_version": "1.1",
        "root_path": "",
    }
    with pytest.raises(asyncio.CancelledError):
        await AccessMiddleware(_cut, Metrics())(scope, receive, send)
    assert sent[0]["status"] == 503
    message = orjson.loads(sent[1]["body"])["error"]["message"]
    assert "charged" in message and "not charged again" in message
    assert "without one, a retry is a new request" in message

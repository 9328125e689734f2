"""/metrics shows credit totals and providers: it is served on its own listener
(`metrics_listen`, loopback by default), and on the main listener only to a bearer
`metrics_token`; anyone else gets the 404 of an unknown path. /docs and /openapi.json stay
public unless `openapi_docs` is off."""

from __future__ import annotations

import logging
import signal
import socket

import httpx
import pytest
from tests.server.helpers import access_entries, auth, scrape_metrics
from tests.server.live import free_port
from tests.server.served import served_gateway

from reapi_server.config import Settings


async def test_the_main_listener_hides_metrics(gateway):
    _, key = await gateway.account()
    unknown = await gateway.client.get("/no-such-path")
    for headers in ({}, auth(key), {"authorization": "Bearer "}):
        hidden = await gateway.client.get("/metrics", headers=headers)
        assert hidden.status_code == 404 and hidden.content == unknown.content
    assert "reapi_http_requests_total" in await scrape_metrics(gateway)


async def test_a_metrics_token_opens_the_main_listener(make_gateway):
    gateway = await make_gateway(metrics_token="scrape-8c1d")
    assert (await gateway.client.get("/metrics")).status_code == 404
    wrong = await gateway.client.get("/metrics", headers=auth("scrape-8c1e"))
    assert wrong.status_code == 404
    right = await gateway.client.get("/metrics", headers=auth("scrape-8c1d"))
    assert right.status_code == 200 and "reapi_http_requests_total" in right.text


async def test_the_metrics_listener_serves_metrics_only(gateway, caplog):
    caplog.set_level(logging.INFO, logger="reapi_server.access")
    port = gateway.rt.settings.metrics_address[1]
    transport = httpx.ASGITransport(app=gateway.app)
    async with httpx.AsyncClient(transport=transport, base_url=f"http://127.0.0.1:{port}") as c:
        assert (await c.get("/metrics")).status_code == 200
        for path in ("/v1/models", "/healthz", "/docs", "/openapi.json"):
            missing = await c.get(path)
            assert missing.status_code == 404, path
            assert missing.json()["error"]["code"] == "http_404"
    # Its requests are neither logged nor counted: no access line, so none lacks a code.
    assert access_entries(caplog) == []
    # On the main listener, a hidden /metrics is the app's 404: logged, with its code.
    assert (await gateway.client.get("/metrics")).status_code == 404
    assert [(e["status"], e.get("code")) for e in access_entries(caplog)] == [(404, "http_404")]


async def test_docs_can_be_turned_off(make_gateway):
    public = await make_gateway()
    assert (await public.client.get("/docs")).status_code == 200
    assert (await public.client.get("/openapi.json")).status_code == 200
    private = await make_gateway(openapi_docs=False)
    assert (await private.client.get("/docs")).status_code == 404
    assert (await private.client.get("/openapi.json")).status_code == 404


def test_metrics_settings():
    assert Settings().metrics_address == ("127.0.0.1", 9464)
    assert Settings(metrics_listen="[::1]:9000").metrics_address == ("::1", 9000)
    for off in ("", "off", None):
        assert Settings(metrics_listen=off).metrics_address is None
    for bad in ("9464", "host:", "host:70000", "127.0.0.1:8000"):
        with pytest.raises(ValueError):
            Settings(metrics_listen=bad)


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_served_gateway_has_a_metrics_listener(tmp_path, workers):
    """With `--workers N` each worker serves the shared listener with its own (per process)
    metrics, as the main port did before."""
    metrics_port = free_port()
    env = {"REAPI_METRICS_LISTEN": f"127.0.0.1:{metrics_port}"}
    with served_gateway(tmp_path / "a", "--workers", workers, env=env) as gateway:
        headers = auth(gateway.key)
        for _ in range(4):
            assert httpx.get(f"{gateway.base_url}/v1/models", headers=headers).status_code == 200
        assert httpx.get(f"{gateway.base_url}/metrics").status_code == 404
        scrapes = [httpx.get(f"http://127.0.0.1:{metrics_port}/metrics") for _ in range(6)]
        assert all(s.status_code == 200 for s in scrapes)
        assert any('route="/v1/models"' in s.text for s in scrapes)
        other = httpx.get(f"http://127.0.0.1:{metrics_port}/v1/models", headers=headers)
        assert other.status_code == 404
    # a clean stop (uvicorn re-raises the SIGTERM it handled, in a single process)
    assert gateway.process.returncode in (0, -signal.SIGTERM), gateway.text[-2000:]
    off = {"REAPI_METRICS_LISTEN": "off"}
    with served_gateway(tmp_path / "b", env=off, port=free_port()) as gateway:
        assert _refused(metrics_port)
        assert httpx.get(f"{gateway.base_url}/metrics").status_code == 404

"""URLs an upstream's answer sends the gateway to (a result to download) are requested only when
they lead to a public address or to a configured provider's own origin: a compromised provider
must not make the gateway read its own network and hand it to a caller as an image."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
from collections.abc import AsyncIterator

import httpcore
import httpx
import pytest
from tests.conftest import two_host_catalog
from tests.server.conftest import settings_for
from tests.server.fakes import PNG
from tests.server.helpers import auth

from reapi import APIConnectionError, APIResponseError
from reapi._secret import Secret
from reapi.core import HttpxTransport, UrlPolicy
from reapi.providers import Connection, GeneratedFile, UpstreamRequest
from reapi_server.mirror.fetch import upstream_body
from reapi_server.pinned_connect import PinnedBackend, pin_client
from reapi_server.result_urls import CheckedTransport, ResultUrls
from reapi_server.runtime import build_runtime
from reapi_server.upstream import AiohttpTransport
from reapi_server.upstream_h1 import H1Transport

INSIDE = b"role credentials of the machine the gateway runs on"
GENERATIONS = "/v1/images/generations"
BODY = {"model": "gpt-image-2", "prompt": "a lighthouse"}


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/gateway",
        "http://127.0.0.1:9464/metrics",
        "http://localhost:9464/metrics",  # a name that resolves inside
        "http://[::1]/x.png",
        "http://10.0.0.5/x.png",
        "http://[::ffff:7f00:1]/x.png",
        "file:///etc/passwd",
    ],
)
async def test_an_answer_naming_a_url_inside_the_network_is_not_fetched(gateway, url):
    gateway.upstream.image_url = url
    gateway.upstream.elsewhere = INSIDE
    _, key = await gateway.account()
    response = await gateway.client.post(GENERATIONS, json=BODY, headers=auth(key))
    assert response.status_code == 502, response.text
    assert base64.b64encode(INSIDE).decode() not in response.text
    assert url not in response.text and "169.254" not in response.text
    hosts = {host for host, _, _ in gateway.upstream.calls}
    assert hosts <= {"primary.test", "backup.test"}, hosts


async def test_an_answer_naming_a_public_url_is_fetched(gateway):
    gateway.upstream.image_url = "http://93.184.215.14/generated/x.png"  # an address: no DNS
    _, key = await gateway.account()
    response = await gateway.client.post(GENERATIONS, json=BODY, headers=auth(key))
    assert response.status_code == 200, response.text
    assert base64.b64decode(response.json()["data"][0]["b64_json"]) == PNG
    assert ("93.184.215.14", "GET", "/generated/x.png") in gateway.upstream.calls


async def test_fetch_allow_networks_lets_a_private_network_through(make_gateway):
    gateway = await make_gateway(fetch_allow_networks=["10.20.0.0/16"])
    gateway.upstream.image_url = "http://10.20.3.4/x.png"
    _, key = await gateway.account()
    response = await gateway.client.post(GENERATIONS, json=BODY, headers=auth(key))
    assert response.status_code == 200, response.text
    assert ("10.20.3.4", "GET", "/x.png") in gateway.upstream.calls


async def test_a_video_streamed_into_storage_is_checked_too(gateway):
    route = gateway.rt.catalog.models["sim-video"].routes[0]
    video = GeneratedFile(
        "video/mp4",
        url="http://169.254.169.254/video.mp4",
        fetch=UpstreamRequest("GET", "http://169.254.169.254/video.mp4", download=True),
    )
    body = upstream_body(gateway.rt, route, video)
    assert body is not None and not isinstance(body, bytes)
    with pytest.raises(APIResponseError, match="does not lead to a public address"):
        async for _ in body:
            pass
    assert gateway.upstream.calls == []


async def test_the_configured_origins_go_as_they_are_and_names_are_resolved():
    asked: list[tuple[str, int]] = []

    async def resolver(host: str, port: int) -> list[str]:
        asked.append((host, port))
        if host == "unknown.example":  # as getaddrinfo fails (a proxy may know it)
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return {"cdn.example": ["93.184.215.14"], "rebound.example": ["93.184.215.14", "10.0.0.1"]}[
            host
        ]

    urls = ResultUrls(
        [Connection("sim", "http://127.0.0.1:8123/v1", Secret("k"))], UrlPolicy(), resolver
    )
    await urls.check("http://127.0.0.1:8123/files/a.png", "sim")  # the operator's choice
    await urls.check("https://cdn.example/a.png", "sim")
    await urls.check("https://unknown.example/a.png", "sim")  # not reachable from here either
    for refused in (
        "http://127.0.0.1:8124/files/a.png",  # another port of the same host
        "http://127.0.0.1:8123@10.0.0.1/a.png",
        "https://rebound.example/a.png",  # one private address among public ones
    ):
        with pytest.raises(APIResponseError):
            await urls.check(refused, "sim")
    assert asked == [("cdn.example", 443), ("unknown.example", 443), ("rebound.example", 443)]


async def test_the_default_transport_checks_the_addresses_it_connects_to():
    """DNS rebinding: the first check hears a public address, the connect resolves `localhost`
    to loopback. `upstream_h1` resolves once and checks what it connects to."""
    served: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        served.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\ninside")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]

    async def rebinding(host: str, port: int) -> list[str]:
        return ["93.184.215.14"]  # what the first lookup heard

    async def fetch(urls: ResultUrls) -> tuple[int, dict[str, str], bytes]:
        h1 = H1Transport()
        h1.address_check = urls.connect_check
        transport = CheckedTransport(h1, urls)
        request = UpstreamRequest("GET", f"http://localhost:{port}/x.png", download=True)
        try:
            return await transport.exchange(request, "sim", 2.0, 2.0)
        finally:
            await transport.aclose()

    async with server:
        with pytest.raises(APIConnectionError):
            await fetch(ResultUrls([], UrlPolicy(), rebinding))
        assert served == []
        configured = [Connection("sim", f"http://localhost:{port}/v1", Secret("k"))]
        status, _, body = await fetch(ResultUrls(configured, UrlPolicy(), rebinding))
        assert (status, body) == (200, b"inside") and len(served) == 1


async def rebinding(host: str, port: int) -> list[str]:
    """What the first lookup hears; the client's own lookup of `localhost` then hears loopback."""
    return ["93.184.215.14"]


@contextlib.asynccontextmanager
async def loopback_server() -> AsyncIterator[tuple[int, list[bytes]]]:
    """A server on loopback, and the heads of the requests it was sent."""
    served: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        served.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\nconnection: close\r\n\r\ninside")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1], served


def aiohttp_transport(urls: ResultUrls) -> AiohttpTransport:
    transport = AiohttpTransport()
    transport.address_check = urls.host_check
    return transport


def httpx_transport(urls: ResultUrls) -> HttpxTransport:
    client = httpx.AsyncClient(follow_redirects=False, trust_env=False)
    assert pin_client(client, urls.host_check)
    return HttpxTransport(client)


@pytest.mark.parametrize("make", [aiohttp_transport, httpx_transport], ids=["aiohttp", "httpx"])
async def test_the_aiohttp_and_httpx_transports_connect_only_to_checked_addresses(make):
    """DNS rebinding on `upstream_client = "aiohttp"` and `"httpx"`: the first check hears a
    public address, the client's own lookup loopback. Each checks what it connects to."""

    async def fetch(urls: ResultUrls, port: int) -> tuple[int, dict[str, str], bytes]:
        transport = CheckedTransport(make(urls), urls)
        request = UpstreamRequest("GET", f"http://localhost:{port}/x.png", download=True)
        try:
            return await transport.exchange(request, "sim", 2.0, 2.0)
        finally:
            await transport.aclose()

    async with loopback_server() as (port, served):
        with pytest.raises(APIConnectionError):
            await fetch(ResultUrls([], UrlPolicy(), rebinding), port)
        assert served == []
        allowed = UrlPolicy(allow_networks=("127.0.0.0/8",))
        status, _, body = await fetch(ResultUrls([], allowed, rebinding), port)
        assert (status, body) == (200, b"inside") and len(served) == 1
        configured = [Connection("sim", f"http://localhost:{port}/v1", Secret("k"))]
        status, _, body = await fetch(ResultUrls(configured, UrlPolicy(), rebinding), port)
        assert (status, body) == (200, b"inside") and len(served) == 2


@pytest.mark.parametrize("client", ["h1", "aiohttp", "httpx"])
@pytest.mark.parametrize("allowed", [False, True], ids=["refused", "fetch_allow_networks"])
async def test_every_upstream_client_connects_only_to_checked_addresses(tmp_path, client, allowed):
    """The runtime as `upstream_client` builds it: a result URL whose name rebinds to loopback
    after the first check is not requested, unless `fetch_allow_networks` lets loopback in."""
    networks = ["127.0.0.0/8"] if allowed else []
    settings = settings_for(tmp_path, upstream_client=client, fetch_allow_networks=networks)
    rt = build_runtime(settings, catalog=two_host_catalog())
    assert rt.result_urls is not None
    rt.result_urls._resolve = rebinding
    try:
        async with loopback_server() as (port, served):
            request = UpstreamRequest("GET", f"http://localhost:{port}/x.png", download=True)
            if allowed:
                status, _, body = await rt.engine.transport.exchange(request, "sim", 2.0, 2.0)
                assert (status, body) == (200, b"inside") and len(served) == 1
            else:
                with pytest.raises(APIConnectionError):
                    await rt.engine.transport.exchange(request, "sim", 2.0, 2.0)
                assert served == []
    finally:
        await rt.engine.aclose()


@pytest.mark.parametrize("client", ["h1", "aiohttp", "httpx"])
async def test_a_video_is_copied_into_storage_only_from_checked_addresses(tmp_path, client):
    """The mirror streams a video through the engine's httpx client, whatever the transport:
    the runtime pins that client's connections too."""
    rt = build_runtime(settings_for(tmp_path, upstream_client=client), catalog=two_host_catalog())
    assert rt.result_urls is not None
    rt.result_urls._resolve = rebinding
    route = rt.catalog.models["sim-video"].routes[0]
    try:
        async with loopback_server() as (port, served):
            url = f"http://localhost:{port}/video.mp4"
            video = GeneratedFile(
                "video/mp4", url=url, fetch=UpstreamRequest("GET", url, download=True)
            )
            body = upstream_body(rt, route, video)
            assert body is not None and not isinstance(body, bytes)
            with pytest.raises(APIConnectionError):
                async for _ in body:
                    pass
            assert served == []
    finally:
        await rt.engine.aclose()


async def test_the_httpx_client_keeps_its_proxies_and_pins_its_direct_connections(monkeypatch):
    """Behind `HTTPS_PROXY` the proxy resolves names: its connections keep httpx's backend."""
    monkeypatch.setenv("HTTPS_PROXY", "http://10.1.2.3:3128")
    client = httpx.AsyncClient()
    try:
        assert pin_client(client, ResultUrls([], UrlPolicy()).host_check)
        direct = client._transport
        assert isinstance(direct, httpx.AsyncHTTPTransport)
        assert isinstance(direct._pool._network_backend, PinnedBackend)
        proxied = client._transport_for_url(httpx.URL("https://cdn.example/a.png"))
        assert proxied is not direct
        assert isinstance(proxied, httpx.AsyncHTTPTransport)
        assert not isinstance(proxied._pool._network_backend, PinnedBackend)
    finally:
        await client.aclose()
    mocked = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    assert not pin_client(mocked, ResultUrls([], UrlPolicy()).host_check)
    await mocked.aclose()


async def test_a_configured_origin_is_connected_to_by_name():
    """A provider's own host (its streams) is connected to as httpx would, by name: no lookup
    of ours and no check, so nothing changes for it (anyio's happy eyeballs included)."""
    looked_up: list[str] = []

    async def lookup(host: str, port: int) -> list[str]:
        looked_up.append(host)
        return ["127.0.0.1"]

    def refuse(host: str, port: int, addresses: list[str]) -> None:
        raise PermissionError("checked")

    async with loopback_server() as (port, _):
        backend = PinnedBackend(
            refuse, httpcore.AnyIOBackend(), lookup, trusted=lambda h, _: h == "localhost"
        )
        stream = await backend.connect_tcp("localhost", port, timeout=2.0)
        await stream.aclose()
        assert looked_up == []
        with pytest.raises(httpcore.ConnectError, match="checked"):
            await backend.connect_tcp("elsewhere.test", port)
        assert looked_up == ["elsewhere.test"]

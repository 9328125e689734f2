"""The gateway's upstream transports (plain HTTP/1.1 `h1`, the default, and aiohttp) on real
sockets: the OpenAI simulators as upstreams, their fault switches on, and the same answers,
errors and failover as the SDK's httpx engine."""

import asyncio
import base64
import enum
import json
import shutil
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from aiohttp import web
from tests.conftest import two_host_catalog
from tests.server.conftest import GATEWAY, settings_for
from tests.server.fakes import PNG
from tests.server.helpers import auth, ledger_matches, make_account

from reapi import APIConnectionError, APITimeoutError
from reapi.catalog import Catalog
from reapi.core import AsyncEngine
from reapi.providers import UpstreamRequest
from reapi.router import InMemoryBreakerStore, Router, RouterConfig
from reapi.testing import (
    SIMULATOR_KEY,
    OpenAISimulator,
    RunningSimulators,
    SimulatorSpec,
    run_simulators,
)
from reapi_server import upstream
from reapi_server.app import create_app
from reapi_server.upstream import AiohttpTransport, aiohttp_engine, encode_body
from reapi_server.upstream_h1 import H1Transport

FIRST_BYTE = 0.3
TRANSPORTS = {"aiohttp": AiohttpTransport, "h1": H1Transport}


@pytest.fixture(params=sorted(TRANSPORTS))
def kind(request: pytest.FixtureRequest) -> str:
    """Which transport (`upstream_client`) a test runs on: each test runs on both."""
    return request.param


def engine_for(kind: str, router: Router) -> AsyncEngine:
    if kind == "aiohttp":
        return aiohttp_engine(router)
    return AsyncEngine(router, transport=H1Transport())


PNG_B64 = base64.b64encode(PNG).decode()


@pytest.fixture(scope="module")
def sims() -> Iterator[RunningSimulators]:
    running = run_simulators(
        {
            "primary": SimulatorSpec(OpenAISimulator(SIMULATOR_KEY), "/v1"),
            "backup": SimulatorSpec(OpenAISimulator(SIMULATOR_KEY), "/v1"),
        }
    )
    yield running
    running.stop()


@pytest.fixture
def faults(sims: RunningSimulators) -> Iterator[dict[str, str]]:
    """Set transport faults by simulator name; all cleared afterwards."""
    wanted: dict[str, str] = {}
    yield wanted
    for server in sims.servers.values():
        server.faults.set("none")


def apply(sims: RunningSimulators, faults: dict[str, str]) -> None:
    for name, server in sims.servers.items():
        server.faults.set(faults.get(name, "none"))


def image_request(base: str) -> UpstreamRequest:
    return UpstreamRequest(
        "POST",
        f"{base}/images/generations",
        headers={"Authorization": f"Bearer {SIMULATOR_KEY}"},
        json={"model": "gpt-image-2", "prompt": "a lighthouse", "size": "1024x1024"},
    )


async def test_send_answers_like_the_httpx_engine(sims, faults, kind):
    engine = engine_for(kind, Router(RouterConfig(first_byte_timeout=FIRST_BYTE)))
    base = sims.provider_urls["primary"]
    try:
        reply = await engine.send(image_request(base), "primary", FIRST_BYTE)
        assert reply.status == 200 and json.loads(reply.content)["data"]
        assert reply.headers["content-type"].startswith("application/json")
        assert all(name == name.lower() for name in reply.headers)

        faults["primary"] = "error_500"
        apply(sims, faults)
        assert (await engine.send(image_request(base), "primary", FIRST_BYTE)).status == 500

        faults["primary"] = "hang"
        apply(sims, faults)
        started = time.perf_counter()
        with pytest.raises(APITimeoutError):
            await engine.send(image_request(base), "primary", FIRST_BYTE)
        assert FIRST_BYTE * 0.9 < time.perf_counter() - started < FIRST_BYTE + 1.0

        faults["primary"] = "reset"
        apply(sims, faults)
        with pytest.raises(APIConnectionError):
            await engine.send(image_request(base), "primary", FIRST_BYTE)
    finally:
        await engine.aclose()


async def test_the_httpx_pool_is_made_only_when_something_streams(sims):
    """Idle memory (issue 15): the aiohttp engine's requests never touch the httpx pool; it is
    made by the first stream (or mirrored video), and closing an engine that never made it works."""
    engine = aiohttp_engine(Router(RouterConfig(first_byte_timeout=FIRST_BYTE)))
    base = sims.provider_urls["primary"]
    try:
        assert (await engine.send(image_request(base), "primary", FIRST_BYTE)).status == 200
        assert engine._client is None
        async with engine.stream_chunks(
            image_request(base), "primary", first_byte=FIRST_BYTE, idle=5
        ) as (status, chunks):
            assert status == 200
            assert json.loads(b"".join([chunk async for chunk in chunks]))["data"]
        assert engine.client is engine.client
    finally:
        await engine.aclose()
    unused = aiohttp_engine(Router(RouterConfig()))
    await unused.aclose()
    assert unused._client is None


def test_bodies_are_encoded_as_httpx_encodes_them():
    plain = UpstreamRequest("POST", "http://upstream.test/v1/x", json={"prompt": "é", "n": 1})
    body, headers = encode_body(plain)
    assert body == httpx.Request("POST", plain.url, json=plain.json).content
    assert headers["Content-Type"] == "application/json"

    form = UpstreamRequest(
        "POST",
        "http://upstream.test/v1/images/edits",
        data=(("prompt", "p"), ("image[]", "ignored-name-clash")),
        files=(("image[]", ("a.png", PNG, "image/png")), ("image[]", ("b.png", PNG, "image/png"))),
    )
    body, headers = encode_body(form)
    boundary = headers["Content-Type"].split("boundary=")[1]
    assert body is not None and body.count(boundary.encode()) == 5  # 4 parts and the end
    assert body.count(PNG) == 2 and b'name="prompt"' in body


def _httpx_json(value: object) -> bytes | type[BaseException]:
    try:
        return httpx.Request("POST", "http://upstream.test/", json=value).content
    except (TypeError, ValueError) as error:  # UnicodeEncodeError is a ValueError
        return type(error)


class _Size(enum.Enum):
    SMALL = "256x256"


@pytest.mark.parametrize(
    "value",
    [
        {"prompt": 'a "quoted" \\ line\n\t\x00\x1f\x7f\u2028 é 😀', "n": 1, "stream": True},
        {"nested": [{"a": [1, -1, None, False, ""]}, []], "empty": {}},
        {"big": 2**63 - 1, "small": -(2**63), "past": 2**64, "below": -(2**63) - 1},
        {"ratio": 1e16, "tiny": 1e-05, "f": 0.1},  # floats: json's way
        {1: "an int key", "k": "v"},  # json writes the key as a string, orjson refuses it
        {"pair": ("a", 1)},  # a tuple: json's way (a list)
        {"lone": "\ud800"},  # a lone surrogate: json's error
        {"size": _Size.SMALL},  # an enum: json refuses it, orjson would write its value
        "a bare string",
        [1, "two", None],
    ],
)
def test_json_bodies_are_httpx_bytes_whoever_writes_them(value):
    """orjson writes the bodies it writes as httpx would; whatever it would write differently
    or refuse is written by `json` (or refused with `json`'s error)."""
    expected = _httpx_json(value)
    request = UpstreamRequest("POST", "http://upstream.test/", json=value)
    if isinstance(expected, bytes):
        assert encode_body(request)[0] == expected
    else:
        with pytest.raises(expected):
            encode_body(request)


def test_an_image_body_is_written_by_orjson(monkeypatch):
    monkeypatch.setattr(upstream, "_JSON", None)  # json's encoder is not reached
    request = UpstreamRequest(
        "POST", "http://upstream.test/", json={"prompt": "p", "n": 1, "size": "1024x1024"}
    )
    assert encode_body(request)[0] == b'{"prompt":"p","n":1,"size":"1024x1024"}'


def test_a_content_type_given_in_any_case_is_kept():
    request = UpstreamRequest(
        "POST", "http://upstream.test/", {"CONTENT-type": "application/x.json"}, json={"a": 1}
    )
    assert encode_body(request)[1] == {"CONTENT-type": "application/x.json"}


def _single_route_catalog() -> Catalog:
    """gpt-image-2 served by `primary` only: nothing to fail over to."""
    data = two_host_catalog().model_dump(mode="json")
    data["models"]["gpt-image-2"]["routes"] = data["models"]["gpt-image-2"]["routes"][:1]
    return Catalog.model_validate(data)


@pytest.fixture
def gateway_catalog() -> Catalog:
    return two_host_catalog()


@pytest.fixture
async def aiohttp_gateway(tmp_path, migrated_template, sims, gateway_catalog, kind):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    shutil.copy(migrated_template, data_dir / "reapi.db")
    settings = settings_for(
        data_dir,
        provider_keys={"primary": SIMULATOR_KEY, "backup": SIMULATOR_KEY},
        provider_base_urls=sims.provider_urls,
        upstream_client=kind,
    )
    app = create_app(
        settings,
        catalog=gateway_catalog,
        router_config=RouterConfig(first_byte_timeout=FIRST_BYTE),
        migrate=False,
    )
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=GATEWAY)
    yield client, app.state.runtime
    await client.aclose()
    await lifespan.__aexit__(None, None, None)


async def test_the_gateway_serves_and_fails_over_through_its_transport(
    aiohttp_gateway, sims, faults, kind
):
    client, rt = aiohttp_gateway
    # (behind the check of the URLs answers name: `result_urls`)
    assert isinstance(rt.engine.transport.inner, TRANSPORTS[kind])
    account, key = await make_account(rt, credits=1000)

    def generate() -> object:
        return client.post(
            "/v1/images/generations",
            json={"prompt": "p", "model": "gpt-image-2"},
            headers=auth(key),
        )

    assert (await generate()).status_code == 200
    edited = await client.post(
        "/v1/images/edits",
        data={"model": "gpt-image-2", "prompt": "p"},
        files=[("image", ("a.png", PNG, "image/png"))],
        headers=auth(key),
    )
    assert edited.status_code == 200, edited.text

    faults["primary"] = "hang"
    apply(sims, faults)
    started = time.perf_counter()
    failed_over = await generate()
    assert failed_over.status_code == 200
    assert time.perf_counter() - started < FIRST_BYTE + 1.0

    faults.update(primary="error_500", backup="error_503")
    apply(sims, faults)
    rt.router.breakers = InMemoryBreakerStore()
    assert (await generate()).status_code in (502, 503)
    assert await ledger_matches(rt, account) == (1000 - 3 * 40, 0)


async def test_a_streamed_request_reads_the_simulators_drafts_on_real_sockets(
    aiohttp_gateway, sims, faults, kind
):
    """`stream: true` with the production `upstream_client` settings: the drafts are read off
    a real socket as they come (the engine's own client), and a host that stops mid-stream is
    failed over (its silence is held to the first-byte deadline)."""
    client, rt = aiohttp_gateway
    account, key = await make_account(rt, credits=1000)
    body = {"prompt": "p", "model": "gpt-image-2", "stream": True, "partial_images": 2}
    response = await client.post("/v1/images/generations", json=body, headers=auth(key))
    assert response.status_code == 200, response.text
    names = [line for line in response.text.split("\n") if line.startswith("event: ")]
    assert names == [
        "event: image_generation.partial_image",
        "event: image_generation.partial_image",
        "event: image_generation.completed",
    ]
    faults["primary"] = "hang_mid_stream"
    apply(sims, faults)
    response = await client.post("/v1/images/generations", json=body, headers=auth(key))
    assert response.status_code == 200
    assert response.text.count("event: image_generation.completed") == 1
    assert response.text.count("event: image_generation.partial_image") == 2
    assert await ledger_matches(rt, account) == (1000 - 2 * 40, 0)


# -- a pooled connection the upstream has just closed -------------------------------------------


class CountingBreakers(InMemoryBreakerStore):
    """The real breaker store, remembering every failure it is told of."""

    def __init__(self) -> None:
        super().__init__()
        self.failures: list[str] = []

    def record_failure(self, key: str, now: float, *, open_for: float, threshold: int) -> None:
        self.failures.append(key)
        super().record_failure(key, now, open_for=open_for, threshold=threshold)


@pytest.mark.parametrize("gateway_catalog", [_single_route_catalog()], ids=["single-route"])
@pytest.mark.parametrize(
    ("fault", "count"), [("stale_connection", None), ("reset", 1)], ids=["closed", "reset"]
)
async def test_a_stale_pooled_connection_is_retried_before_the_breaker_counts(
    aiohttp_gateway, sims, faults, fault, count
):
    """The upstream closed (or reset) a kept-alive connection just as a request went out on
    it: that request used to fail (502 with a single route) and count against the breaker."""
    client, rt = aiohttp_gateway
    breakers = rt.router.breakers = CountingBreakers()
    account, key = await make_account(rt, credits=1000)

    def generate() -> object:
        return client.post(
            "/v1/images/generations",
            json={"prompt": "p", "model": "gpt-image-2"},
            headers=auth(key),
        )

    assert (await generate()).status_code == 200  # its connection stays in the pool
    sims.servers["primary"].faults.set(fault, count=count)
    retried = await generate()
    assert retried.status_code == 200, retried.text
    assert retried.json()["reapi"]["attempts"] == 1
    assert breakers.failures == []
    assert await ledger_matches(rt, account) == (1000 - 2 * 40, 0)


@pytest.mark.parametrize("gateway_catalog", [_single_route_catalog()], ids=["single-route"])
@pytest.mark.parametrize(
    ("fault", "count"), [("stale_connection", None), ("reset", 1)], ids=["closed", "reset"]
)
async def test_a_streamed_request_on_a_stale_pooled_connection_is_retried_too(
    aiohttp_gateway, sims, faults, fault, count
):
    """`stream: true` is read through the engine's httpx client, not the transport: its
    request on a connection the upstream had just closed failed (502 with a single route) and
    counted against the breaker, where the same request unstreamed was retried."""
    client, rt = aiohttp_gateway
    breakers = rt.router.breakers = CountingBreakers()
    account, key = await make_account(rt, credits=1000)
    body = {"prompt": "p", "model": "gpt-image-2", "stream": True, "partial_images": 1}

    def generate() -> object:
        return client.post("/v1/images/generations", json=body, headers=auth(key))

    assert (await generate()).status_code == 200  # its connection stays in the pool
    sims.servers["primary"].faults.set(fault, count=count)
    retried = await generate()
    assert retried.status_code == 200, retried.text
    assert retried.text.count("event: image_generation.completed") == 1
    assert breakers.failures == []
    assert await ledger_matches(rt, account) == (1000 - 2 * 40, 0)
    sims.servers["primary"].faults.set("reset")  # every connection: a new one's is not retried
    failed = await generate()
    assert failed.status_code == 502 and len(breakers.failures) == 1


async def test_only_a_reused_connection_is_retried_and_only_once(sims, faults, kind):
    engine = engine_for(kind, Router(RouterConfig(first_byte_timeout=FIRST_BYTE)))
    base = sims.provider_urls["primary"]
    server = sims.servers["primary"]
    try:
        server.faults.set("reset", count=1)  # on a new connection: a real failure
        with pytest.raises(APIConnectionError):
            await engine.send(image_request(base), "primary", FIRST_BYTE)
        assert (await engine.send(image_request(base), "primary", FIRST_BYTE)).status == 200
        server.faults.set("reset")  # the retry, on a new connection, is reset too
        with pytest.raises(APIConnectionError):
            await engine.send(image_request(base), "primary", FIRST_BYTE)
    finally:
        await engine.aclose()


async def test_a_failed_exchange_chains_nothing_of_the_request(kind):
    """aiohttp's ClientResponseError keeps `request_info.headers`, the provider's key among them:
    the error the engine raises instead must not chain it (issue 9 A5); nor h1's."""
    import asyncio
    import traceback

    key = "sk-MARKER-provider-key-3e9a"

    async def malformed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        writer.write(b"HTTP/1.1 abc nonsense\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(malformed, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    engine = engine_for(kind, Router(RouterConfig(first_byte_timeout=FIRST_BYTE)))
    request = UpstreamRequest(
        "POST",
        f"http://127.0.0.1:{port}/v1/images/generations",
        headers={"Authorization": f"Bearer {key}"},
        json={"prompt": "MARKER-prompt"},
    )
    try:
        with pytest.raises(APIConnectionError) as info:
            await engine.send(request, "primary", FIRST_BYTE)
    finally:
        await engine.aclose()
        server.close()
        await server.wait_closed()
    error = info.value
    assert error.__context__ is None and error.__cause__ is None
    text = repr(error) + str(error) + "".join(traceback.format_exception(error))
    assert key not in text and "MARKER" not in text
    said = {"aiohttp": "ClientResponseError", "h1": "UpstreamProtocolError"}[kind]
    assert said in error.message  # the kind of failure is still said


async def test_an_upstream_that_drips_is_cut_off_at_first_byte_plus_body(kind):
    """Every read comes within the first-byte deadline, so only the exchange's outer deadline
    (`first_byte + body`) ends it: a timeout, after about that long."""
    import asyncio

    async def drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n")
        writer.write(b"content-length: 100000\r\n\r\n")
        try:
            for _ in range(100):
                writer.write(b" ")
                await writer.drain()
                await asyncio.sleep(0.05)
        except ConnectionError:
            pass
        writer.close()

    server = await asyncio.start_server(drip, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport = TRANSPORTS[kind]()
    request = UpstreamRequest("POST", f"http://127.0.0.1:{port}/v1/x", json={"n": 1})
    try:
        started = time.perf_counter()
        with pytest.raises(APITimeoutError):
            await transport.exchange(request, "primary", 0.3, 0.4)
        assert 0.6 < time.perf_counter() - started < 2.0
    finally:
        await transport.aclose()
        server.close()
        await server.wait_closed()


# -- concurrency: nothing between the caller and the upstream takes turns ----------------------

#: More than the default pool of aiohttp's connector and of httpx (100 connections each).
_TOGETHER = 120


async def test_concurrent_requests_are_all_at_the_upstream_at_once(
    tmp_path, migrated_template, kind
):
    """The upstream answers nobody until every request is in: the gateway must have them all out
    at once (no connection pool, semaphore or batch of requests smaller than the load). A pool
    of 32 connections in front of a 50 ms upstream would cap 32 connections' throughput; here
    it would leave the requests waiting for answers that never come (issue 15)."""
    arrived = 0
    everyone_in = asyncio.Event()

    async def images(request: web.Request) -> web.Response:
        nonlocal arrived
        arrived += 1
        if arrived == _TOGETHER:
            everyone_in.set()
        try:
            await asyncio.wait_for(everyone_in.wait(), 10)
        except TimeoutError:
            return web.json_response({"error": {"message": f"{arrived} arrived"}}, status=500)
        return web.json_response({"created": 1, "data": [{"b64_json": PNG_B64}]})

    upstream = web.Application()
    upstream.router.add_post("/v1/images/generations", images)
    runner = web.AppRunner(upstream, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    shutil.copy(migrated_template, data_dir / "reapi.db")
    base = f"http://127.0.0.1:{port}/v1"
    settings = settings_for(
        data_dir,
        provider_keys={"primary": SIMULATOR_KEY},
        provider_base_urls={"primary": base},
        upstream_client=kind,
        requests_per_minute=10_000,
    )
    app = create_app(
        settings,
        catalog=_single_route_catalog(),
        router_config=RouterConfig(first_byte_timeout=30),
        migrate=False,
    )
    try:
        async with app.router.lifespan_context(app):
            rt = app.state.runtime
            _, key = await make_account(rt, credits=10**9)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=GATEWAY) as client:
                answers = await asyncio.gather(
                    *(
                        client.post(
                            "/v1/images/generations",
                            json={"prompt": "p", "model": "gpt-image-2"},
                            headers=auth(key),
                            timeout=60,
                        )
                        for _ in range(_TOGETHER)
                    )
                )
    finally:
        await runner.cleanup()
    assert [a.status_code for a in answers] == [200] * _TOGETHER, answers[0].text
    assert arrived == _TOGETHER


# -- a kept-alive connection closed under the request (the stall hunt of issue 15) ------------

#: Far longer than any exchange here takes: a transport that waits for its read deadline
#: instead of noticing the close would take this long.
_PATIENT = 5.0


class _ClosingUpstream:
    """A raw HTTP/1.1 server whose every connection answers its first request with keep-alive,
    then does `how` to the connection: `fin` closes it at once after the answer (the idle close
    already under way when the client picks the connection), `read_fin` reads the next request
    and closes without a byte (the idle timeout firing as that request arrived), `rst` reads it
    and resets the connection."""

    def __init__(self, how: str) -> None:
        self.how = how
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self._read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            await writer.drain()
            if self.how != "fin":
                await self._read_request(reader)
                if self.how == "rst":
                    writer.transport.abort()  # with the request unanswered: a reset
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    @staticmethod
    async def _read_request(reader: asyncio.StreamReader) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/v1/x"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()


@pytest.mark.parametrize("how", ["fin", "read_fin", "rst"])
async def test_a_kept_alive_connection_closed_under_the_request_costs_no_wait(kind, how):
    """Every connection of this upstream serves one answer and is then closed as the next
    request goes out on it: each request is answered at once, on a fresh connection, never
    after a read deadline (the multi-second waits looked for in issue 15)."""
    upstream = _ClosingUpstream(how)
    transport = TRANSPORTS[kind]()
    async with upstream as url:
        request = UpstreamRequest("POST", url, json={"n": 1})
        try:
            for _ in range(10):
                started = time.perf_counter()
                status, _, content = await transport.exchange(request, "p", _PATIENT, _PATIENT)
                assert (status, content) == (200, b"ok")
                assert time.perf_counter() - started < 1.0
        finally:
            await transport.aclose()
    assert upstream.connections >= 10


async def test_failed_and_cancelled_exchanges_give_their_pool_slots_back(kind):
    """More failed, timed-out and cancelled exchanges than the pool has slots (512), then one
    that must be answered at once: a slot or connection kept by any of them would leave it
    waiting."""
    upstream = _ClosingUpstream("fin")
    transport = TRANSPORTS[kind]()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    refused_url = f"http://127.0.0.1:{closed.getsockname()[1]}/v1/x"
    hung = await asyncio.start_server(lambda r, w: asyncio.sleep(30), "127.0.0.1", 0)
    hung_url = f"http://127.0.0.1:{hung.sockets[0].getsockname()[1]}/v1/x"
    async with upstream as url:
        try:
            for _ in range(520):
                with pytest.raises(APIConnectionError):
                    await transport.exchange(UpstreamRequest("GET", refused_url), "p", 1, 1)
            timed_out = [
                transport.exchange(UpstreamRequest("GET", hung_url), "p", 0.2, 0.2)
                for _ in range(40)
            ]
            for outcome in await asyncio.gather(*timed_out, return_exceptions=True):
                assert isinstance(outcome, APITimeoutError)
            cancelled = [
                asyncio.create_task(transport.exchange(UpstreamRequest("GET", hung_url), "p", 9, 9))
                for _ in range(40)
            ]
            await asyncio.sleep(0.2)
            for task in cancelled:
                task.cancel()
            await asyncio.gather(*cancelled, return_exceptions=True)
            answer = transport.exchange(UpstreamRequest("POST", url, json={"n": 1}), "p", 5, 5)
            status, _, content = await asyncio.wait_for(answer, 2)
            assert (status, content) == (200, b"ok")
        finally:
            await transport.aclose()
            closed.close()
            hung.close()

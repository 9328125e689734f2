"""SimServer on real sockets: HTTP/1.1 basics, every transport fault seen by plain httpx, and
the per-server control endpoint."""

import asyncio
import json
import socket
import time

import httpx
import pytest

from reapi.testing import Fault, SimServer, json_answer


class EchoApp:
    """Says what it received; `/boom` raises, like a simulator bug would."""

    def __init__(self):
        self.calls = 0

    def handle(self, method, path, query, headers, body, *, origin):
        self.calls += 1
        if path == "/boom":
            raise RuntimeError("bug")
        return json_answer(
            200,
            {
                "method": method,
                "path": path,
                "query": query,
                "length": len(body),
                "body": body.decode("latin-1")[:50],
                "origin": origin,
            },
        )


@pytest.fixture
def sim():
    with SimServer(EchoApp()) as server:
        yield server


def raw(port, data, *, close_after=True):
    """Send bytes, read until the server closes (or 1 s passes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
        sock.sendall(data)
        if close_after:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            pass
        return b"".join(chunks)


# -- HTTP ---------------------------------------------------------------------------------------
def test_keep_alive_serves_many_requests_on_one_connection(sim):
    request = b"GET /a?x=1 HTTP/1.1\r\nHost: x\r\n\r\n"
    answer = raw(sim.port, request * 3)
    assert answer.count(b"HTTP/1.1 200 OK") == 3 and b'"query":"x=1"' in answer


def test_chunked_request_bodies_are_read(sim):
    request = (
        b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    answer = raw(sim.port, request)
    assert b'"length":11' in answer and b'"body":"hello world"' in answer


def test_expect_100_continue_and_http_1_0(sim):
    request = b"POST /e HTTP/1.0\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nok"
    answer = raw(sim.port, request, close_after=False)  # 1.0 without keep-alive: server closes
    assert answer.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK")
    assert b"connection: close" in answer and b'"length":2' in answer


def test_head_sends_no_body(sim):
    answer = raw(sim.port, b"HEAD /h HTTP/1.1\r\nConnection: close\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"content-length: " in head and body == b""


def test_malformed_requests_get_400_and_a_closed_connection(sim):
    answer = raw(sim.port, b"NONSENSE\r\n\r\n", close_after=False)
    assert answer.startswith(b"HTTP/1.1 400")
    answer = raw(sim.port, b"POST / HTTP/1.1\r\nContent-Length: nine\r\n\r\n", close_after=False)
    assert answer.startswith(b"HTTP/1.1 400")


def test_an_app_exception_is_a_500_not_a_dropped_connection(sim):
    answer = httpx.get(sim.base_url + "/boom")
    assert answer.status_code == 500 and "RuntimeError" in answer.json()["error"]["message"]
    assert httpx.get(sim.base_url + "/fine").status_code == 200


def test_the_app_is_told_its_origin(sim):
    assert httpx.get(sim.base_url + "/o").json()["origin"] == sim.base_url


def test_many_small_requests_are_fast(sim):
    request = b"GET /p HTTP/1.1\r\nHost: x\r\n\r\n"
    started = time.perf_counter()
    answer = raw(sim.port, request * 2000)
    assert answer.count(b"HTTP/1.1 200 OK") == 2000
    assert time.perf_counter() - started < 5  # thousands a second; typically ~0.2 s


async def test_serve_in_the_foreground():
    server = SimServer(EchoApp())
    ready = asyncio.Event()
    task = asyncio.create_task(server.serve(ready))
    await asyncio.wait_for(ready.wait(), 5)
    async with httpx.AsyncClient() as client:
        assert (await client.get(server.base_url + "/f")).status_code == 200
    server.stop()
    await asyncio.wait_for(task, 5)


def test_a_taken_port_fails_start_at_once(sim):
    started = time.perf_counter()
    with pytest.raises(OSError):
        SimServer(EchoApp(), port=sim.port).start()
    assert time.perf_counter() - started < 5


def test_restart_listens_on_the_same_port():
    server = SimServer(EchoApp()).start()
    port = server.port
    server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.base_url + "/x", timeout=1)
    server.start()
    try:
        assert server.port == port and httpx.get(server.base_url + "/x").status_code == 200
    finally:
        server.stop()


# -- faults -------------------------------------------------------------------------------------
def test_refuse_closes_the_port_and_clearing_rebinds_it(sim):
    url = sim.base_url + "/r"
    with httpx.Client(timeout=1) as client:
        assert client.get(url).status_code == 200  # a pooled keep-alive connection
        sim.faults.set(Fault.REFUSE)
        with pytest.raises(httpx.ConnectError):
            client.get(url)  # the pooled connection was cut too, like a dead server
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", sim.port), timeout=1)
        sim.faults.clear()
        assert client.get(url).status_code == 200
    assert sim.base_url.endswith(f":{sim.port}")


def test_reset_reads_the_request_then_sends_rst(sim):
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        sim.faults.set(Fault.RESET)
        httpx.post(sim.base_url + "/x", content=b"body", timeout=1)
    assert sim.app.calls == 0


def test_hang_never_answers(sim):
    sim.faults.set(Fault.HANG)
    started = time.perf_counter()
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(sim.base_url + "/x", timeout=httpx.Timeout(1, read=0.3))
    assert time.perf_counter() - started >= 0.3
    sim.faults.clear()
    assert httpx.get(sim.base_url + "/x").status_code == 200


def test_slow_body_sends_headers_then_trickles(sim):
    sim.faults.set(Fault.SLOW_BODY)
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(sim.base_url + "/x", timeout=httpx.Timeout(1, read=0.05))
    # Timed from the request, on a client made beforehand (making one, its TLS context, took
    # up to 0.35 s on a busy machine). The head is whole within 0.5 s: trickled like the body,
    # its 70-odd bytes would take 0.9 s (the head then once took 0.14 s under load: not 0.1).
    with httpx.Client(timeout=5) as client:
        started = time.perf_counter()
        with client.stream("GET", sim.base_url + "/x") as answer:
            first_byte = time.perf_counter() - started
            length = int(answer.headers["content-length"])
            body = answer.read()
        elapsed = time.perf_counter() - started
    assert first_byte < 0.5 and len(body) == length
    assert elapsed >= 0.1 * (length // 8) * 0.9  # 8 bytes every 100 ms
    assert json.loads(body)["path"] == "/x"


def test_stale_connection_closes_a_kept_alive_connection_unanswered(sim):
    sim.faults.set(Fault.STALE_CONNECTION)
    with socket.create_connection((sim.host, sim.port), timeout=5) as sock:
        request = f"GET /x HTTP/1.1\r\nHost: {sim.host}\r\n\r\n".encode()
        sock.sendall(request)
        first = b""
        while b'"origin"' not in first:  # a new connection: answered
            first += sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        sock.sendall(request)  # the same connection again: closed without a byte
        assert sock.recv(65536) == b""
    assert sim.app.calls == 1


def test_truncated_json_is_a_200_with_half_a_body(sim):
    sim.faults.set(Fault.TRUNCATED_JSON)
    answer = httpx.get(sim.base_url + "/x")
    assert answer.status_code == 200
    assert int(answer.headers["content-length"]) == len(answer.content)
    with pytest.raises(json.JSONDecodeError):
        answer.json()


@pytest.mark.parametrize(("fault", "status"), [(Fault.ERROR_500, 500), (Fault.ERROR_503, 503)])
def test_server_errors_are_openai_shaped(sim, fault, status):
    sim.faults.set(fault, count=2)
    assert [httpx.get(sim.base_url + "/x").status_code for _ in range(3)] == [status] * 2 + [200]


def test_rate_limit_sends_retry_after(sim):
    sim.faults.set(Fault.RATE_LIMIT, retry_after=7)
    answer = httpx.get(sim.base_url + "/x")
    assert answer.status_code == 429 and answer.headers["retry-after"] == "7"
    assert answer.json()["error"]["code"] == "rate_limit_exceeded"
    assert sim.app.calls == 0


def test_latency_delays_every_answer(sim):
    sim.faults.set(latency=0.2)
    started = time.perf_counter()
    assert httpx.get(sim.base_url + "/x").status_code == 200
    assert time.perf_counter() - started >= 0.2


# -- control endpoint ---------------------------------------------------------------------------
def test_control_endpoint_is_never_faulted(sim):
    fault = httpx.post(sim.base_url + "/__sim__/fault", json={"fault": "hang", "latency": 0.0})
    assert fault.json() == {"fault": "hang", "retry_after": 2, "count": None, "latency": 0.0}
    health = httpx.get(sim.base_url + "/__sim__/health", timeout=1)
    assert health.json()["ok"] and health.json()["fault"] == "hang"
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(sim.base_url + "/x", timeout=httpx.Timeout(1, read=0.2))
    httpx.post(sim.base_url + "/__sim__/fault", json={"fault": "error_503", "count": 1})
    assert httpx.get(sim.base_url + "/x").status_code == 503
    assert httpx.get(sim.base_url + "/x").status_code == 200


@pytest.mark.parametrize("body", [b"{", b"[]", b'{"fault": "melt"}', b'{"count": 0}'])
def test_control_endpoint_refuses_bad_settings(sim, body):
    answer = httpx.post(sim.base_url + "/__sim__/fault", content=body)
    assert answer.status_code == 400 and "none" in answer.json()["faults"]


def test_refuse_can_be_set_but_not_cleared_over_http(sim):
    answer = httpx.post(sim.base_url + "/__sim__/fault", json={"fault": "refuse"})
    assert answer.status_code == 200 and answer.json()["fault"] == "refuse"
    with pytest.raises(httpx.ConnectError):
        httpx.get(sim.base_url + "/__sim__/health", timeout=1)
    sim.faults.clear()  # in-process (or through run_simulators' control server)
    assert httpx.get(sim.base_url + "/__sim__/health").json()["fault"] == "none"

"""`one_write`: the gateway's HTTP protocol writes an answer's head with its body, in one system
call, and never holds a head whose body comes later. A real uvicorn server with the gateway's
protocol, in its own process; its writes are counted by the kernel (`/proc/<pid>/io`)."""

import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

APP = r"""
import asyncio, sys
import uvicorn
from reapi_server.head_limits import GatewayConfig, HeadLimitedProtocol, HeadLimits

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    later = scope["path"] == "/later"
    body = b"hello"
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"5")]})
    if later:
        await asyncio.sleep(1.0)
    await send({"type": "http.response.body", "body": body})

config = GatewayConfig(app, head_limits=HeadLimits(), host="127.0.0.1", port=int(sys.argv[1]),
                       loop="uvloop", http=HeadLimitedProtocol, ws="none", log_config=None,
                       access_log=False, lifespan="off")
uvicorn.Server(config).run()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server() -> Iterator[tuple[subprocess.Popen, int]]:
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-c", APP, str(port)])
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise
            time.sleep(0.05)
    yield process, port
    process.terminate()
    process.wait(10)


def _writes(pid: int) -> int:
    with open(f"/proc/{pid}/io") as io:
        fields = dict(line.split(": ") for line in io.read().splitlines())
    return int(fields["syscw"])


def _exchange(conn: socket.socket, request: bytes, ending: bytes) -> bytes:
    conn.sendall(request)
    data = b""
    while not data.endswith(ending):
        chunk = conn.recv(4096)
        assert chunk, data
        data += chunk
    return data


def test_an_answer_is_one_write(server):
    process, port = server
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        get = b"GET / HTTP/1.1\r\nHost: gateway\r\n\r\n"
        _exchange(conn, get, b"hello")
        before = _writes(process.pid)
        for _ in range(40):
            answer = _exchange(conn, get, b"hello")
            assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and b"content-length: 5" in answer
        assert _writes(process.pid) - before == 40


def test_a_head_whose_body_comes_later_is_not_held(server):
    _, port = server
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(b"GET /later HTTP/1.1\r\nHost: gateway\r\n\r\n")
        started = time.monotonic()
        head = b""
        while b"\r\n\r\n" not in head:
            head += conn.recv(4096)
        assert time.monotonic() - started < 0.8  # the body comes after 1 s
        assert head.startswith(b"HTTP/1.1 200 OK\r\n") and not head.endswith(b"hello")
        rest = head.partition(b"\r\n\r\n")[2]
        while not rest.endswith(b"hello"):
            rest += conn.recv(4096)


def test_a_head_answer_without_body_goes_out(server):
    _, port = server
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        answer = _exchange(conn, b"HEAD / HTTP/1.1\r\nHost: gateway\r\n\r\n", b"\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
        # The connection still serves the next request.
        assert _exchange(conn, b"GET / HTTP/1.1\r\nHost: gateway\r\n\r\n", b"hello")

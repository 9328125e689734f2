"""The drain delay (`drain_delay_seconds`): after SIGTERM the gateway serves as before for that
long, but `/readyz` answers 503 and every answer closes its connection, so that a proxy takes it
out of rotation and drops its kept-alive connections before the drain closes them (a request
sent on one in that instant was cut). A second signal drains at once. Real processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from tests.server.live import free_port
from tests.server.test_cli import _bin, _wait_for


@contextmanager
def _serving(tmp_path, delay: float, *options: str) -> Iterator[tuple[subprocess.Popen, int]]:
    port = free_port()
    env = {
        **os.environ,
        "REAPI_METRICS_LISTEN": "off",
        "REAPI_DRAIN_DELAY_SECONDS": str(delay),
    }
    process = subprocess.Popen(
        [_bin("reapi-server"), "serve", "--port", str(port), "--data-dir", str(tmp_path), *options],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_for(f"http://127.0.0.1:{port}/healthz", process)
        yield process, port
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def _ask(connection: socket.socket, path: str) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 GET on `connection` (kept alive unless the answer says otherwise): the
    answer's status, headers (lower-case names) and body."""
    connection.sendall(f"GET {path} HTTP/1.1\r\nhost: gateway\r\n\r\n".encode())
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = connection.recv(65536)
        assert chunk, received
        received += chunk
    head, body = received.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    while len(body) < int(headers["content-length"]):
        chunk = connection.recv(65536)
        assert chunk, body
        body += chunk
    return int(lines[0].split()[1]), headers, body


def _fresh(port: int, path: str) -> tuple[int, dict[str, str], bytes]:
    with _connect(port) as connection:
        return _ask(connection, path)


def _until_leaving(port: int, seconds: float = 10) -> None:
    """Until /readyz (on new connections) says the process is leaving."""
    deadline = time.monotonic() + seconds
    while _fresh(port, "/readyz")[0] != 503:
        assert time.monotonic() < deadline, "/readyz never answered 503"
        time.sleep(0.05)


def test_in_the_delay_it_serves_and_each_answer_closes_its_connection(tmp_path):
    with _serving(tmp_path, 4) as (process, port):
        kept = _connect(port)
        status, headers, _ = _ask(kept, "/healthz")
        assert status == 200 and "connection" not in headers  # kept alive, idle
        assert _fresh(port, "/readyz")[0] == 200
        process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        _until_leaving(port)
        # The idle kept-alive connection is still open: its request is answered, with close.
        status, headers, body = _ask(kept, "/healthz")
        assert (status, headers["connection"], body) == (200, "close", b'{"status":"ok"}')
        assert kept.recv(1) == b""  # and the gateway closed it after the answer
        kept.close()
        # New connections are still accepted: /healthz 200, /readyz 503, both closing.
        status, headers, _ = _fresh(port, "/healthz")
        assert (status, headers["connection"]) == (200, "close")
        status, headers, body = _fresh(port, "/readyz")
        assert (status, headers["connection"]) == (503, "close")
        assert b'"status":"stopping"' in body
        assert process.poll() is None
        # Then the drain, as without a delay: the process ends once the delay is up.
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)
        assert time.monotonic() - signalled >= 3.9


def test_a_second_signal_drains_at_once(tmp_path):
    with _serving(tmp_path, 120) as (process, port):
        process.send_signal(signal.SIGTERM)
        _until_leaving(port)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) in (0, -signal.SIGTERM, -signal.SIGINT)


def test_without_a_delay_sigterm_drains_at_once(tmp_path):
    with _serving(tmp_path, 0) as (process, port):
        kept = _connect(port)
        assert _ask(kept, "/healthz")[0] == 200
        process.send_signal(signal.SIGTERM)
        assert kept.recv(1) == b""  # the idle connection closed at once, as before
        kept.close()
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)


@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_every_worker_waits_and_a_second_signal_to_the_parent_drains_them(tmp_path):
    with _serving(tmp_path, 120, "--workers", "2") as (process, port):
        kept = [_connect(port) for _ in range(8)]  # the kernel spreads them over the workers
        for connection in kept:
            assert _ask(connection, "/healthz")[0] == 200
        process.send_signal(signal.SIGTERM)  # to the parent, which hands it on
        _until_leaving(port)
        time.sleep(1)  # both workers got it by now
        for connection in kept:
            status, headers, _ = _ask(connection, "/readyz")
            assert (status, headers["connection"]) == (503, "close")
            connection.close()
        assert process.poll() is None
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)

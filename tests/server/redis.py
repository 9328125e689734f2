"""A throwaway Redis server for the fleet tests: Debian's redis-server, a temp directory, loopback
only, no persistence, stopped at the end of the session. An absent binary skips the Redis leg.

Tests share the server and keep apart by key prefix (`redis_key_prefix`), one per test."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pytest

REDIS_SERVER = "/usr/bin/redis-server"
SKIP_MESSAGE = (
    f"Redis leg skipped: no {REDIS_SERVER}. "
    "Enable it with `apt-get install redis-server` (CI's .ci/run does)."
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_available() -> bool:
    return shutil.which(REDIS_SERVER) is not None


class RedisServer:
    def __init__(self) -> None:
        self.base = tempfile.mkdtemp(prefix="reapi-redis-")
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server (again, after `halt`: same port, empty)."""
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", self.base,
                "--save", "",
                "--appendonly", "no",
                "--protected-mode", "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("redis-server exited")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def halt(self) -> None:
        """Stop the server: an outage (`start` ends it)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def stop(self) -> None:
        try:
            self.halt()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    if not redis_available():
        pytest.skip(SKIP_MESSAGE)
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_settings(redis_server: RedisServer) -> dict[str, object]:
    """Gateway settings for the session's Redis, with a key prefix of this test's own. The
    timeout is generous: on a slow, busy machine a late reply would count as an outage (the
    instance falls back, drops a message); the tests of outages set their own."""
    return {
        "redis_url": redis_server.url,
        "redis_key_prefix": f"t{secrets.token_hex(4)}:",
        "redis_timeout": 5.0,
    }


async def until_subscribed(runtime: Any, listeners: int, seconds: float = 10.0) -> None:
    """Until `listeners` instances listen on the fleet's bus (each subscribes in the background
    once started), as seen from `runtime`'s Redis."""
    channel = runtime.bus.channel("wake")
    deadline = time.monotonic() + seconds
    while True:
        ((_, count),) = await runtime.redis.client.pubsub_numsub(channel)
        if count >= listeners:
            return
        assert time.monotonic() < deadline, f"{count} of {listeners} instances subscribed"
        await asyncio.sleep(0.02)

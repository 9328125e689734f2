"""A small asyncio HTTP/1.1 server for simulators, with transport faults built in.

Frameworks make the interesting failures hard (a reset, a hang before headers, a body that
trickles), so this server is written for them: it owns the socket. Apps are framework neutral:
`handle(method, path, query, headers, body, *, origin) -> (status, headers, body)`.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
from collections.abc import Mapping
from typing import Protocol

from ._faults import Fault, FaultState, FaultSwitch

__all__ = ["Answer", "SimServer", "SimulatorApp", "json_answer"]

Answer = tuple[int, dict[str, str], bytes]

_REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
_CONTROL = "/__sim__/"


class SimulatorApp(Protocol):
    def handle(
        self,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        origin: str,
    ) -> Answer: ...


def json_answer(status: int, body: object, headers: Mapping[str, str] | None = None) -> Answer:
    return (
        status,
        {"content-type": "application/json", **(headers or {})},
        json.dumps(body).encode(),
    )


def _transport_fault(state: FaultState) -> Answer | None:
    error = {
        "error": {
            "message": "simulated upstream failure",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    }
    if state.fault is Fault.ERROR_500:
        return json_answer(500, error)
    if state.fault is Fault.ERROR_503:
        return json_answer(503, error)
    if state.fault is Fault.RATE_LIMIT:
        limited = {
            "error": {
                "message": "simulated rate limit",
                "type": "requests",
                "param": None,
                "code": "rate_limit_exceeded",
            }
        }
        return json_answer(429, limited, {"retry-after": str(state.retry_after)})
    return None


def set_fault_from_json(switch: FaultSwitch, body: bytes) -> Answer:
    """Apply `{"fault": "hang", "retry_after": 2, "count": 1, "latency": 0}` to a switch."""
    try:
        fields = json.loads(body or b"{}")
        switch.set(
            fields.get("fault", "none"),
            retry_after=int(fields.get("retry_after", 2)),
            count=fields.get("count"),
            latency=float(fields.get("latency", 0.0)),
        )
    except (ValueError, TypeError) as exc:
        return json_answer(400, {"error": str(exc)})
    return json_answer(200, {"fault": switch.state.fault.value})


class SimServer:
    """Serves one app on loopback. `start()` runs it on a background thread's event loop."""

    def __init__(self, app: SimulatorApp, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.faults = FaultSwitch()
        self.faults.on_change(self._fault_changed)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None
        self._clients: set[asyncio.StreamWriter] = set()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> SimServer:
        ready = threading.Event()

        def run() -> None:
            asyncio.run(self.serve(ready))

        self._thread = threading.Thread(
            target=run, name=f"sim-{type(self.app).__name__}", daemon=True
        )
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("simulator did not start")
        return self

    async def serve(self, ready: threading.Event | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        await self._listen()
        if ready is not None:
            ready.set()
        await self._stopped.wait()
        if self._server is not None:
            self._server.close()
        for writer in list(self._clients):
            writer.close()

    def stop(self) -> None:
        if self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._connection, self.host, self.port, reuse_address=True, backlog=1024
        )
        self.port = self._server.sockets[0].getsockname()[1]

    def _fault_changed(self, state: FaultState) -> None:
        # REFUSE closes the listening socket; clearing it listens again on the same port.
        loop = self._loop
        if loop is None:
            return
        refuse = state.fault is Fault.REFUSE

        async def apply() -> None:
            if refuse and self._server is not None:
                self._server.close()
                self._server = None
            elif not refuse and self._server is None:
                await self._listen()

        if threading.current_thread() is self._thread:
            loop.create_task(apply())
        else:
            asyncio.run_coroutine_threadsafe(apply(), loop).result(5)

    # -- one connection ----------------------------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._clients.add(writer)
        try:
            while await self._exchange(reader, writer):
                pass
        except (
            ConnectionError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            asyncio.CancelledError,
        ):  # the client left, or the simulator is stopping
            pass
        finally:
            self._clients.discard(writer)
            writer.close()

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        request_line = await reader.readline()
        if not request_line.strip():
            return False
        method, target, _ = request_line.decode("latin-1").split(" ", 2)
        headers: dict[str, str] = {}
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await self._body(reader, headers)
        path, _, query = target.partition("?")
        if path.startswith(_CONTROL):
            await self._write(writer, self._control(method, path, body))
            return True
        state = self.faults.take()
        if state.latency:
            await asyncio.sleep(state.latency)
        if state.fault is Fault.RESET:
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return False
        if state.fault is Fault.HANG:
            while await reader.read(4096):  # until the client gives up
                pass
            return False
        answer = _transport_fault(state) or self.app.handle(
            method, path, query, headers, body, origin=self.base_url
        )
        if state.fault is Fault.TRUNCATED_JSON:
            _, out_headers, content = answer
            answer = (
                200,
                {**out_headers, "content-type": "application/json"},
                content[: max(len(content) // 2, 1)],
            )
        await self._write(writer, answer, slow=state.fault is Fault.SLOW_BODY)
        return headers.get("connection", "").lower() != "close"

    @staticmethod
    async def _body(reader: asyncio.StreamReader, headers: Mapping[str, str]) -> bytes:
        if headers.get("transfer-encoding", "").lower() == "chunked":
            parts: list[bytes] = []
            while True:
                size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    await reader.readline()
                    return b"".join(parts)
                parts.append(await reader.readexactly(size))
                await reader.readline()
        length = int(headers.get("content-length") or 0)
        return await reader.readexactly(length) if length else b""

    @staticmethod
    async def _write(writer: asyncio.StreamWriter, answer: Answer, *, slow: bool = False) -> None:
        status, headers, content = answer
        head = [
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}",
            f"content-length: {len(content)}",
        ]
        head += [f"{k}: {v}" for k, v in headers.items() if k.lower() != "content-length"]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        if not slow:
            writer.write(content)
            await writer.drain()
            return
        await writer.drain()
        for start in range(0, len(content), 8):
            writer.write(content[start : start + 8])
            await writer.drain()
            await asyncio.sleep(0.1)

    def _control(self, method: str, path: str, body: bytes) -> Answer:
        if path == _CONTROL + "health":
            return json_answer(200, {"ok": True, "fault": self.faults.state.fault.value})
        if path == _CONTROL + "fault" and method == "POST":
            return set_fault_from_json(self.faults, body)
        return json_answer(404, {"error": "unknown control path"})

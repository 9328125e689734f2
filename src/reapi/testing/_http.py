"""A small asyncio HTTP/1.1 server for simulators, with transport faults built in.

Frameworks make the interesting failures hard (a reset, a hang before headers, a body that
trickles), so this server owns the socket. Parsing is kept minimal so that one simulator serves
thousands of requests a second as a benchmark upstream: keep-alive, Content-Length and chunked
request bodies, Content-Length responses.

Apps are framework neutral: `handle(method, path, query, headers, body, *, origin) -> Answer`.
Every server also answers `GET /__sim__/health` and `POST /__sim__/fault` (never faulted). Once
REFUSE is set, nothing on that port answers: clear it in-process or through the control server
of `run_simulators`.

Three optional app hooks: `control(method, path, query, body) -> Answer | None` answers the app's
own `/__sim__/...` paths (never faulted; None: unknown), `status_fault_answer(state) -> Answer |
None` says the status faults (5xx, 429) in the app's words (None: OpenAI's, the default), and
`answers_at_once(method, path) -> bool` names the calls that do no generation (reading a model,
the account, a page of tasks: what health probes ask). Those meet the fault that is set (a hung
or failing upstream fails them too) but not the `latency` that stands in for generation time,
and they do not use up a fault limited by `count`, which is meant for the calls a test makes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import struct
import threading
from collections.abc import Mapping
from dataclasses import replace
from typing import Protocol

from ._answers import head_of, write_body, write_event_stream
from ._faults import Fault, FaultState, FaultSwitch
from ._messages import Answer, SimResponse, json_answer
from ._openai_errors import status_fault_error

# Answer and json_answer are re-exported for the simulators that import them from here.
__all__ = [
    "Answer",
    "SimServer",
    "SimulatorApp",
    "describe_fault",
    "json_answer",
    "set_fault_from_json",
]

logger = logging.getLogger(__name__)

_CONTROL = "/__sim__/"


class SimulatorApp(Protocol):
    """What `SimServer` serves. An app with a `faults: FaultSwitch` gets the app-level faults."""

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


def _status_fault(state: FaultState) -> SimResponse | None:
    """5xx and 429 in OpenAI's error shape; apps answer them their own way from `app.faults`."""
    error = status_fault_error(state)
    return error.answer if error is not None else None


def describe_fault(state: FaultState) -> dict[str, object]:
    return {
        "fault": state.fault.value,
        "retry_after": state.retry_after,
        "count": state.count,
        "latency": state.latency,
    }


def set_fault_from_json(switch: FaultSwitch, body: bytes) -> SimResponse:
    """Apply `{"fault": "hang", "retry_after": 2, "count": null, "latency": 0.0}` to a switch."""
    try:
        fields = json.loads(body or b"{}")
        if not isinstance(fields, dict):
            raise TypeError("expected a JSON object")
        count = fields.get("count")
        switch.set(
            fields.get("fault") or Fault.NONE,
            retry_after=int(fields.get("retry_after", 2)),
            count=None if count is None else int(count),
            latency=float(fields.get("latency", 0.0)),
        )
    except (ValueError, TypeError) as exc:
        return json_answer(400, {"error": str(exc), "faults": [f.value for f in Fault]})
    return json_answer(200, describe_fault(switch.effective))


class SimServer:
    """Serves one app on loopback. `start()` runs it on a background thread's event loop;
    `await serve()` runs it on the caller's loop until `stop()`."""

    def __init__(self, app: SimulatorApp, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port
        app_switch = getattr(app, "faults", None)
        #: Every fault for this simulator; app-level ones are handed on to `app.faults`.
        self.faults = FaultSwitch(app_switch if isinstance(app_switch, FaultSwitch) else None)
        self.faults.on_change(self._fault_changed)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None
        self._clients: set[asyncio.StreamWriter] = set()
        self._hanging = 0

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def hanging(self) -> int:
        """Exchanges held by a hang fault right now: each ends only when its client closes or
        resets the connection (so a client that gave up on one is seen to have closed it)."""
        return self._hanging

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> SimServer:
        """Listen on a daemon thread; returns once the port accepts connections."""
        if self._thread is not None:
            raise RuntimeError("this simulator is already running")
        ready = threading.Event()
        failures: list[BaseException] = []

        def run() -> None:
            try:
                asyncio.run(self.serve(ready))
            except BaseException as exc:  # e.g. the port is taken: report it to start()
                failures.append(exc)
                ready.set()

        self._thread = threading.Thread(
            target=run, name=f"sim-{type(self.app).__name__}", daemon=True
        )
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the simulator did not start within 10 s")
        if failures:
            self._thread = None
            raise failures[0]
        return self

    async def serve(self, ready: threading.Event | asyncio.Event | None = None) -> None:
        """Serve on the running loop until `stop()`; `ready` is set once listening."""
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        try:
            await self._listen()
            if self.faults.state.fault is Fault.REFUSE:  # set before start: the port is known
                await self._refuse()
            if ready is not None:
                ready.set()
            await self._stopped.wait()
        finally:
            await self._refuse()
            self._loop = None

    def stop(self) -> None:
        loop, stopped = self._loop, self._stopped
        if loop is not None and stopped is not None:
            with contextlib.suppress(RuntimeError):  # the loop is already closing
                loop.call_soon_threadsafe(stopped.set)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5)
        self._thread = None

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _listen(self) -> None:
        # SO_REUSEADDR (reuse_address) lets REFUSE give the same port back at once.
        self._server = await asyncio.start_server(
            self._connection, self.host, self.port, reuse_address=True, backlog=1024
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _refuse(self) -> None:
        """Like a server that went down: no listener, and open connections cut."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._clients):
            writer.transport.abort()

    def _fault_changed(self, state: FaultState) -> None:
        # REFUSE closes the listening socket; clearing it listens again on the same port.
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        refuse = state.fault is Fault.REFUSE

        async def apply() -> None:
            if refuse:
                await self._refuse()
            elif self._server is None:
                await self._listen()

        if threading.current_thread() is self._thread or _running_loop() is loop:
            loop.create_task(apply())
        else:  # wait, so that the caller's next request already meets the new state
            asyncio.run_coroutine_threadsafe(apply(), loop).result(5)

    # -- one connection ----------------------------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._clients.add(writer)
        served = 0
        try:
            while await self._exchange(reader, writer, kept_alive=served > 0):
                served += 1
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the client left (or sent a header block over 64 KiB)
        except asyncio.CancelledError:
            # stop() with a keep-alive client connected: the loop closes and cancels this task;
            # ending quietly spares asyncio's "Exception in callback" log on Python 3.11.
            pass
        finally:
            self._clients.discard(writer)
            writer.close()

    async def _exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, kept_alive: bool
    ) -> bool:
        """One request and its answer; False when the connection should end. `kept_alive`: the
        connection has served a request before."""
        head = await reader.readuntil(b"\r\n\r\n")
        try:
            method, target, version, headers = _parse_head(head)
            if headers.get("expect", "").lower() == "100-continue":
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            body = await _read_body(reader, headers)
        except ValueError:
            await _write(writer, json_answer(400, {"error": "malformed request"}), keep_alive=False)
            return False
        keep_alive = _keep_alive(version, headers)
        path, _, query = target.partition("?")
        if path.startswith(_CONTROL):
            answer = self._control(method, path, query, body)
            await _write(writer, answer, keep_alive=keep_alive)
            return keep_alive
        if self._answers_at_once(method, path):
            state = replace(self.faults.effective, latency=0.0)
        else:
            state = self.faults.take()
        fault = state.fault
        if fault in (Fault.RESET, Fault.HANG) or (fault is Fault.STALE_CONNECTION and kept_alive):
            await asyncio.sleep(state.latency)
            if fault is Fault.RESET:
                _reset(writer)
            elif fault is Fault.HANG:
                await self._hang(reader)
            return False  # STALE_CONNECTION: closed (FIN) without a byte of answer
        answer = self._status_fault(state) or self._answer(method, path, query, headers, body)
        if fault is Fault.TRUNCATED_JSON:
            _, out_headers, content = answer
            cut = content[: max(len(content) // 2, 1)]
            answer = SimResponse(200, {**out_headers, "content-type": "application/json"}, cut)
        slow = fault is Fault.SLOW_BODY
        stops = fault in (Fault.HANG_FIRST_EVENT, Fault.HANG_MID_STREAM, Fault.RESET_MID_STREAM)
        if _is_event_stream(answer) and method != "HEAD":
            # Headers at once, then each event when its share of the generation time is up.
            head_only = fault is Fault.HANG_FIRST_EVENT
            finished = await write_event_stream(
                writer,
                answer,
                head_of(answer, keep_alive=keep_alive, chunked=True),
                latency=state.latency,
                last=not stops,
                head_only=head_only,
                slow=slow,
            )
        else:
            await asyncio.sleep(state.latency)
            if fault is Fault.HANG_FIRST_EVENT:
                await self._hang(reader)
                return False
            finished = await _write(
                writer,
                answer,
                keep_alive=keep_alive,
                head_only=method == "HEAD",
                slow=slow,
                half=stops,
            )
        if finished:
            return keep_alive
        if fault is Fault.RESET_MID_STREAM:
            _reset(writer)
        else:
            await self._hang(reader)
        return False

    async def _hang(self, reader: asyncio.StreamReader) -> None:
        """Send nothing more, until the client gives up."""
        self._hanging += 1
        try:
            while await reader.read(65536):
                pass
        finally:
            self._hanging -= 1

    def _answers_at_once(self, method: str, path: str) -> bool:
        hook = getattr(self.app, "answers_at_once", None)
        return bool(hook(method, path)) if callable(hook) else False

    def _status_fault(self, state: FaultState) -> Answer | None:
        own_words = getattr(self.app, "status_fault_answer", None)
        answer: Answer | None = own_words(state) if callable(own_words) else None
        return answer or _status_fault(state)

    def _answer(
        self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> Answer:
        try:
            return self.app.handle(method, path, query, headers, body, origin=self.base_url)
        except Exception as exc:  # a simulator bug: say so instead of dropping the connection
            logger.exception("simulator %s failed on %s %s", type(self.app).__name__, method, path)
            error = {"message": f"simulator error: {type(exc).__name__}", "type": "server_error"}
            return json_answer(500, {"error": error})

    def _control(self, method: str, path: str, query: str, body: bytes) -> Answer:
        if path == _CONTROL + "health" and method == "GET":
            return json_answer(200, {"ok": True, **describe_fault(self.faults.effective)})
        if path == _CONTROL + "fault" and method == "POST":
            return set_fault_from_json(self.faults, body)
        own = getattr(self.app, "control", None)
        answer: Answer | None = own(method, path, query, body) if callable(own) else None
        return answer or json_answer(404, {"error": "unknown control path"})


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST, not FIN (SO_LINGER 0)."""
    sock = writer.get_extra_info("socket")
    with contextlib.suppress(OSError, AttributeError):  # the client may be gone already
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def _is_event_stream(answer: Answer) -> bool:
    status, headers, _ = answer
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    return status == 200 and content_type.partition(";")[0].strip() == "text/event-stream"


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _parse_head(head: bytes) -> tuple[str, str, str, dict[str, str]]:
    """Request line and headers (names lower case); ValueError when malformed."""
    request_line, *lines = head.decode("latin-1").lstrip("\r\n").split("\r\n")
    method, target, version = request_line.split(" ")
    headers = {}
    for line in lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return method, target, version, headers


def _keep_alive(version: str, headers: Mapping[str, str]) -> bool:
    connection = headers.get("connection", "").lower()
    return connection == "keep-alive" if version == "HTTP/1.0" else connection != "close"


async def _read_body(reader: asyncio.StreamReader, headers: Mapping[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        parts: list[bytes] = []
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        while await reader.readuntil(b"\r\n") != b"\r\n":  # trailer fields, then the end
            pass
        return b"".join(parts)
    length = int(headers.get("content-length") or 0)
    if length < 0:
        raise ValueError("negative Content-Length")
    return await reader.readexactly(length) if length else b""


async def _write(
    writer: asyncio.StreamWriter,
    answer: Answer,
    *,
    keep_alive: bool,
    head_only: bool = False,
    slow: bool = False,
    half: bool = False,
) -> bool:
    """Send a whole answer; False when `half` stopped it halfway through its body."""
    _, _, content = answer
    writer.write(head_of(answer, keep_alive=keep_alive))
    if head_only:
        content = b""
    if half:
        content = content[: len(content) // 2]
    await write_body(writer, content, slow=slow)
    return not half

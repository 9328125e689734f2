"""SimServer's streamed answers (server-sent events) on real sockets: sent event by event in a
chunked body, generation time spread over the events, and the faults that strike a stream after
its headers (hang before the first event, hang or reset before the last)."""

import socket
import time

import httpx
import pytest

from reapi.testing import Fault, SimResponse, SimServer, json_answer

EVENTS = [b'event: step\ndata: {"n": 0}\n\n', b'event: step\ndata: {"n": 1}\n\n']
LAST = b'event: done\r\ndata: {"n": 2}\r\n\r\n'  # CRLF line ends, as Google sends them


class StreamingApp:
    """`/stream` answers three events; anything else a plain JSON body."""

    def __init__(self) -> None:
        self.calls = 0

    def handle(self, method, path, query, headers, body, *, origin):
        self.calls += 1
        if path == "/stream":
            return SimResponse(
                200, {"content-type": "text/event-stream"}, b"".join([*EVENTS, LAST])
            )
        return json_answer(200, {"path": path, "padding": "x" * 200})


@pytest.fixture
def sim():
    with SimServer(StreamingApp()) as server:
        yield server


def arrivals(url: str, *, timeout: float = 5.0) -> tuple[float, list[tuple[float, bytes]]]:
    """(seconds to the headers, [(seconds, chunk)]) of a streamed GET, read as it arrives.
    Timed from the request, not from the client's making (its TLS context alone took half a
    second on a busy machine)."""
    chunks = []
    with httpx.Client(timeout=timeout) as client:
        started = time.perf_counter()
        with client.stream("GET", url) as answer:
            headers_at = time.perf_counter() - started
            assert answer.headers["transfer-encoding"] == "chunked"
            assert "content-length" not in answer.headers
            for chunk in answer.iter_raw():
                chunks.append((time.perf_counter() - started, chunk))
    return headers_at, chunks


def test_a_stream_is_sent_event_by_event_and_kept_alive(sim):
    with httpx.Client() as client:
        answer = client.get(sim.base_url + "/stream")
        assert answer.headers["content-type"] == "text/event-stream"
        assert answer.content == b"".join([*EVENTS, LAST])
        assert client.get(sim.base_url + "/x").status_code == 200  # same connection
    _, chunks = arrivals(sim.base_url + "/stream")
    assert b"".join(c for _, c in chunks) == b"".join([*EVENTS, LAST])


def test_latency_is_spread_over_the_events_after_prompt_headers(sim):
    # 1.5 s: half a second between events, so that "long before" has room on a busy machine
    # (a client late by 0.15 s to read the headers once saw them 70 ms before a first event
    # due 0.2 s after them).
    sim.faults.set(latency=1.5)
    headers_at, chunks = arrivals(sim.base_url + "/stream")
    assert [c for _, c in chunks] == [*EVENTS, LAST]  # one chunk per event
    times = [t for t, _ in chunks]
    # Each event when its share of the latency is up; the headers long before the first.
    assert times[0] >= 0.49 and times[1] >= 0.99 and times[2] >= 1.49
    assert headers_at < times[0] - 0.25 and times[2] < 3.0


def test_latency_still_delays_a_plain_answer_as_a_whole(sim):
    sim.faults.set(latency=0.2)
    started = time.perf_counter()
    with httpx.stream("GET", sim.base_url + "/x") as answer:
        assert time.perf_counter() - started >= 0.2
        assert answer.read()


def test_hang_first_event_sends_headers_then_nothing(sim):
    sim.faults.set(Fault.HANG_FIRST_EVENT)
    with socket.create_connection((sim.host, sim.port), timeout=5) as sock:
        sock.sendall(f"GET /stream HTTP/1.1\r\nHost: {sim.host}\r\n\r\n".encode())
        # The head, whenever a busy machine lets it arrive (`hang` would send none: no head
        # within 5 s fails here); it is all there is, not a byte of the first event after it.
        head = b""
        while b"\r\n\r\n" not in head:
            received = sock.recv(65536)
            assert received, head  # closed before the end of its head
            head += received
        assert head.startswith(b"HTTP/1.1 200 ") and head.endswith(b"\r\n\r\n")
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sock.recv(65536)
    sim.faults.set(Fault.HANG_FIRST_EVENT)  # a plain answer: not a byte, like `hang`
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(sim.base_url + "/x", timeout=httpx.Timeout(5, read=0.3))


def test_hang_mid_stream_sends_all_but_the_last_event(sim):
    sim.faults.set(Fault.HANG_MID_STREAM)
    received = b""
    with httpx.stream(
        "GET", sim.base_url + "/stream", timeout=httpx.Timeout(5, read=0.3)
    ) as answer:
        with pytest.raises(httpx.ReadTimeout):
            for chunk in answer.iter_raw():
                received += chunk
    assert received == b"".join(EVENTS)
    sim.faults.set(Fault.HANG_MID_STREAM)  # a plain answer: half its body, then nothing
    with httpx.stream("GET", sim.base_url + "/x", timeout=httpx.Timeout(5, read=0.3)) as answer:
        length = int(answer.headers["content-length"])
        received = b""
        with pytest.raises(httpx.ReadTimeout):
            for chunk in answer.iter_raw():
                received += chunk
    assert len(received) == length // 2


def test_reset_mid_stream_resets_before_the_last_event(sim):
    sim.faults.set(Fault.RESET_MID_STREAM)
    received = b""
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        with httpx.stream("GET", sim.base_url + "/stream", timeout=5) as answer:
            for chunk in answer.iter_raw():
                received += chunk
    assert received == b"".join(EVENTS)
    sim.faults.set(Fault.RESET_MID_STREAM)
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        httpx.get(sim.base_url + "/x", timeout=5)


def test_mid_stream_faults_come_after_the_generation_time_so_far(sim):
    """A stream that hangs after its partial events has spent their share of the latency."""
    sim.faults.set(Fault.HANG_MID_STREAM, latency=0.6)
    started = time.perf_counter()
    with socket.create_connection((sim.host, sim.port), timeout=2) as sock:
        sock.sendall(f"GET /stream HTTP/1.1\r\nHost: {sim.host}\r\n\r\n".encode())
        data = b""
        while not data.endswith(EVENTS[1] + b"\r\n"):
            data += sock.recv(65536)
        assert 0.35 < time.perf_counter() - started < 0.6
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sock.recv(65536)

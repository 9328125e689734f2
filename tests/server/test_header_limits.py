"""Request heads are bounded (a 64 MiB header was buffered whole by the HTTP parser): a line
over `max_header_line_bytes` or a head over `max_header_bytes` is answered 431 and the
connection closed, before the rest is read. Real gateway processes, raw sockets."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
from tests.server.served import served_gateway


def _exchange(port: int, head: bytes, *, seconds: float = 10) -> bytes:
    """Send a request head; return all the gateway answered until it closed or went quiet."""
    with socket.create_connection(("127.0.0.1", port), timeout=seconds) as sock:
        try:
            sock.sendall(head)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
                if b"\r\n\r\n" in answer and b"connection: close" not in answer.lower():
                    break  # a keep-alive answer: the whole of it is in (no body expected)
        except (ConnectionResetError, TimeoutError):
            pass
    return answer


def _request(port: int, *headers: tuple[str, str]) -> bytes:
    lines = [f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"]
    lines += [f"{name}: {value}\r\n" for name, value in headers]
    return ("".join(lines) + "Connection: close\r\n\r\n").encode()


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def _vm(pid: int, field: str) -> int:
    """A /proc/<pid>/status memory figure, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(field)


def test_oversized_heads_get_431_and_normal_ones_pass(tmp_path):
    with served_gateway(tmp_path) as gateway:
        port = gateway.port
        # normal requests, close to both limits, are unaffected
        assert _status(_exchange(port, _request(port, ("x-big", "a" * 15_000)))) == 200
        near_total = [(f"x-h{i}", "b" * 7_000) for i in range(8)]  # 56 KB in 8 lines
        assert _status(_exchange(port, _request(port, *near_total))) == 200
        # one line over 16 KiB
        answer = _exchange(port, _request(port, ("x-big", "a" * 17_000)))
        assert _status(answer) == 431, answer[:300]
        body = json.loads(answer.partition(b"\r\n\r\n")[2])
        assert body["error"]["code"] == "request_header_fields_too_large"
        assert b"connection: close" in answer.lower()
        # many lines, each small, over 64 KiB in all
        many = [(f"x-h{i}", "c" * 4_000) for i in range(20)]
        assert _status(_exchange(port, _request(port, *many))) == 431
        # blank lines before the request line do not end the head early
        sneaky = b"\r\n\r\n" + _request(port, ("x-big", "d" * 17_000))
        assert _status(_exchange(port, sneaky)) == 431
        # a long URL is a long line too
        long_url = f"GET /healthz?{'q' * 17_000} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        assert _status(_exchange(port, long_url)) == 431
        # trailer fields after a chunked body are header lines too (the key: so that the
        # gateway waits for the whole body before it answers)
        key = f"Authorization: Bearer {gateway.key}\r\n".encode()
        chunked = (
            b"POST /v1/images/generations HTTP/1.1\r\nHost: x\r\n" + key + b""
            b"Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
            b"2\r\n{}\r\n0\r\n" + b"".join(b"x-t%d: %s\r\n" % (i, b"e" * 4000) for i in range(20))
        )
        assert _status(_exchange(port, chunked)) == 431
        # a large chunked body is not mistaken for one
        body = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in [b" " * 60_000] * 4)
        posted = (
            b"POST /v1/images/generations HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + key + b""
            b"Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
            + body
            + b"2\r\n{}\r\n0\r\n\r\n"
        )
        assert _status(_exchange(port, posted)) == 400  # read whole, then: no prompt
        # the gateway still serves
        assert _status(_exchange(port, _request(port))) == 200
    assert "431" in gateway.text or "request_header_fields_too_large" in gateway.text


def test_the_limits_are_settings(tmp_path):
    env = {"REAPI_MAX_HEADER_LINE_BYTES": "2048", "REAPI_MAX_HEADER_BYTES": "8192"}
    with served_gateway(tmp_path, env=env) as gateway:
        port = gateway.port
        assert _status(_exchange(port, _request(port, ("x-big", "a" * 1_500)))) == 200
        assert _status(_exchange(port, _request(port, ("x-big", "a" * 2_500)))) == 431
        five = [(f"x-h{i}", "b" * 1_800) for i in range(5)]
        assert _status(_exchange(port, _request(port, *five))) == 431


@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_a_64_mib_header_is_not_buffered(tmp_path):
    with served_gateway(tmp_path) as gateway:
        pid = gateway.process.pid
        before = _vm(pid, "VmRSS")
        sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=10)
        sent = 0
        started = time.monotonic()
        try:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nx-huge: ")
            chunk = b"z" * (1024 * 1024)
            while sent < 64 * 1024 * 1024 and time.monotonic() - started < 30:
                sock.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the gateway answered and closed: what we want
        finally:
            sock.close()
        grown = _vm(pid, "VmHWM") - before
        assert sent < 16 * 1024 * 1024, sent  # it stopped reading long before 64 MiB
        assert grown < 24 * 1024 * 1024, grown


def test_the_meter_counts_heads_split_anywhere():
    from reapi_server.head_limits import HeadLimits, HeadMeter

    head = b"\r\nGET / HTTP/1.1\r\nHost: x\r\nx-a: " + b"a" * 90 + b"\r\n\r\nBODY"
    for size in (1, 2, 3, 7, len(head)):
        meter = HeadMeter(HeadLimits(line_bytes=100, total_bytes=200))
        pieces = [head[i : i + size] for i in range(0, len(head), size)]
        accepted = 0
        for piece in pieces:
            assert meter.accept(piece)
            accepted += 1
            if not meter.reading:
                break
        end = sum(len(p) for p in pieces[: accepted - 1]) + meter.head_end
        assert head[end:] == b"BODY", size
        meter = HeadMeter(HeadLimits(line_bytes=80, total_bytes=200))
        assert not all(meter.accept(p) for p in pieces), size  # the 95-byte line
        meter = HeadMeter(HeadLimits(line_bytes=100, total_bytes=100))
        assert not all(meter.accept(p) for p in pieces), size  # the 131-byte head


def test_a_head_that_comes_whole_is_measured_as_line_by_line():
    """A head that comes in one read is found without a pass per line (`_whole_head`): the
    same end and the same refusals as when its bytes come one at a time (line by line), for
    heads with bare newlines, lone carriage returns, empty lines first and lines at the
    limits."""
    import random

    from reapi_server.head_limits import HeadLimits, HeadMeter

    def measured(pieces: list[bytes], limits: HeadLimits) -> tuple[bool, int]:
        meter, seen = HeadMeter(limits), 0
        for piece in pieces:
            if not meter.accept(piece):
                return False, -1
            if not meter.reading:
                return True, seen + meter.head_end
            seen += len(piece)
        return True, -1  # not ended yet

    parts = [b"GET / HTTP/1.1", b"Host: x", b"a: " + b"b" * 40, b"\r", b"", b"x-y: z\r"]
    ends = [b"\r\n", b"\n"]
    rng = random.Random(15)
    for _ in range(3000):
        lines = [rng.choice(parts) + rng.choice(ends) for _ in range(rng.randint(1, 6))]
        head = b"".join(lines) + b"BODY\r\n\r\n"
        limits = HeadLimits(line_bytes=rng.choice((20, 50, 100)), total_bytes=rng.choice((60, 300)))
        whole = measured([head], limits)
        assert whole == measured([head[i : i + 1] for i in range(len(head))], limits), head


def _answer_within(sock: socket.socket, seconds: float) -> tuple[bytes, float]:
    """What the gateway sends until it closes, and when it closed (inf: it did not)."""
    sock.settimeout(seconds)
    started, answer = time.monotonic(), b""
    try:
        while chunk := sock.recv(65536):
            answer += chunk
    except TimeoutError:
        return answer, float("inf")
    except ConnectionResetError:
        pass
    return answer, time.monotonic() - started


@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_a_head_that_does_not_arrive_in_time_is_refused(tmp_path):
    """Connections that send nothing, or their head a byte at a time, were held for ever (a
    file descriptor each, no key needed): a head now has `header_timeout` to arrive."""
    with served_gateway(tmp_path, env={"REAPI_HEADER_TIMEOUT": "1"}) as gateway:
        port = gateway.port
        # A new connection that sends nothing is closed, without an answer.
        with socket.create_connection(("127.0.0.1", port)) as idle:
            answer, closed_after = _answer_within(idle, 8)
        assert answer == b"" and closed_after < 8
        # A head trickled a byte at a time is answered 408 once its time is up.
        with socket.create_connection(("127.0.0.1", port)) as slow:
            started = time.monotonic()
            slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            try:
                while time.monotonic() - started < 6:
                    slow.sendall(b"x")
                    time.sleep(0.2)
            except (BrokenPipeError, ConnectionResetError):
                pass
            answer, closed_after = _answer_within(slow, 8)
        assert _status(answer) == 408, answer[:300]
        assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["code"] == "request_timeout"
        assert time.monotonic() - started < 6
        # A keep-alive connection: the second head's time starts with its first byte, so a
        # request that follows a slow response is not cut short, and a prompt one passes.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as kept:
            for _ in range(2):
                kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                time.sleep(0.6)  # within the second, split across reads
                kept.sendall(b"\r\n")
                answer = b""
                while not answer.endswith(b'{"status":"ok"}'):
                    answer += kept.recv(65536)
                assert answer.startswith(b"HTTP/1.1 200 ")


def _post_head(port: int, key: str, length: int) -> bytes:
    return (
        f"POST /v1/images/generations HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def _trickle(sock: socket.socket, body: bytes, *, chunk: int, every: float) -> None:
    """Send `body` `chunk` bytes at a time, `every` seconds apart, until it is sent or the
    gateway closed the connection."""
    try:
        for start in range(0, len(body), chunk):
            sock.sendall(body[start : start + chunk])
            time.sleep(every)
    except (BrokenPipeError, ConnectionResetError):
        pass


@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_a_body_that_stops_coming_is_refused(tmp_path):
    """A body trickled, or stopped after its head, held the connection for as long as its
    sender liked (a file descriptor and a request each): a body now has `body_timeout` after
    its head plus a second for every `body_min_bytes_per_second` bytes that arrived."""
    env = {"REAPI_BODY_TIMEOUT": "1", "REAPI_BODY_MIN_BYTES_PER_SECOND": "100"}
    with served_gateway(tmp_path, env=env) as gateway:
        port, key = gateway.port, gateway.key
        # A head that announces a body, then nothing: 408 once the body's time is up.
        with socket.create_connection(("127.0.0.1", port)) as stalled:
            started = time.monotonic()
            stalled.sendall(_post_head(port, key, 1000) + b'{"model": "gpt-image-2", ')
            answer, closed_after = _answer_within(stalled, 8)
        assert _status(answer) == 408, answer[:300]
        error = json.loads(answer.partition(b"\r\n\r\n")[2])["error"]
        assert error["code"] == "request_timeout" and "body" in error["message"]
        assert 0.9 < time.monotonic() - started < 4 and closed_after < 8
        # Bytes that keep coming, but slower than the rate: refused all the same (a byte every
        # 0.2 s is 5 bytes a second; each buys 10 ms against the 100 bytes a second asked).
        with socket.create_connection(("127.0.0.1", port)) as slow:
            started = time.monotonic()
            slow.sendall(_post_head(port, key, 1000))
            _trickle(slow, b"x" * 40, chunk=1, every=0.2)
            answer, _ = _answer_within(slow, 8)
        assert _status(answer) == 408, answer[:300]
        assert time.monotonic() - started < 6
        # A body that arrives faster than the rate passes, however long it takes in all: the
        # gateway read it whole (its JSON is answered, as malformed), after 3 s > 1 s.
        body = b'{"model": "gpt-image-2", "prompt": ' + b" " * 560 + b"}"
        with socket.create_connection(("127.0.0.1", port)) as steady:
            started = time.monotonic()
            steady.sendall(_post_head(port, key, len(body)))
            _trickle(steady, body, chunk=60, every=0.3)  # 200 bytes a second
            answer, _ = _answer_within(steady, 8)
        assert time.monotonic() - started > 2.5
        assert _status(answer) == 400, answer[:300]
        # One connection, two requests: the second's body is timed from its own head.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as kept:
            for _ in range(2):
                kept.sendall(_post_head(port, key, 2))
                time.sleep(0.6)
                kept.sendall(b"{}")
                answer = b""
                while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
                    answer += kept.recv(65536)
                assert _status(answer) == 400, answer[:300]
    assert "Traceback" not in gateway.text, gateway.text[-2000:]

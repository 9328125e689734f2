"""The fault proxy itself, against an echo server: each fault does what it says."""

import socket
import socketserver
import threading
import time

import pytest
from tests.server.fault_proxy import FaultProxy


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


@pytest.fixture
def proxy():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    proxy = FaultProxy(server.server_address[1])
    yield proxy
    proxy.close()
    server.shutdown()
    server.server_close()


def _connect(proxy, timeout: float = 2.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", proxy.port), timeout=timeout)


def _echo(sock: socket.socket, data: bytes = b"ping") -> bytes:
    sock.sendall(data)
    return sock.recv(65536)


def test_passes_then_delays(proxy):
    with _connect(proxy) as sock:
        assert _echo(sock) == b"ping"
        proxy.delay(0.2)
        started = time.monotonic()
        assert _echo(sock) == b"ping"
        assert time.monotonic() - started >= 0.4  # held on the way there and back


def test_reset_and_refuse(proxy):
    sock = _connect(proxy)
    assert _echo(sock) == b"ping"
    proxy.reset()
    with pytest.raises(ConnectionResetError):
        _echo(sock)
        _echo(sock)
    with pytest.raises(ConnectionResetError):  # at the handshake, or at the first exchange
        with _connect(proxy) as fresh:
            _echo(fresh)
            _echo(fresh)
    proxy.refuse()
    with pytest.raises(ConnectionRefusedError):
        _connect(proxy)
    proxy.heal()
    with _connect(proxy) as healed:
        assert _echo(healed) == b"ping"


def test_drop_closes(proxy):
    sock = _connect(proxy)
    assert _echo(sock) == b"ping"
    proxy.drop()
    assert sock.recv(10) == b""  # a FIN: the end of the stream
    with _connect(proxy) as fresh:
        assert fresh.recv(10) == b""


def test_blackhole_hangs(proxy):
    sock = _connect(proxy, timeout=0.3)
    assert _echo(sock) == b"ping"
    proxy.blackhole()
    with pytest.raises(TimeoutError):
        _echo(sock)
    with _connect(proxy, timeout=0.3) as fresh, pytest.raises(TimeoutError):
        _echo(fresh)
    proxy.heal()
    with _connect(proxy) as healed:
        assert _echo(healed) == b"ping"


def test_reset_after_some_bytes(proxy):
    sock = _connect(proxy)
    proxy.reset_after(10)
    assert _echo(sock, b"12345") == b"12345"
    with pytest.raises(ConnectionResetError):
        _echo(sock, b"1234567890")
        _echo(sock)
    with pytest.raises(ConnectionRefusedError):
        _connect(proxy)

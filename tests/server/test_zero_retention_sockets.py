"""CHECKS.md §1-4 again on real sockets: a live gateway (uvicorn) in front of two OpenAI
simulators (whose 400s quote the prompt, like OpenAI's), faults switched on the simulators.
No marker may survive in logs, database files, the data dir, temp files, metrics or answers."""

import logging
import socket
import tempfile
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.server.fakes import PNG
from tests.server.live import live_gateway
from tests.server.served import served_gateway

from reapi.router import InMemoryBreakerStore
from reapi.testing import SIMULATOR_KEY, OpenAISimulator, SimulatorSpec, run_simulators
from reapi_server.observability.logging import JsonFormatter, PlainFormatter

PROMPT = "MARKER-sockets-prompt-41c7 forbidden"  # "forbidden": the simulator blocks and quotes it
CLEAN_PROMPT = "MARKER-sockets-clean-8e2a"
IMAGE = b"MARKER-sockets-image-19fd"
MASK = b"MARKER-sockets-mask-b03e"
USER = "MARKER-sockets-user-6a51"
MARKERS = [b"MARKER-sockets"]
METRICS_TOKEN = "metrics-token-5b0c"
APP_FAULTS = {"task_fails", "content_policy", "quota_exhausted"}


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(JsonFormatter().format(record))
        self.lines.append(PlainFormatter().format(record))
        self.lines.append(logging.Formatter("%(name)s %(message)s").format(record))
        if record.exc_info and record.exc_info[1] is not None:
            self.lines.append("".join(traceback.format_exception(record.exc_info[1])))


@pytest.fixture
def capture() -> Iterator[_Capture]:
    handler = _Capture()
    loggers = [logging.getLogger(n) for n in ("", "reapi", "reapi_server", "uvicorn", "httpx")]
    levels = [lg.level for lg in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    yield handler
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


def _png(marker: bytes) -> bytes:
    return PNG + marker


def test_no_marker_survives_on_real_sockets(tmp_path, migrated_template, capture, monkeypatch):
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    sims = run_simulators(
        {
            "primary": SimulatorSpec(OpenAISimulator(SIMULATOR_KEY, polls_to_complete=1), "/v1"),
            "backup": SimulatorSpec(OpenAISimulator(SIMULATOR_KEY, polls_to_complete=1), "/v1"),
        }
    )
    answers: list[bytes] = []
    data_dir = tmp_path / "data"
    try:
        with live_gateway(
            data_dir,
            migrated_template,
            upstream_client=httpx.AsyncClient(),
            provider_keys={"primary": SIMULATOR_KEY, "backup": SIMULATOR_KEY},
            provider_base_urls=sims.provider_urls,
            run_background_tasks=True,  # the server's own poller, in the server's loop
            poll_interval=0.05,
            metrics_token=METRICS_TOKEN,
        ) as gw:
            client = httpx.Client(base_url=gw.base_url, timeout=30)
            headers = {"authorization": f"Bearer {gw.key}"}

            def fault(**by_name: str) -> None:
                """Transport faults are the server's to apply, the others the simulator app's."""
                for name, server in sims.servers.items():
                    wanted = by_name.get(name, "none")
                    app_level = wanted in APP_FAULTS
                    server.faults.set("none" if app_level else wanted)
                    server.app.faults.set(wanted if app_level else "none")
                gw.runtime.router.breakers = InMemoryBreakerStore()

            def generate(prompt: str = CLEAN_PROMPT) -> int:
                response = client.post(
                    "/v1/images/generations",
                    json={"model": "gpt-image-2", "prompt": prompt, "user": USER},
                    headers=headers,
                )
                answers.append(response.content)
                return response.status_code

            def edit() -> int:
                response = client.post(
                    "/v1/images/edits",
                    data={"model": "gpt-image-2", "prompt": CLEAN_PROMPT, "user": USER},
                    files=[
                        ("image", ("a.png", _png(IMAGE), "image/png")),
                        ("mask", ("m.png", _png(MASK), "image/png")),
                    ],
                    headers=headers,
                )
                answers.append(response.content)
                return response.status_code

            assert generate() == 200 and edit() == 200  # success
            bad = client.post(
                "/v1/images/generations", json={"prompt": {"p": PROMPT}}, headers=headers
            )
            answers.append(bad.content)
            assert bad.status_code == 422  # validation error
            assert generate(PROMPT) == 400  # the simulator's 400 quotes the prompt
            fault(primary="error_500", backup="error_503")
            assert generate() in (502, 503) and edit() in (502, 503)  # 5xx everywhere
            fault(primary="hang", backup="hang")
            assert generate() == 504  # timeouts
            fault(primary="reset")
            assert edit() == 200  # failover
            fault(primary="task_fails")  # the task fails upstream, then resubmits to the backup
            video = client.post(
                "/v1/videos",
                data={"model": "sim-video", "prompt": CLEAN_PROMPT, "size": "1280x720"},
                files={"input_reference": ("r.png", _png(IMAGE), "image/png")},
                headers=headers,
            )
            answers.append(video.content)
            assert video.status_code == 200
            deadline = time.monotonic() + 10
            while True:
                final = client.get(f"/v1/videos/{video.json()['id']}", headers=headers).json()
                if final["status"] in ("completed", "failed") or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            assert final["status"] == "completed" and final["reapi"]["provider"] == "backup"
            for path in ("/v1/usage", "/v1/videos"):
                answers.append(client.get(path, headers=headers).content)
            metrics = client.get("/metrics", headers={"authorization": f"Bearer {METRICS_TOKEN}"})
            assert metrics.status_code == 200 and b"reapi_http_requests_total" in metrics.content
            answers.append(metrics.content)
    finally:
        sims.stop()
    secrets = [*MARKERS, gw.key.encode(), SIMULATOR_KEY.encode()]
    for answer in answers:
        assert not any(s in answer for s in secrets), answer[:300]
    logs = "\n".join(capture.lines)
    assert "reapi_server.access" in logs
    assert not any(s.decode() in logs for s in secrets)
    files = [p for root in (data_dir, temp) for p in Path(root).rglob("*") if p.is_file()]
    for path in files:
        content = path.read_bytes()
        assert not any(s in content for s in secrets), path


def _websocket_upgrade(port: int, key: str, marker: str) -> bytes:
    """A WebSocket handshake on a raw socket: the marker in the query string and in headers,
    the caller's real key in Authorization. Returns what the gateway answered."""
    head = (
        f"GET /v1/images/generations?prompt={marker}-query HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Protocol: {marker}-protocol\r\n"
        f"Authorization: Bearer {key}\r\n"
        f"Cookie: session={marker}-cookie\r\n"
        f"X-Prompt: {marker}-header\r\n"
        "\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
def test_websocket_upgrades_leave_no_marker(tmp_path, level):
    """A WebSocket upgrade is not served (the gateway has no WebSocket route): it is answered
    as the plain HTTP request it also is, and nothing of its request line or headers is
    logged, at INFO or DEBUG (where a WebSocket library would print every header)."""
    marker = f"MARKER-ws-{level.lower()}-3d9a"
    env = {"REAPI_LOG_LEVEL": level, "REAPI_LOG_JSON": "true"}
    with served_gateway(tmp_path, env=env) as gateway:
        answer = _websocket_upgrade(gateway.port, gateway.key, marker)
        # answered by the gateway's HTTP stack (it sets x-request-id), not by a WebSocket one
        assert b"x-request-id:" in answer.lower(), answer[:300]
        assert marker.encode() not in answer
    logs = gateway.text
    assert '"msg":"gateway ready"' in logs  # the gateway did log (at this level)
    assert marker not in logs, logs[-3000:]
    assert gateway.key not in logs

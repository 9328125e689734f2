"""An address `serve` cannot listen on is named in its log, with the setting to change: two
instances on one host both default to the metrics listener 127.0.0.1:9464, and the second one
stopped with `metrics listener failed` (or uvicorn's `socket error EADDRINUSE` for the main
port) and no word of which address."""

from __future__ import annotations

import json
import os
import socket
import subprocess

from tests.server.test_cli import _bin


def _serve(**env: str) -> tuple[int, list[dict[str, object]]]:
    run = subprocess.run(
        [_bin("reapi-server"), "serve"],
        env={**{k: v for k, v in os.environ.items() if not k.startswith("REAPI_")}, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = (run.stderr + run.stdout).splitlines()
    return run.returncode, [json.loads(line) for line in lines if line.startswith("{")]


def _held() -> socket.socket:
    """A listening socket on a free loopback port, as another process's would be."""
    return socket.create_server(("127.0.0.1", 0))


def test_a_taken_metrics_address_is_named(tmp_path):
    free, taken = _held(), _held()
    free_port = free.getsockname()[1]
    free.close()
    with taken:
        port = taken.getsockname()[1]
        code, records = _serve(
            REAPI_DATA_DIR=str(tmp_path / "data"),
            REAPI_PORT=str(free_port),
            REAPI_METRICS_LISTEN=f"127.0.0.1:{port}",
        )
    assert code != 0
    errors = [r for r in records if r["level"] == "error"]
    assert [r["msg"] for r in errors] == [
        f"metrics listener failed: cannot listen on 127.0.0.1:{port}: give each instance on a"
        " host its own metrics_listen (REAPI_METRICS_LISTEN), or off"
    ]
    assert errors[0]["code"] == "EADDRINUSE"


def test_a_taken_main_address_is_named(tmp_path):
    with _held() as taken:
        port = taken.getsockname()[1]
        code, records = _serve(
            REAPI_DATA_DIR=str(tmp_path / "data"),
            REAPI_PORT=str(port),
            REAPI_METRICS_LISTEN="off",
        )
    assert code != 0
    said = [r["msg"] for r in records if r["level"] == "error"]
    assert said == [
        "socket error EADDRINUSE",
        f"cannot listen on 127.0.0.1:{port}: set host and port (REAPI_HOST, REAPI_PORT) to a"
        " free address",
    ]

"""A gateway in a process of its own, for the tests that kill it (SIGKILL) in the middle of its
work: what a crash leaves behind must be found and removed by the processes that remain.

`python -m tests.server.killable <json>` runs the gateway (uvicorn, loopback) with the fake
upstream inside the child, shaped by the JSON; `killable_gateway` starts it, waits until it
answers, and kills it if the test did not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from tests.server.live import free_port

REPO = Path(__file__).resolve().parents[2]


@dataclass
class KillableGateway:
    process: subprocess.Popen[bytes]
    base_url: str
    #: The child's stdout and stderr (its logs).
    log: Path
    #: The child's TMPDIR.
    temp: Path

    def kill(self) -> None:
        """SIGKILL: no handler, no finally, no flush runs in the child."""
        self.process.kill()
        self.process.wait(timeout=10)


@contextmanager
def killable_gateway(
    work: Path, data_dir: Path, *, settings: dict[str, Any], upstream: dict[str, Any]
) -> Iterator[KillableGateway]:
    """`settings`: gateway overrides (JSON values); `upstream`: FakeUpstream fields, plus
    `video_bytes` (the size of a random MP4-headed video body)."""
    port = free_port()
    temp = work / "child-tmp"
    temp.mkdir(parents=True, exist_ok=True)
    log = work / "child.log"
    config = {"data_dir": str(data_dir), "port": port, "settings": settings, "upstream": upstream}
    env = {**os.environ, "TMPDIR": str(temp), "PYTHONPATH": str(REPO)}
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.server.killable", json.dumps(config)],
            cwd=REPO,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    gateway = KillableGateway(process, f"http://127.0.0.1:{port}", log, temp)
    try:
        _wait_until_up(gateway)
        yield gateway
    finally:
        if process.poll() is None:
            gateway.kill()


def _wait_until_up(gateway: KillableGateway) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if gateway.process.poll() is not None:
            raise RuntimeError(f"the gateway exited: {gateway.log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{gateway.base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError("the gateway did not start")


def _child(config: dict[str, Any]) -> None:
    import uvicorn
    from tests.conftest import two_host_catalog
    from tests.server.conftest import settings_for
    from tests.server.fakes import MP4, FakeUpstream

    from reapi.router import RouterConfig
    from reapi_server.app import create_app
    from reapi_server.observability.logging import configure_logging

    shape = dict(config["upstream"])
    size = shape.pop("video_bytes", None)
    upstream = FakeUpstream(**shape)
    if size is not None:
        upstream.video_body = MP4[:16] + os.urandom(size - 16)
    settings = settings_for(Path(config["data_dir"]), **config["settings"])
    configure_logging("DEBUG", json_lines=True)
    app = create_app(
        settings,
        catalog=two_host_catalog(),
        http_client=httpx.AsyncClient(transport=upstream.transport()),
        # Long enough for an upstream that the test makes slow on purpose.
        router_config=RouterConfig(first_byte_timeout=5.0),
        migrate=False,
    )
    uvicorn.run(app, host="127.0.0.1", port=config["port"], log_config=None, lifespan="on")


if __name__ == "__main__":
    _child(json.loads(sys.argv[1]))

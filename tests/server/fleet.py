"""The fleet shape as the tests run it: PostgreSQL, Redis, an S3 bucket (moto) and two
`reapi-server serve` processes with data dirs of their own, in front of provider simulators.

`compose.yaml` runs the same shape: the same command and the same environment variables
(`GATEWAY_COMMAND`, `GATEWAY_ENVIRONMENT`), with its own addresses and secrets. A test holds the
two in step (tests/test_deploy_files.py). The simulators and the timings that keep this test
short are the test's own (`TEST_ONLY_ENVIRONMENT`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from tests.conftest import two_host_catalog

#: What compose.yaml's gateways run (its image's entry point is `reapi-server`).
GATEWAY_COMMAND = ["reapi-server", "serve"]
#: The variables compose.yaml sets for each gateway, and this test too.
GATEWAY_ENVIRONMENT = (
    "REAPI_HOST",
    "REAPI_PORT",
    "REAPI_DATA_DIR",
    "REAPI_DATABASE_URL_FILE",
    "REAPI_REDIS_URL",
    "REAPI_SECRET_KEY_FILE",
    "REAPI_STORAGE_BACKEND",
    "REAPI_S3_ENDPOINT_URL",
    "REAPI_S3_BUCKET",
    "REAPI_S3_REGION",
    "REAPI_S3_ADDRESSING_STYLE",
    "REAPI_S3_ACCESS_KEY_ID_FILE",
    "REAPI_S3_SECRET_ACCESS_KEY_FILE",
    "REAPI_PUBLIC_BASE_URL",
    "REAPI_FORWARDED_ALLOW_IPS",
    "REAPI_METRICS_LISTEN",
    "REAPI_DRAIN_DELAY_SECONDS",
    "REAPI_DRAIN_SECONDS",
    "REAPI_LOG_JSON",
)
#: The test's own: simulated providers, and shorter timings.
TEST_ONLY_ENVIRONMENT = (
    "REAPI_CATALOG_PATH",
    "REAPI_PROVIDER_KEYS__PRIMARY",
    "REAPI_PROVIDER_KEYS__BACKUP",
    "REAPI_PROVIDER_KEYS__SLOWVIDEO",
    "REAPI_POLL_INTERVAL",
    "REAPI_JOB_LEASE_SECONDS",
    "REAPI_FIRST_BYTE_TIMEOUT",
)


def catalog_file(path: Path, urls: dict[str, str]) -> Path:
    """gpt-image-2 on primary then backup; sim-video on slowvideo (a simulator behind a slow
    link: its polls take long enough to kill an instance in the middle of one)."""
    data = two_host_catalog().model_dump(mode="json")
    providers = {
        name: {**data["providers"]["primary"], "base_url": url} for name, url in urls.items()
    }
    video = data["models"]["sim-video"]
    video["routes"] = [{"provider": "slowvideo", "upstream_model": "sora-2"}]
    overlay = {"providers": providers, "models": [data["models"]["gpt-image-2"], video]}
    path.write_text(json.dumps(overlay))
    return path


@dataclass
class Instance:
    port: int
    metrics_port: int
    data_dir: Path
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, binary: str) -> None:
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                [binary, *GATEWAY_COMMAND[1:]],
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"gateway exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError("gateway not ready")

    def terminate(self, seconds: float = 30) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=seconds)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def metrics(self) -> str:
        return httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text


@dataclass
class Fleet:
    binary: str
    instances: list[Instance] = field(default_factory=list)

    def start_all(self) -> None:
        for instance in self.instances:
            instance.start(self.binary)
        for instance in self.instances:
            instance.wait_ready()

    def restart(self, index: int) -> None:
        instance = self.instances[index]
        instance.start(self.binary)
        instance.wait_ready()

    def stop_all(self) -> None:
        for instance in self.instances:
            if instance.process is not None and instance.process.poll() is None:
                instance.process.send_signal(signal.SIGTERM)
        for instance in self.instances:
            if instance.process is not None:
                try:
                    instance.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    instance.process.kill()
                    instance.process.wait()


def instance_env(base: dict[str, str], **values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REAPI_")}
    return {**env, **base, **values}

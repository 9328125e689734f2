"""The built wheel, installed into fresh virtual environments with each extra that matters.

Slow (a few minutes: pip resolves and installs each set of dependencies from its cache or the
package index), so marked `install`: `pytest -m "not install"` skips it; `make test` runs it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from tests.server.live import free_port
from tests.server.otlp_collector import running_collector
from tests.server.served import KEY_LINE
from tests.server.test_cli import _wait_for

pytestmark = [pytest.mark.install, pytest.mark.timeout(1800)]  # pip resolves for minutes

ROOT = Path(__file__).parents[1]

#: The SDK alone brings neither the gateway's web framework nor boto3.
SERVER_FREE = (
    "import importlib.util as u; print([m for m in ('fastapi', 'boto3') if u.find_spec(m)])"
)

#: One in-process image against the OpenAI simulator: the SDK works from the wheel alone.
IMAGE = """
from reapi import ReAPI
from reapi.testing import OpenAISimulator, SimServer, is_png

with SimServer(OpenAISimulator("sk-sim")) as sim:
    with ReAPI(provider_keys={"openai": "sk-sim"},
               provider_base_urls={"openai": sim.base_url + "/v1"}) as client:
        image = client.images.generate(model="gpt-image-2", prompt="a lighthouse")
        assert is_png(image.data[0].content())
        print("image from", image.reapi.provider)
"""

#: What a missing optional extra must say when the setting that needs it is used.
MISSING_EXTRAS = """
import asyncio
from reapi_server.config import Settings
from reapi_server.extras import MissingExtraError
from reapi_server.mirror.factory import build_store
from reapi_server.db import Database

try:
    build_store(Settings(storage_backend="s3", s3_bucket="b"))
except MissingExtraError as error:
    print(error)
try:
    Database("postgresql+asyncpg://u@127.0.0.1/db")
except MissingExtraError as error:
    print(error)
"""

#: The changelog page's text comes from inside the installed package (no checkout around it).
CHANGELOG = """
import reapi_server.site.changelog as c
print(len(c.changelog_source()))
print("<h2>Unreleased</h2>" in c.changelog_html())
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)])
    (built,) = out.glob("reapi-*.whl")
    return built


def _clean_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("REAPI_", "VIRTUAL_ENV", "PYTHONPATH"))
    }
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _run(
    command: list[str], env: dict[str, str] | None = None, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    env = env or _clean_env()
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=900, env=env, cwd="/", **kwargs
    )
    assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    return done


def _venv(root: Path, wheel: Path, extras: str) -> Path:
    """A new virtual environment (no system site-packages) with the wheel and `extras`."""
    _run([sys.executable, "-m", "venv", str(root)])
    target = f"reapi[{extras}] @ {wheel.as_uri()}" if extras else str(wheel)
    _run([str(root / "bin" / "python"), "-m", "pip", "install", "-q", target])
    return root / "bin"


def test_the_sdk_alone(tmp_path: Path, wheel: Path) -> None:
    bin_dir = _venv(tmp_path / "venv", wheel, "")
    assert "Usage: reapi" in _run([str(bin_dir / "reapi"), "--help"]).stdout
    assert "image from openai" in _run([str(bin_dir / "python"), "-c", IMAGE]).stdout
    assert _run([str(bin_dir / "python"), "-c", SERVER_FREE]).stdout.strip() == "[]"
    # The gateway command exists but says which extra it needs, in one line.
    done = subprocess.run(
        [str(bin_dir / "reapi-server"), "demo", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 1
    assert "pip install 'reapi[server]'" in done.stderr and "Traceback" not in done.stderr


def test_the_gateway_on_sqlite_and_local_storage(tmp_path: Path, wheel: Path) -> None:
    bin_dir = _venv(tmp_path / "venv", wheel, "server")
    assert "Usage: reapi" in _run([str(bin_dir / "reapi"), "--help"]).stdout
    assert "simulators" in _run([str(bin_dir / "reapi-server"), "demo", "--help"]).stdout
    assert "image from openai" in _run([str(bin_dir / "python"), "-c", IMAGE]).stdout
    said = _run([str(bin_dir / "python"), "-c", MISSING_EXTRAS]).stdout
    assert "pip install 'reapi[s3]'" in said and "pip install 'reapi[postgres]'" in said
    _tracing_needs_its_extra(bin_dir, tmp_path / "data")
    size, rendered = _run([str(bin_dir / "python"), "-c", CHANGELOG]).stdout.split()
    assert int(size) == len((ROOT / "CHANGELOG.md").read_text("utf-8")) and rendered == "True"


def _tracing_needs_its_extra(bin_dir: Path, data_dir: Path) -> None:
    """Without the `otel` extra, `tracing = true` is refused in one line that names it."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("REAPI_", "VIRTUAL_ENV", "PYTHONPATH"))
    }
    env["REAPI_TRACING"] = "true"
    done = subprocess.run(
        [str(bin_dir / "reapi-server"), "check-config", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        env=env,
        cwd="/",
    )
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    assert "'otel' extra" in line and "pip install 'reapi[otel]'" in line, done.stderr


def test_the_gateway_with_s3_and_postgres(tmp_path: Path, wheel: Path) -> None:
    bin_dir = _venv(tmp_path / "venv", wheel, "server,s3,postgres")
    assert "simulators" in _run([str(bin_dir / "reapi-server"), "demo", "--help"]).stdout
    assert "image from openai" in _run([str(bin_dir / "python"), "-c", IMAGE]).stdout
    said = _run([str(bin_dir / "python"), "-c", MISSING_EXTRAS]).stdout
    assert said == ""  # both drivers present: nothing is missing


def test_the_gateway_with_tracing(tmp_path: Path, wheel: Path) -> None:
    """With the `otel` extra, `serve` with `tracing = true` posts its spans over OTLP/HTTP: the
    extra's packages are all it needs."""
    bin_dir = _venv(tmp_path / "venv", wheel, "server,otel")
    server = str(bin_dir / "reapi-server")
    data = ["--data-dir", str(tmp_path / "data")]
    _run([server, "accounts", "create", "--email", "t@example.com", "--credits", "1", *data])
    key = KEY_LINE.search(
        _run([server, "keys", "create", "--email", "t@example.com", *data]).stdout
    )
    assert key
    with running_collector() as collector:
        env = {k: v for k, v in _clean_env().items() if not k.startswith("OTEL_")}
        env |= {
            "REAPI_TRACING": "true",
            "REAPI_TRACING_ENDPOINT": collector.endpoint,
            "REAPI_METRICS_LISTEN": "off",
        }
        _run([server, "check-config", *data], env=env)
        port = free_port()
        process = subprocess.Popen(
            [server, "serve", "--port", str(port), *data],
            env=env,
            cwd="/",
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            _wait_for(f"http://127.0.0.1:{port}/healthz", process)
            models = httpx.get(
                f"http://127.0.0.1:{port}/v1/models",
                headers={"authorization": f"Bearer {key.group(1)}"},
            )
            assert models.status_code == 200
        finally:
            process.terminate()
            output = process.communicate(timeout=30)[0]
        assert "Traceback" not in output, output
        names = {span.name for span in collector.spans()}
        assert "GET /v1/models" in names, (names, output)

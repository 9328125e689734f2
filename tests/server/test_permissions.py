"""The data dir and everything in it are private to the gateway's user: the database and its WAL
hold file ids, which are bearer capabilities for outputs. Real processes (the CLI, then
`reapi-server serve`) under the usual umask 022, which would make files world-readable."""

import os
import re
import stat
import subprocess
from pathlib import Path

import httpx
import pytest
from tests.server.live import free_port
from tests.server.test_cli import _bin, _wait_for

from reapi.testing import SIMULATOR_KEY, OpenAISimulator, SimulatorSpec, run_simulators


def _modes(root: Path) -> dict[str, str]:
    """Path (relative) → permission bits, for the data dir and everything in it."""
    found = {".": oct(stat.S_IMODE(root.stat().st_mode))}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = oct(stat.S_IMODE(path.lstat().st_mode))
    return found


def _umask_022() -> None:
    os.umask(0o022)


def _run(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [_bin("reapi-server"), *args],
        env=env,
        capture_output=True,
        text=True,
        preexec_fn=_umask_022,
        check=True,
    )
    return done.stdout


def _assert_private(root: Path) -> None:
    for path, mode in _modes(root).items():
        is_dir = path == "." or (root / path).is_dir()
        assert mode == ("0o700" if is_dir else "0o600"), (path, mode)


@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_the_data_dir_and_its_files_are_private(tmp_path):
    data_dir = tmp_path / "data"  # made by the CLI
    env = {**os.environ, "REAPI_DATA_DIR": str(data_dir)}
    _run("accounts", "create", "--email", "p@example.com", "--credits", "1000", env=env)
    output = _run("keys", "create", "--email", "p@example.com", env=env)
    key = re.search(r"REAPI_API_KEY=(\S+)", output).group(1)
    _assert_private(data_dir)  # after the CLI: the database, created by it

    simulators = run_simulators({"openai": SimulatorSpec(OpenAISimulator(SIMULATOR_KEY), "/v1")})
    port = free_port()
    serve_env = {
        **env,
        "OPENAI_API_KEY": simulators.api_key,
        "REAPI_PROVIDER_BASE_URLS__OPENAI": simulators.provider_urls["openai"],
        "REAPI_METRICS_LISTEN": "off",  # 9464 is everyone's default
    }
    process = subprocess.Popen(
        [_bin("reapi-server"), "serve", "--port", str(port)],
        env=serve_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_umask_022,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for(f"{base}/healthz", process)
        answer = httpx.post(
            f"{base}/v1/images/generations",
            json={"model": "gpt-image-2", "prompt": "p", "response_format": "url"},
            headers={"authorization": f"Bearer {key}"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        modes = _modes(data_dir)  # while it runs: the WAL and its index exist
        assert "reapi.db-wal" in modes  # (the fleet's secret lives in the database now)
        assert any(path.endswith(".png") for path in modes)
        _assert_private(data_dir)
    finally:
        process.terminate()
        process.communicate(timeout=20)
        simulators.stop()
    _assert_private(data_dir)


def test_an_existing_world_readable_data_dir_is_made_private(tmp_path):
    """Data dirs of earlier versions: tightened at the next start."""
    data_dir = tmp_path / "data"
    env = {**os.environ, "REAPI_DATA_DIR": str(data_dir)}
    _run("migrate", env=env)
    for path in [data_dir, *data_dir.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    _run("accounts", "create", "--email", "q@example.com", "--credits", "1", env=env)
    _assert_private(data_dir)

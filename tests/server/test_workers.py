"""Two worker processes on one SQLite file (`serve --workers 2`) in front of the OpenAI
simulator: concurrent requests never overdraw and the ledger still adds up."""

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from tests.server.live import free_port
from tests.server.test_cli import _bin, _wait_for
from typer.testing import CliRunner

from reapi.testing import SIMULATOR_KEY, OpenAISimulator, SimulatorSpec, run_simulators
from reapi_server.cli import app

runner = CliRunner()


async def _spend(base: str, key: str, count: int) -> list[int]:
    async with httpx.AsyncClient(
        base_url=base, headers={"authorization": f"Bearer {key}"}, timeout=30
    ) as client:

        async def one() -> int:
            response = await client.post(
                "/v1/images/generations", json={"model": "gpt-image-2", "prompt": "p"}
            )
            return response.status_code

        return list(await asyncio.gather(*(one() for _ in range(count))))


@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_two_workers_share_one_sqlite_file(tmp_path):
    simulators = run_simulators({"openai": SimulatorSpec(OpenAISimulator(SIMULATOR_KEY), "/v1")})
    data = ["--data-dir", str(tmp_path)]
    email = ["--email", "w@example.com"]
    runner.invoke(app, ["accounts", "create", *email, "--credits", "400", *data])
    output = runner.invoke(app, ["keys", "create", "--email", "w@example.com", *data]).output
    key = re.search(r"REAPI_API_KEY=(\S+)", output).group(1)
    port = free_port()
    env = {
        **os.environ,
        "OPENAI_API_KEY": simulators.api_key,
        "REAPI_PROVIDER_BASE_URLS__OPENAI": simulators.provider_urls["openai"],
        "REAPI_REQUESTS_PER_MINUTE": "100000",
        "REAPI_METRICS_LISTEN": "off",  # 9464 is everyone's default
    }
    process = subprocess.Popen(
        [_bin("reapi-server"), "serve", "--workers", "2", "--port", str(port), *data],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for(f"{base}/healthz", process)
        statuses = asyncio.run(_spend(base, key, 40))
        if sys.platform.startswith("linux"):  # each worker shows as reapi-server, not python
            children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text()
            commands = {
                c: Path(f"/proc/{c}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                for c in children.split()
            }
            workers = [c for c, command in commands.items() if "resource_tracker" not in command]
            assert len(workers) == 2, commands  # not multiprocessing's resource tracker
            names = {Path(f"/proc/{c}/comm").read_text().strip() for c in workers}
            assert names == {"reapi-server"}, (names, commands)
        # the workers got the gateway's uvicorn config (pickled to them): heads are bounded
        oversize = httpx.get(f"{base}/healthz", headers={"x-big": "a" * 17_000})
        assert oversize.status_code == 431
    finally:
        process.terminate()
        output = process.communicate(timeout=20)[0]
        simulators.stop()
    assert set(statuses) <= {200, 402}, output[-2000:]
    assert statuses.count(200) == 10  # 400 credits, 40 each
    shown = runner.invoke(app, ["accounts", "show", "--email", "w@example.com", *data]).output
    assert "balance=0 reserved=0" in shown
    assert len({line for line in output.splitlines() if '"msg":"gateway ready"' in line}) >= 1
    assert key not in output


def _counted(metrics: str, route: str) -> float:
    pattern = re.compile(
        r'^reapi_http_requests_total\{method="GET",route="'
        + re.escape(route)
        + r'",status="200"\} (\S+)$',
        re.M,
    )
    return sum(float(value) for value in pattern.findall(metrics))


@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_metrics_add_up_across_workers(tmp_path):
    """Each worker counts in its own memory; a scrape lands on one worker. In multiprocess mode
    (a private directory under the data dir, emptied at start) every scrape adds all up."""
    stale = tmp_path / "metrics"
    stale.mkdir()
    (stale / "counter_999999.db").write_bytes(b"left by a run before")
    port, metrics_port = free_port(), free_port()
    data = ["--data-dir", str(tmp_path)]
    env = {**os.environ, "REAPI_METRICS_LISTEN": f"127.0.0.1:{metrics_port}"}
    process = subprocess.Popen(
        [_bin("reapi-server"), "serve", "--workers", "2", "--port", str(port), *data],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for(f"{base}/healthz", process)
        sent = 60
        for _ in range(sent):  # a connection each: the kernel spreads them over the workers
            assert httpx.get(f"{base}/readyz", headers={"connection": "close"}).status_code == 200
        scrapes = [httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text for _ in range(6)]
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0]
    assert [_counted(text, "/readyz") for text in scrapes] == [sent] * 6, output[-2000:]
    assert oct((tmp_path / "metrics").stat().st_mode)[-3:] == "700"
    assert not (tmp_path / "metrics" / "counter_999999.db").exists()

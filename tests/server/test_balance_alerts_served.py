"""Two `reapi-server serve` processes on one database, each closing a request's hold at the same
moment that crosses one threshold: one email. Real processes, real sockets, the OpenAI
simulator upstream."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from sqlalchemy import text
from tests.server.live import free_port
from tests.server.served import make_key
from tests.server.test_cli import _bin, _wait_for

from reapi.testing import SIMULATOR_KEY, OpenAISimulator, SimulatorSpec, run_simulators
from reapi_server.alerts.settings import save_thresholds
from reapi_server.db import Database

CREDITS = 10_000


def _set_threshold(data_dir: Path, threshold: int) -> None:
    async def save() -> None:
        db = Database(f"sqlite+aiosqlite:///{data_dir / 'reapi.db'}")
        try:
            async with db.write() as session:
                account = await session.execute(text("SELECT id FROM accounts"))
                await save_thresholds(session, account.scalar_one(), [threshold], now=1.0)
        finally:
            await db.dispose()

    asyncio.run(save())


def test_two_served_processes_mail_one_crossing_once(tmp_path):
    data_dir = tmp_path / "data"
    key = make_key(data_dir, credits=CREDITS)
    # The balance is at the threshold: armed. Any charge crosses it.
    _set_threshold(data_dir, CREDITS)
    sims = run_simulators(
        {"openai": SimulatorSpec(OpenAISimulator(SIMULATOR_KEY, polls_to_complete=1), "/v1")}
    )
    processes: list[subprocess.Popen[str]] = []
    outputs: list[str] = []
    try:
        bases = []
        for _ in range(2):
            port = free_port()
            env = {
                **os.environ,
                "OPENAI_API_KEY": SIMULATOR_KEY,
                "REAPI_PROVIDER_BASE_URLS": f'{{"openai": "{sims.provider_urls["openai"]}"}}',
                "REAPI_METRICS_LISTEN": "off",
            }
            process = subprocess.Popen(
                [_bin("reapi-server"), "serve", "--port", str(port), "--data-dir", str(data_dir)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            processes.append(process)
            bases.append(f"http://127.0.0.1:{port}")
            _wait_for(f"{bases[-1]}/healthz", process)

        def generate(base: str) -> int:
            answer = httpx.post(
                f"{base}/v1/images/generations",
                json={"prompt": "a lighthouse", "model": "gpt-image-2"},
                headers={"authorization": f"Bearer {key}"},
                timeout=30,
            )
            return answer.status_code

        with ThreadPoolExecutor(2) as pool:
            assert list(pool.map(generate, bases)) == [200, 200]
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)  # each writes the crossings it saw before it ends
        for process in processes:
            try:
                outputs.append(process.communicate(timeout=20)[0])
            except subprocess.TimeoutExpired:
                process.kill()
                outputs.append(process.communicate()[0])
        sims.stop()
    # Ended by the signal, as `serve` does once it has drained (not a crash, not a traceback).
    assert [process.returncode for process in processes] == [-signal.SIGTERM] * 2, outputs
    assert "Traceback" not in "".join(outputs)
    with sqlite3.connect(data_dir / "reapi.db") as connection:
        mails = connection.execute(
            "SELECT count(*) FROM outbox_messages WHERE template = 'balance_low'"
        ).fetchone()[0]
        armed, balance = connection.execute(
            "SELECT armed, balance FROM balance_alerts JOIN accounts"
            " ON accounts.id = balance_alerts.account_id"
        ).fetchone()
    assert balance < CREDITS and not armed
    assert mails == 1

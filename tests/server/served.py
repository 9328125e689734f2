"""`reapi-server serve` as a real process on loopback, with an account and a key made through
the CLI first; what the process wrote on stdout and stderr is kept for the assertions."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.server.live import free_port
from tests.server.test_cli import _bin, _wait_for
from typer.testing import CliRunner

from reapi_server.cli import app

KEY_LINE = re.compile(r"REAPI_API_KEY=(rk_live_\S+)")


@dataclass
class ServedGateway:
    base_url: str
    port: int
    key: str
    process: subprocess.Popen[str]
    #: Filled in once the process has exited (stdout and stderr together).
    output: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.output)


def make_key(data_dir: Path, credits: int = 1000) -> str:
    runner = CliRunner()
    data = ["--data-dir", str(data_dir)]
    created = runner.invoke(
        app, ["accounts", "create", "--email", "p@example.com", "--credits", str(credits), *data]
    )
    assert created.exit_code == 0, created.output
    issued = runner.invoke(app, ["keys", "create", "--email", "p@example.com", *data])
    match = KEY_LINE.search(issued.output)
    assert match, issued.output
    return match.group(1)


@contextmanager
def served_gateway(
    data_dir: Path, *args: str, env: dict[str, str] | None = None, port: int | None = None
) -> Iterator[ServedGateway]:
    """The gateway process; on leaving, SIGTERM and wait, then `output` holds what it wrote."""
    key = make_key(data_dir)
    port = port or free_port()
    process = subprocess.Popen(
        [_bin("reapi-server"), "serve", "--port", str(port), "--data-dir", str(data_dir), *args],
        # no metrics listener unless asked for: 9464 is everyone's default
        env={
            **os.environ,
            "OPENAI_API_KEY": "sk-not-used",
            "REAPI_METRICS_LISTEN": "off",
            **(env or {}),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    served = ServedGateway(f"http://127.0.0.1:{port}", port, key, process)
    try:
        _wait_for(f"{served.base_url}/healthz", process)
        yield served
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            served.output.append(process.communicate(timeout=20)[0])
        except subprocess.TimeoutExpired:
            process.kill()
            served.output.append(process.communicate()[0])

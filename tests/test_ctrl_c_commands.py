"""Ctrl-C ends `reapi` and `reapi-server` at once with exit code 130 and one line, whatever
stage it comes at: while the command line is still being imported (most of a second), and in
the middle of a command (which typer ended with 130 and no word). No traceback, and no file
half-written under `-o`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reapi.testing import Fault, OpenAISimulator, SimServer

#: The installed command, with Ctrl-C's own handler even where the test runs with SIGINT
#: ignored (a CI job in the background: the child would inherit that). "imported" on stdout
#: once the entry module is: Ctrl-C after it lands in the command line's own imports.
ENTRY = (
    "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv[0] = {name!r}; from {module} import main; print('imported', flush=True); main()"
)


def started(module: str, name: str, *args: str, env: dict[str, str] | None = None):
    return subprocess.Popen(
        [sys.executable, "-c", ENTRY.format(module=module, name=name), *args],
        env={**os.environ, "REAPI_METRICS_LISTEN": "off", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def interrupted(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGINT)
    started = time.monotonic()
    _, stderr = process.communicate(timeout=30)
    assert time.monotonic() - started < 5, "Ctrl-C did not end it at once"
    assert "Traceback" not in stderr, stderr
    assert process.returncode == 130, stderr
    return stderr


@pytest.mark.parametrize(
    ("module", "name"), [("reapi._entry", "reapi"), ("reapi_server._entry", "reapi-server")]
)
def test_ctrl_c_while_the_command_line_is_imported(module, name):
    process = started(module, name, "--help")
    assert process.stdout.readline() == "imported\n"
    time.sleep(0.1)  # into the imports (0.8 s for `reapi`'s, 1.6 s for the gateway's)
    assert interrupted(process) == "interrupted\n"


def test_ctrl_c_in_the_middle_of_a_command(tmp_path: Path):
    """`reapi image ... -o` while the provider has not answered: one line, no file."""
    with SimServer(OpenAISimulator("sk-sim")) as server:
        server.faults.set(Fault.HANG)
        process = started(
            "reapi._entry", "reapi",
            "image", "a lighthouse", "--model", "gpt-image-2", "-o", str(tmp_path / "out.png"),
            "--provider-url", f"openai={server.base_url}/v1",
            env={"OPENAI_API_KEY": "sk-sim"},
        )  # fmt: skip
        for _ in range(500):  # until the request hangs upstream
            if server.hanging:
                break
            time.sleep(0.02)
        assert server.hanging
        stderr = interrupted(process)
    assert stderr.splitlines()[-1] == "interrupted"
    assert list(tmp_path.iterdir()) == []

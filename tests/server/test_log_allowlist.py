"""Log records from other libraries pass an allowlist (logger, level, constant message) before
the gateway writes them; everything else is dropped or reduced to its logger and level. Each
test reads the real stderr of a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import httpx
from tests.server.live import free_port
from tests.server.served import make_key, served_gateway
from tests.server.test_cli import _wait_for


def _records(output: str) -> list[dict[str, object]]:
    """The JSON lines of a gateway's output (and fails on any line that is not one)."""
    records = []
    for line in output.splitlines():
        if line.strip():
            try:
                records.append(json.loads(line))
            except ValueError:
                raise AssertionError(f"a line bypassed the formatter: {line!r}") from None
    return records


def test_the_allowlist_reduces_what_it_does_not_know(tmp_path):
    script = textwrap.dedent(
        """
        import logging
        from reapi_server.observability.logging import configure_logging

        configure_logging("DEBUG", json_lines=True)
        logging.getLogger("uvicorn.error").info("Started server process [%d]", 4242)
        logging.getLogger("uvicorn.error").info("%s - %s", "MARKER-a", "MARKER-b")
        logging.getLogger("some.library").warning("bad byte %r in %s", 7, "MARKER-c")
        logging.getLogger("some.library").debug("header: %s", "MARKER-d")
        logging.getLogger().error("MARKER-e")
        try:
            raise ValueError("MARKER-f")
        except ValueError:
            logging.getLogger("other").exception("failed with %s", "MARKER-g")
        logging.getLogger("reapi_server.x").info("ours", extra={"code": "c1"})
        logging.getLogger("uvicorn.error").error(OSError(98, "Address in use MARKER-h"))
        """
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "MARKER" not in run.stderr + run.stdout, run.stderr
    records = _records(run.stderr)
    by_logger = {(r["logger"], r["level"]): r for r in records}
    assert by_logger["uvicorn.error", "info"]["msg"] == "Started server process [4242]"
    assert ("some.library", "warning") in by_logger  # reduced, not lost
    assert ("some.library", "debug") not in by_logger  # dropped
    assert ("root", "error") in by_logger
    assert by_logger["other", "error"].get("exc_type") is None
    assert by_logger["reapi_server.x", "info"] == {
        **by_logger["reapi_server.x", "info"],
        "code": "c1",
    }
    assert by_logger["uvicorn.error", "error"]["msg"] == "socket error EADDRINUSE"
    withheld = [
        r for r in records if r["logger"] != "uvicorn.error" and r["logger"] != "reapi_server.x"
    ]
    assert len({r["msg"] for r in withheld}) == 1  # one constant text
    # uvicorn's own request line ("<client> - <request line> <status>") is not on the list
    assert [r["msg"] for r in records if r["logger"] == "uvicorn.error"] == [
        "Started server process [4242]",
        "socket error EADDRINUSE",
    ]


def test_a_malformed_multipart_body_is_not_written_by_python_multipart(tmp_path):
    """python-multipart warns with a byte of the body ("Found invalid character 64 in header at
    N"); without a handler on the root logger it went to stderr raw, through logging.lastResort."""
    with served_gateway(tmp_path, env={"REAPI_LOG_LEVEL": "INFO"}) as gateway:
        body = (
            b"--b0undary\r\n"
            b'Content-Disposition: form-data; name="prompt"\r\n'
            b"MARKER@multipart: x\r\n\r\n"
            b"a prompt\r\n--b0undary--\r\n"
        )
        response = httpx.post(
            f"{gateway.base_url}/v1/images/edits",
            content=body,
            headers={
                "authorization": f"Bearer {gateway.key}",
                "content-type": "multipart/form-data; boundary=b0undary",
            },
        )
        assert response.status_code == 400, response.text
    output = gateway.text
    assert "invalid character" not in output and "MARKER" not in output, output[-2000:]
    records = _records(output)
    assert any(r["logger"] == "python_multipart.multipart" for r in records)


_ASYNCIO_GATEWAY = """
import asyncio
import functools
import gc
import sys

from reapi_server.app import create_app
from reapi_server.config import Settings
from reapi_server.serving import run_server

MARKER = "MARKER-asyncio-0b7e"


def explode(text):
    raise ValueError(text)


async def fails():
    explode(MARKER + "-task")


settings = Settings()
app = create_app(settings, migrate=False)


@app.get("/boom")
async def boom():
    loop = asyncio.get_running_loop()
    loop.call_soon(functools.partial(explode, MARKER + "-callback"))  # "Exception in callback"
    loop.create_task(fails())  # never awaited: "Task exception was never retrieved"
    await asyncio.sleep(0.05)
    gc.collect()
    return {"ok": True}


run_server(settings, app)
"""


def test_asyncio_errors_are_logged_by_type_only(tmp_path):
    make_key(tmp_path)  # migrates the data dir
    port = free_port()
    env = {
        **os.environ,
        "OPENAI_API_KEY": "sk-not-used",
        "REAPI_DATA_DIR": str(tmp_path),
        "REAPI_PORT": str(port),
        "REAPI_LOG_LEVEL": "DEBUG",
        "REAPI_METRICS_LISTEN": "off",
    }
    process = subprocess.Popen(
        [sys.executable, "-c", _ASYNCIO_GATEWAY],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for(f"{base}/healthz", process)
        assert httpx.get(f"{base}/boom").status_code == 200
        time.sleep(0.2)
        assert httpx.get(f"{base}/boom").status_code == 200
    finally:
        process.terminate()
        output = process.communicate(timeout=20)[0]
    assert "MARKER" not in output and "never retrieved" not in output, output[-3000:]
    errors = [r for r in _records(output) if r.get("code") == "ValueError"]
    assert len(errors) >= 2, output[-3000:]  # both errors logged, by type

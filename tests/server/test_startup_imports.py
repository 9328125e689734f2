"""What a gateway process keeps in memory: modules the hot path never needs are imported only
when used (issue 15: idle RSS). Checked in fresh interpreters that start the gateway the way
`reapi-server serve` does: the command line imports itself and migrates (here: finds the
database at the newest schema), then execs an interpreter that builds and serves the app."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
from tests.server.live import free_port
from tests.server.served import served_gateway

from reapi_server.migrate import alembic_config, head_revisions

#: Loaded by sign-in with a provider, a second factor, or a migration that has work to do.
HEAVY = ("alembic", "mako", "authlib", "joserfc", "cryptography")
#: Loaded with the web half (built by its first request), or by the first mail or policy page.
WEB = ("jinja2", "markdown_it", "segno", "pyotp", "argon2", "httpx2")
#: httpx's command-line client, which httpx imports with itself when they are installed.
HTTPX_CLI = ("rich", "pygments")
#: What only the administration commands use: `reapi-server serve` imports the CLI without it.
ADMIN = (
    "reapi_server.admin",
    "reapi_server.accounts.export",
    "reapi_server.billing.operator",
    "reapi_server.email.notices",
    "reapi_server.promo.service",
    "reapi_server.usage.command",
)
#: The SDK's client side (`reapi.ReAPI` and its resources): the gateway uses the engine.
SDK_CLIENT = ("reapi._client", "reapi._raw_clients", "reapi.resources.images", "tenacity")
#: SQLAlchemy's PostgreSQL dialect (with its drivers' dialects): a gateway on SQLite has no use
#: for it (~3 MiB). Loaded by a `postgresql_*` keyword on a model or a module-level import.
POSTGRESQL = ("sqlalchemy.dialects.postgresql",)
#: The command line and its configuration checks: left behind by the exec.
CLI = ("typer", "reapi_server.cli", "reapi_server.config_check")
#: uvicorn's command line and supervisors (`uvicorn_core`): one worker serves without them.
UVICORN_CLI = ("uvicorn.main", "uvicorn.supervisors", "click", "watchfiles", "multiprocessing")
#: pydantic's v1 copy, which FastAPI would import to check that no model is a v1 one: the
#: serving process refuses it (`refuse_pydantic_v1`).
SERVING_ONLY = (*CLI, "pydantic.v1", *UVICORN_CLI)

#: `reapi-server serve` before its exec: the command line, the migration (nothing to do here).
COMMAND_LINE = """
import asyncio
import reapi_server.cli
from reapi_server.config import Settings
from reapi_server.fleet_secret import resolve_for

asyncio.run(resolve_for(Settings(), migrate=True))
"""
#: After it: what `serve_from_environment` builds and imports until it would serve (each of N
#: workers builds `app_for_serving` alike).
SERVING = """
from reapi_server import serving

serve = serving._serve


def run(self, sockets=None):  # uvicorn's Server.run, stopped before it serves
    self.config.load()
    self.started = True


def serve_once(config, metrics_address):
    from uvicorn.server import Server

    Server.run = run
    serve(config, metrics_address)


serving._serve = serve_once
serving.serve_from_environment()
"""


@pytest.mark.parametrize(
    ("script", "also_absent"),
    [(COMMAND_LINE, ()), (SERVING, SERVING_ONLY)],
    ids=["command-line", "serving"],
)
def test_the_gateway_starts_without_the_heavy_modules(
    tmp_path, migrated_template, script, also_absent
):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "reapi.db").write_bytes(migrated_template.read_bytes())
    script = textwrap.dedent(script) + (
        "import json, sys\n"
        "print(json.dumps(sorted(n for n, m in sys.modules.items() if m is not None)))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("REAPI_")}
    run = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **env,
            "REAPI_METRICS_LISTEN": "off",
            "REAPI_DATA_DIR": str(data_dir),
            "REAPI_PORT": str(free_port()),
        },
    )
    assert run.returncode == 0, run.stderr[-2000:]
    modules = set(json.loads(run.stdout.splitlines()[-1]))
    loaded = {name.split(".")[0] for name in modules}
    assert "reapi_server" in loaded
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))
    assert loaded.isdisjoint(WEB), sorted(loaded & set(WEB))
    assert loaded.isdisjoint(HTTPX_CLI), sorted(loaded & set(HTTPX_CLI))
    assert "httpx" in loaded
    assert modules.isdisjoint(SDK_CLIENT), sorted(modules & set(SDK_CLIENT))
    assert modules.isdisjoint(ADMIN), sorted(modules & set(ADMIN))
    assert modules.isdisjoint(POSTGRESQL), sorted(modules & set(POSTGRESQL))
    web_pages = sorted(
        m
        for m in modules
        if m.startswith(("reapi_server.web.", "reapi_server.identity.service"))
        and m != "reapi_server.web.mount"
    )
    assert not web_pages, web_pages
    assert modules.isdisjoint(also_absent), sorted(modules & set(also_absent))


def test_the_newest_revisions_are_read_as_alembic_reads_them():
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert head_revisions() == frozenset(heads)


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="reads /proc")
def test_serve_execs_a_fresh_interpreter_with_the_command_lines_settings(tmp_path):
    """The process that serves is the one `reapi-server serve` started (same pid: signals and
    supervisors see no change), running only the gateway; the data dir and port given on the
    command line are the ones it serves (the key made in that data dir is accepted)."""
    with served_gateway(tmp_path) as gateway:
        cmdline = Path(f"/proc/{gateway.process.pid}/cmdline").read_bytes().split(b"\0")
        assert b"reapi-server" not in b" ".join(cmdline)
        assert any(b"serve_from_environment()" in part for part in cmdline), cmdline
        answer = httpx.get(
            f"{gateway.base_url}/v1/credits",
            headers={"Authorization": f"Bearer {gateway.key}"},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["balance"] == 1000
        # What FastAPI builds on first use, in a process that refuses pydantic.v1: the web
        # half (its routes registered by this request) and the OpenAPI document.
        for path, marker in (("/", "<html"), ("/signup", "<form"), ("/openapi.json", '"paths"')):
            page = httpx.get(f"{gateway.base_url}{path}", timeout=30)
            assert page.status_code == 200, (path, page.text[:500])
            assert marker in page.text, (path, page.text[:500])


def test_uvicorn_without_its_command_line_loads_it_on_first_use():
    """`import_uvicorn_core` leaves uvicorn's `__init__` for later, not out: `uvicorn.run`,
    `uvicorn.main` and the version are there on first use, with the same `Config` class."""
    script = textwrap.dedent(
        """
        import sys
        from reapi_server.uvicorn_core import import_uvicorn_core

        import_uvicorn_core()
        import uvicorn
        from uvicorn.lifespan.on import LifespanOn
        assert "click" not in sys.modules and "uvicorn.main" not in sys.modules
        config_class = uvicorn.Config
        assert callable(uvicorn.run) and uvicorn.__version__
        assert "click" in sys.modules and uvicorn.Config is config_class
        assert uvicorn.Server is sys.modules["uvicorn.server"].Server
        print("ok")
        """
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "ok"

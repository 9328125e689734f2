"""Both command lines print a crash's traceback without local variables: typer before 0.23
showed locals by default, which printed the prompt of `reapi image` and the key given to
`reapi-server keys revoke`. Each crash here runs with typer's default switched back to
showing locals, so only the apps' own explicit setting keeps the values out."""

import os
import subprocess
import sys

import pytest

from reapi.cli import app as sdk_app
from reapi_server.cli import app as server_app

_CRASH = """
import sys
import typer

typer.Typer.__init__.__kwdefaults__["pretty_exceptions_show_locals"] = True  # typer < 0.23
from {module} import app
{bug}

sys.argv = {argv!r}
app()
"""
_BUG = """
import reapi_server.admin


async def revoke(settings, key):
    raise RuntimeError("a bug")


reapi_server.admin.revoke = revoke
"""


def test_both_apps_hide_locals_explicitly():
    assert sdk_app.pretty_exceptions_show_locals is False
    assert server_app.pretty_exceptions_show_locals is False


@pytest.mark.parametrize(
    ("module", "argv", "marker"),
    [
        (
            "reapi.cli",
            "reapi image MARKER-cli-prompt-5e1f --model m -o out.png "
            "--catalog /nonexistent/catalog.toml".split(),
            "MARKER-cli-prompt-5e1f",
        ),
        (
            "reapi_server.cli",
            # a bug, raised from inside the command (a database that cannot be used is one
            # line, not a crash: tests/server/test_database_problems.py)
            "reapi-server keys revoke rk_live_MARKERcli7c2d --data-dir data".split(),
            "MARKERcli7c2d",
        ),
    ],
)
def test_a_crash_prints_no_locals(tmp_path, module, argv, marker):
    script = _CRASH.format(
        module=module, argv=argv, bug=_BUG if module == "reapi_server.cli" else ""
    )
    crashed = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert crashed.returncode != 0
    assert "Traceback" in crashed.stderr  # typer's (rich) traceback was printed ...
    assert marker not in crashed.stderr + crashed.stdout  # ... without the values


@pytest.mark.parametrize("command", [["migrate"], ["serve"], ["keys", "revoke", "rk_live_x"]])
def test_a_database_file_that_cannot_be_opened_is_one_line(tmp_path, command):
    """SQLite's `unable to open database file` came as a traceback (from `migrate` and the
    administration commands) or without the path (`serve`): one line, the path and the cause."""
    argv = ["reapi-server", *command, "--database-url", "sqlite+aiosqlite:////nonexistent/x.db"]
    script = _CRASH.format(module="reapi_server.cli", argv=argv, bug="")
    env = {**os.environ, "REAPI_METRICS_LISTEN": "off"}
    ran = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert ran.returncode == 1
    assert "Traceback" not in ran.stderr
    assert ran.stderr.strip().splitlines() == [
        "error: database: cannot create /nonexistent/x.db: the directory /nonexistent does not"
        " exist"
    ]

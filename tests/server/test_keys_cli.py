"""`reapi-server keys create` with limit flags, `keys set-limits`, `keys list` showing limits,
`keys create --management`: refusals are one line and exit status 1."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from reapi_server.cli import app

runner = CliRunner()


@pytest.fixture
def data(tmp_path) -> list[str]:
    data = ["--data-dir", str(tmp_path / "d")]
    created = runner.invoke(app, ["accounts", "create", "--email", "ops@example.com", *data])
    assert created.exit_code == 0, created.output
    return data


def cli(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def refused(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    return result.output


def test_create_with_limits_then_change_them(data):
    output = cli(
        "keys", "create", "--email", "ops@example.com", "--name", "ci",
        "--spend-limit", "500", "--period", "weekly", "--models", "gpt-image-2,veo-3.1",
        "--expires", "2099-01-01", "--rpm", "30", "--max-videos", "2", *data,
    )  # fmt: skip
    key_id = re.search(r"key id: (key_\w+)", output).group(1)
    assert re.search(r"REAPI_API_KEY=rk_live_\S+", output)
    listed = cli("keys", "list", "--email", "ops@example.com", *data)
    line = next(line for line in listed.splitlines() if key_id in line)
    for part in (
        "spend 0/500 weekly",
        "models gpt-image-2,veo-3.1",
        "expires 2099-01-01 00:00 UTC",
        "rpm 30",
        "videos 2",
    ):
        assert part in line, (part, line)

    changed = cli(
        "keys", "set-limits", key_id, "--spend-limit", "none", "--models", "all",
        "--rpm", "60", *data,
    )  # fmt: skip
    assert key_id in changed
    line = next(
        line
        for line in cli("keys", "list", "--email", "ops@example.com", *data).splitlines()
        if key_id in line
    )
    assert "spend 0 weekly" in line and "models all" in line and "rpm 60" in line
    assert "expires 2099-01-01" in line and "videos 2" in line  # untouched

    cli("keys", "set-limits", key_id, "--expires", "never", "--period", "daily", *data)
    line = next(
        line
        for line in cli("keys", "list", "--email", "ops@example.com", *data).splitlines()
        if key_id in line
    )
    assert "expires" not in line and "daily" in line


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--period", "hourly"], "daily, weekly, monthly or never"),
        (["--models", "nope"], "No such model on this gateway: nope"),
        (["--expires", "2001-01-01"], "in the future"),
        (["--expires", "next tuesday"], "YYYY-MM-DD"),
        (["--spend-limit", "0"], "between 1 and"),
        (["--spend-limit", "lots"], "a whole number"),
        (["--rpm", "-1"], "between 1 and"),
    ],
)
def test_limits_are_checked(data, flags, message):
    output = refused("keys", "create", "--email", "ops@example.com", *flags, *data)
    assert message in output
    assert "key id" not in output and "rk_live_" not in output


def test_set_limits_of_an_unknown_key(data):
    assert "no such key" in refused("keys", "set-limits", "key_nope", "--rpm", "5", *data)


def test_management_keys(data):
    output = cli("keys", "create", "--email", "ops@example.com", "--management", *data)
    assert re.search(r"REAPI_MANAGEMENT_KEY=rk_mgmt_\S+", output)
    key_id = re.search(r"key id: (key_\w+)", output).group(1)
    line = next(
        line
        for line in cli("keys", "list", "--email", "ops@example.com", *data).splitlines()
        if key_id in line
    )
    assert "management" in line and "rk_mgmt_..." in line
    assert "no limits" in refused(
        "keys", "create", "--email", "ops@example.com", "--management", "--rpm", "5", *data
    )
    assert "no limits" in refused("keys", "set-limits", key_id, "--rpm", "5", *data)

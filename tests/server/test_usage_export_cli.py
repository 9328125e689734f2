"""`reapi-server usage export`: an account's usage rows as CSV (the dashboard's columns), for a
range of days in a time zone, to a private file or to stdout."""

from __future__ import annotations

import asyncio
import csv
import io
import stat

from tests.server.test_cli import cli, runner
from tests.web.dashboard import ts, usage_row

from reapi_server.accounts.repository import find_owned_by_email
from reapi_server.cli import app
from reapi_server.db import Database
from reapi_server.usage.repository import insert


def seed(data_dir, email: str, stamps: list[str]) -> list[str]:
    async def run() -> list[str]:
        db = Database(f"sqlite+aiosqlite:///{data_dir / 'reapi.db'}")
        try:
            async with db.write() as session:
                account = await find_owned_by_email(session, email)
                rows = [usage_row(account.id, ts(at), credit_cost=i) for i, at in enumerate(stamps)]
                for row in rows:
                    await insert(session, row)
            return [row.id for row in rows]
        finally:
            await db.dispose()

    return asyncio.run(run())


def test_usage_export_writes_the_range_as_csv(tmp_path):
    data = ["--data-dir", str(tmp_path / "d")]
    cli("accounts", "create", "--email", "ops@example.com", *data)
    cli("accounts", "create", "--email", "other@example.com", *data)
    ids = seed(
        tmp_path / "d",
        "ops@example.com",
        [
            "2027-01-09T23:59:59",
            "2027-01-10T00:00:00",
            "2027-01-12T23:59:59",
            "2027-01-13T00:00:00",
        ],
    )
    seed(tmp_path / "d", "other@example.com", ["2027-01-11T12:00:00"])
    out = tmp_path / "usage.csv"
    said = cli(
        "usage",
        "export",
        "--email",
        "OPS@example.com",
        "--from",
        "2027-01-10",
        "--to",
        "2027-01-12",
        "--output",
        str(out),
        *data,
    )
    assert "2 usage rows" in said
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    lines = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [line["request_id"] for line in lines] == [ids[2], ids[1]]  # newest first
    assert lines[0]["time"] == "2027-01-12T23:59:59+00:00"
    assert set(lines[0]) >= {"key_id", "model", "endpoint", "credit_cost", "status", "error_code"}

    # In Tokyo (UTC+9), the 10th to the 12th starts and ends nine hours earlier.
    tokyo = cli(
        "usage",
        "export",
        "--email",
        "ops@example.com",
        "--from",
        "2027-01-10",
        "--to",
        "2027-01-12",
        "--time-zone",
        "Asia/Tokyo",
        *data,
    )
    stdout_lines = list(csv.DictReader(io.StringIO(tokyo)))
    assert [line["request_id"] for line in stdout_lines] == [ids[1], ids[0]]
    assert stdout_lines[0]["time"] == "2027-01-10T09:00:00+09:00"


def test_usage_export_refuses_what_it_cannot_do(tmp_path):
    data = ["--data-dir", str(tmp_path / "d")]
    cli("accounts", "create", "--email", "ops@example.com", *data)
    for args, message in [
        (["--email", "nobody@example.com"], "no account with this email"),
        (["--email", "ops@example.com", "--from", "10/01/2027"], "YYYY-MM-DD"),
        (["--email", "ops@example.com", "--time-zone", "Mars/Base"], "time zone"),
        (["--email", "ops@example.com", "--from", "2027-02-01", "--to", "2027-01-01"], "after"),
    ]:
        result = runner.invoke(app, ["usage", "export", *args, *data])
        assert result.exit_code == 1, result.output
        assert message in result.output and "Traceback" not in result.output

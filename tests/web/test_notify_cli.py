"""`reapi-server notify policy-change | newsletter | unsubscribe`: the operator's commands, run as
a person runs them (a process on the data dir or a PostgreSQL URL), killed midway and run again."""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, insert, select
from typer.testing import CliRunner

from reapi_server.cli import app
from reapi_server.config import Settings
from reapi_server.db import Database
from reapi_server.email.files import FileSender
from reapi_server.email.outbox import OutboxPolicy, deliver_due
from reapi_server.models import NoticeDelivery, OutboxMessage, User

runner = CliRunner()


def cli(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def _future(days: int = 30) -> str:
    return (datetime.now(UTC).date() + timedelta(days=days)).isoformat()


def _notice(tmp_path: Path, text: str = "We keep usage records **60 days** from now on.") -> str:
    path = tmp_path / "notice.md"
    path.write_text(text, encoding="utf-8")
    return str(path)


def _people(url: str, count: int, **fields: object) -> None:
    async def add() -> None:
        db = Database(url)
        try:
            async with db.write() as session:
                rows = [
                    {
                        "id": f"user_{number:024x}",
                        "email": f"person{number}@example.com",
                        "created_at": 1.0,
                        "email_verified_at": 1.0,
                        "role": "user",
                        **fields,
                    }
                    for number in range(count)
                ]
                await session.execute(insert(User), rows)
        finally:
            await db.dispose()

    asyncio.run(add())


def _count(url: str, model: type, *where: object) -> int:
    async def count() -> int:
        db = Database(url)
        try:
            async with db.read() as session:
                found = await session.scalar(select(func.count()).select_from(model).where(*where))
                return int(found or 0)
        finally:
            await db.dispose()

    return asyncio.run(count())


def _place(tmp_path: Path, database_url: str | None) -> tuple[list[str], str]:
    """The CLI's location flags, and the database URL they name (migrated)."""
    flags = ["--data-dir", str(tmp_path / "data")]
    if database_url is not None:
        flags += ["--database-url", database_url]
    cli("migrate", *flags)
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url)
    return flags, settings.resolved_database_url


def test_a_date_in_the_past_or_not_a_date_is_refused(tmp_path):
    flags, url = _place(tmp_path, None)
    _people(url, 3)
    yesterday = _future(-1)
    output = cli(
        "notify", "policy-change", "--effective", yesterday, "--file", _notice(tmp_path), *flags,
        code=1,
    )  # fmt: skip
    assert "is in the past" in output
    output = cli(
        "notify", "policy-change", "--effective", "next week", "--file", _notice(tmp_path),
        *flags, code=1,
    )  # fmt: skip
    assert "YYYY-MM-DD" in output
    assert _count(url, OutboxMessage) == 0 and _count(url, NoticeDelivery) == 0


def test_a_newsletter_from_the_command_line(tmp_path):
    flags, url = _place(tmp_path, None)
    _people(url, 3, newsletter=True)
    issue = _notice(tmp_path, "# December\n\nA new [video model](https://reapi.test/models).")
    output = cli("notify", "newsletter", "--subject", "reapi news", "--file", issue, *flags)
    assert "queued for 3 of 3 users" in output and "3 queued by this run, 3 in all" in output
    output = cli("notify", "newsletter", "--subject", "reapi news", "--file", issue, *flags)
    assert "0 queued by this run, 3 in all" in output  # the same issue: nobody twice

    async def deliver() -> None:
        db = Database(url)
        try:
            sender = FileSender(tmp_path / "mail", sender="reapi <no-reply@reapi.test>")
            await deliver_due(db, sender, lambda: 4e9, OutboxPolicy())
        finally:
            await db.dispose()

    asyncio.run(deliver())
    files = sorted((tmp_path / "mail").glob("*.eml"))
    assert len(files) == 3
    mail = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert mail["Subject"] == "reapi news"
    assert mail["List-Unsubscribe"].startswith("<http://127.0.0.1:8000/unsubscribe/user_")
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert 'href="https://reapi.test/models"' in mail.get_body(("html",)).get_content()

    output = cli("notify", "unsubscribe", "--email", "person1@example.com", *flags)
    assert "will no longer receive the newsletter" in output
    assert "was not subscribed" in cli(
        "notify", "unsubscribe", "--email", "person1@example.com", *flags
    )
    assert _count(url, User, User.newsletter.is_(True)) == 2


def test_no_newsletter_command_when_the_operator_turned_it_off(tmp_path, monkeypatch):
    flags, url = _place(tmp_path, None)
    _people(url, 2, newsletter=True)
    monkeypatch.setenv("REAPI_NEWSLETTER_DEFAULT", "off")
    output = cli(
        "notify", "newsletter", "--subject", "S", "--file", _notice(tmp_path), *flags, code=1
    )
    assert "newsletter_default = off" in output


def _run_notice(flags: list[str], notice: str, *, batch: int) -> subprocess.Popen[str]:
    command = [
        sys.executable, "-m", "reapi_server.cli", "notify", "policy-change",
        "--effective", _future(), "--file", notice, "--batch-size", str(batch), *flags,
    ]  # fmt: skip
    env = {**os.environ, "REAPI_LOG_LEVEL": "WARNING"}
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def test_killed_midway_then_run_again_everyone_gets_it_once(tmp_path, database_url):
    """SIGKILL as soon as the first batch is reported: no clean-up runs, an open transaction
    is left to the database to roll back. The second run finishes, nobody twice."""
    flags, url = _place(tmp_path, database_url)
    people = 1500
    _people(url, people)
    notice = _notice(tmp_path)
    first = _run_notice(flags, notice, batch=10)
    assert first.stdout is not None
    line = first.stdout.readline()
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    assert "queued for 10 of 1500 users" in line, (
        line,
        first.stderr.read() if first.stderr else "",
    )
    done = _count(url, NoticeDelivery)
    assert 10 <= done < people
    # Each delivery row has its message and no message lacks its row (one transaction each).
    assert _count(url, OutboxMessage, OutboxMessage.template == "policy_change") == done

    second = _run_notice(flags, notice, batch=200)
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert f"{people - done} queued by this run, {people} in all" in out
    assert _count(url, NoticeDelivery) == people
    assert _count(url, OutboxMessage, OutboxMessage.template == "policy_change") == people
    addresses = _count(url, User, User.email.in_(select(OutboxMessage.to_address).distinct()))
    assert addresses == people

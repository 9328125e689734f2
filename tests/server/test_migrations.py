"""Migrations build exactly the models' schema, and no table can hold a request body."""

import secrets
import subprocess
import sys

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect
from tests.server.postgres import postgres_server  # noqa: F401  (fixture)

from reapi_server.migrate import upgrade_sync
from reapi_server.models import Base

BODY_LIKE = {"prompt", "body", "content", "input", "user", "mask", "image", "images", "payload"}


def test_migrations_match_models(tmp_path):
    path = tmp_path / "m.db"
    upgrade_sync(f"sqlite+aiosqlite:///{path}")
    upgrade_sync(f"sqlite+aiosqlite:///{path}")  # idempotent
    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []


def test_no_column_can_hold_a_body(tmp_path):
    path = tmp_path / "m.db"
    upgrade_sync(f"sqlite+aiosqlite:///{path}")
    inspector = inspect(create_engine(f"sqlite:///{path}"))
    for table in inspector.get_table_names():
        names = {c["name"] for c in inspector.get_columns(table)}
        assert not names & BODY_LIKE, (table, names & BODY_LIKE)


@pytest.mark.postgres
def test_instances_starting_at_once_migrate_one_at_a_time(postgres_server):  # noqa: F811
    """Fleet instances start together against one new PostgreSQL database: the migrations run
    once, the others wait and find the schema made (processes: Alembic is one per process)."""
    name = f"t_{secrets.token_hex(6)}"
    postgres_server.execute(f"CREATE DATABASE {name}")
    code = (
        "import asyncio, sys\n"
        "from reapi_server.db import Database\n"
        "from reapi_server.migrate import upgrade\n"
        "async def main():\n"
        "    db = Database(sys.argv[1])\n"
        "    try:\n"
        "        await upgrade(db)\n"
        "    finally:\n"
        "        await db.dispose()\n"
        "asyncio.run(main())\n"
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code, postgres_server.url(name)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], outputs

"""Migrations build exactly the models' schema, no table can hold a request body, and data
migrations keep what was there (SQLite and PostgreSQL)."""

import asyncio
import os
import secrets
import subprocess
import sys

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from tests.server.postgres import postgres_server  # noqa: F401  (fixture)

from reapi_server.db import Database
from reapi_server.migrate import (
    SchemaTooNew,
    alembic_config,
    head_revisions,
    serving_revisions,
    upgrade,
    upgrade_sync,
)
from reapi_server.models import MAX_CREDITS, Base

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
        "from reapi_server.observability.logging import configure_logging\n"
        "configure_logging('INFO')\n"
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
    # The one that made the schema says so; those that waited for it found nothing to do.
    said = [line for output in outputs for line in output.splitlines() if "database " in line]
    assert len(said) == 1 and '"msg":"database created"' in said[0], outputs


# -- 0005_identity: accounts become users ------------------------------------------------------


async def _seed_0003(db: Database) -> None:
    async with db.write() as session:
        for index, email in enumerate(["Ops@Example.com", "two@example.com"]):
            account = f"acct_{index}"
            await session.execute(
                text(
                    "INSERT INTO accounts (id, email, balance, reserved, created_at)"
                    " VALUES (:id, :email, 90, 10, :at)"
                ),
                {"id": account, "email": email, "at": 1000.0 + index},
            )
            await session.execute(
                text(
                    "INSERT INTO api_keys (id, account_id, key_hash, last4, name, created_at,"
                    " active_videos) VALUES (:id, :account, :hash, 'abcd', '', 1.0, 0)"
                ),
                {"id": f"key_{index}", "account": account, "hash": secrets.token_hex(32)},
            )
            await session.execute(
                text(
                    "INSERT INTO credit_ledger (account_id, kind, amount, reserved_delta,"
                    " created_at) VALUES (:account, 'grant', 100, 0, 1.0)"
                ),
                {"account": account},
            )


async def _check_0005(db: Database) -> None:
    async with db.read() as session:
        users = (
            await session.execute(
                text(
                    "SELECT users.email, users.password_hash, users.email_verified_at,"
                    " users.created_at, memberships.account_id, memberships.role FROM users"
                    " JOIN memberships ON memberships.user_id = users.id ORDER BY users.email"
                )
            )
        ).all()
        assert [tuple(u) for u in users] == [
            ("ops@example.com", None, None, 1000.0, "acct_0", "owner"),
            ("two@example.com", None, None, 1001.0, "acct_1", "owner"),
        ]
        assert (await session.execute(text("SELECT count(*) FROM api_keys"))).scalar() == 2
        assert (await session.execute(text("SELECT count(*) FROM credit_ledger"))).scalar() == 2
        balances = (await session.execute(text("SELECT balance, reserved FROM accounts"))).all()
        assert [tuple(b) for b in balances] == [(90, 10), (90, 10)]
    await _check_wallet_bounds(db)


async def _check_wallet_bounds(db: Database, *, with_email: bool = False) -> None:
    """The wallet keeps refusing an overdraft and credit past the bound after its rebuild (on
    SQLite, the bound is 0004_money's triggers, which a rebuild of the table drops)."""
    email, address = ("email, ", "'x@example.com', ") if with_email else ("", "")
    for statement in (
        "UPDATE accounts SET balance = -1",
        f"UPDATE accounts SET balance = {MAX_CREDITS + 1}",
        f"UPDATE accounts SET balance = {MAX_CREDITS}, reserved = 1",
        f"INSERT INTO accounts (id, {email}balance, reserved, created_at)"
        f" VALUES ('acct_x', {address}{MAX_CREDITS + 1}, 0, 1.0)",
    ):
        with pytest.raises(IntegrityError):
            async with db.write() as session:
                await session.execute(text(statement))


async def _check_downgrade(url: str, db: Database) -> None:
    await db.dispose()
    await asyncio.to_thread(command.downgrade, alembic_config(url), "0004_money")
    async with db.read() as session:
        emails = (await session.execute(text("SELECT id, email FROM accounts ORDER BY id"))).all()
    assert [tuple(e) for e in emails] == [
        ("acct_0", "ops@example.com"),
        ("acct_1", "two@example.com"),
    ]
    await _check_wallet_bounds(db, with_email=True)
    await db.dispose()
    await asyncio.to_thread(command.downgrade, alembic_config(url), "0003")


async def test_accounts_become_users_on_sqlite(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    await asyncio.to_thread(command.upgrade, alembic_config(url), "0003")
    db = Database(url)
    try:
        await _seed_0003(db)
        await upgrade(db)  # the server's own path: foreign keys enforced on its connections
        inspector = inspect(create_engine(f"sqlite:///{tmp_path / 'm.db'}"))
        assert "email" not in {c["name"] for c in inspector.get_columns("accounts")}
        await _check_0005(db)
        await _check_downgrade(url, db)
    finally:
        await db.dispose()


@pytest.mark.postgres
async def test_accounts_become_users_on_postgres(postgres_server):  # noqa: F811
    name = f"m_{secrets.token_hex(6)}"
    await asyncio.to_thread(postgres_server.execute, f"CREATE DATABASE {name}")
    url = postgres_server.url(name)
    await asyncio.to_thread(command.upgrade, alembic_config(url), "0003")
    db = Database(url)
    try:
        await _seed_0003(db)
        await upgrade(db)
        await _check_0005(db)
        await _check_downgrade(url, db)
    finally:
        await db.dispose()


def test_partial_indexes_are_partial_on_both_databases():
    """The models declare each partial index's condition once (`partial_index`): PostgreSQL's
    CREATE INDEX carries it as SQLite's does, as the migrations made them."""
    from sqlalchemy.dialects import postgresql, sqlite
    from sqlalchemy.schema import CreateIndex

    partial = {
        index.name: index
        for table in Base.metadata.tables.values()
        for index in table.indexes
        if index.dialect_options["sqlite"]["where"] is not None
    }
    assert set(partial) >= {
        "uq_credit_ledger_source_id",
        "ix_credit_holds_held_expires",
        "uq_top_ups_one_auto_in_flight",
    }
    for index in partial.values():
        where = str(index.dialect_options["sqlite"]["where"])
        for dialect in (postgresql.dialect(), sqlite.dialect()):
            ddl = str(CreateIndex(index).compile(dialect=dialect))
            assert ddl.endswith(f" WHERE {where}"), (dialect.name, ddl)


# -- 0024_deleted_top_ups: tombstones of a deleted account's payable top-ups -------------------


async def _check_0024_round_trip(url: str) -> None:
    await asyncio.to_thread(command.upgrade, alembic_config(url), "0024_deleted_top_ups")
    db = Database(url)
    try:
        async with db.write() as session:
            await session.execute(
                text(
                    "INSERT INTO deleted_top_ups (id, stripe_checkout_session_id,"
                    " stripe_payment_intent_id, deleted_at) VALUES ('tu_1', 'cs_1', NULL, 5.0)"
                )
            )
    finally:
        await db.dispose()
    await asyncio.to_thread(command.downgrade, alembic_config(url), "0023_rollup_finished_rows")
    db = Database(url)
    try:
        with pytest.raises(DBAPIError):
            async with db.read() as session:
                await session.execute(text("SELECT count(*) FROM deleted_top_ups"))
    finally:
        await db.dispose()
    await asyncio.to_thread(command.upgrade, alembic_config(url), "head")


async def test_0024_adds_the_tombstones_and_its_downgrade_drops_them(tmp_path):
    await _check_0024_round_trip(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")


@pytest.mark.postgres
async def test_0024_on_postgres(postgres_server):  # noqa: F811
    name = f"m_{secrets.token_hex(6)}"
    await asyncio.to_thread(postgres_server.execute, f"CREATE DATABASE {name}")
    await _check_0024_round_trip(postgres_server.url(name))


# -- 0026_session_browser_names: a session keeps a browser's name, not its User-Agent ---------


async def _sessions_at_0025(url: str, agents: list[str]) -> None:
    """A database at 0025 with a session (`sess_<n>`) for each User-Agent."""
    await asyncio.to_thread(command.upgrade, alembic_config(url), "0025_schema_compatibility")
    db = Database(url)
    try:
        async with db.write() as session:
            await session.execute(
                text(
                    "INSERT INTO users (id, email, created_at, role) VALUES"
                    " ('user_1', 'a@example.com', 1.0, 'user')"
                )
            )
            for n, agent in enumerate(agents):
                await session.execute(
                    text(
                        "INSERT INTO web_sessions (id, token_hash, user_id, created_at,"
                        " last_seen_at, expires_at, client_address, user_agent)"
                        " VALUES (:id, :hash, 'user_1', 1.0, 1.0, 9.0, '', :agent)"
                    ),
                    {"id": f"sess_{n}", "hash": f"{n:064d}", "agent": agent},
                )
    finally:
        await db.dispose()


async def _check_0026_names_the_browsers(url: str) -> None:
    firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0 QZXMK"
    await _sessions_at_0025(url, [firefox, firefox, "", "Chrome on macOS"])
    await asyncio.to_thread(command.upgrade, alembic_config(url), "0026_session_browser_names")
    db = Database(url)
    try:
        async with db.read() as session:
            rows = await session.execute(text("SELECT id, user_agent FROM web_sessions"))
            names = {id_: agent for id_, agent in rows.all()}
    finally:
        await db.dispose()
    assert names == {
        "sess_0": "Firefox on Linux",
        "sess_1": "Firefox on Linux",
        "sess_2": "Unknown browser",
        "sess_3": "Chrome on macOS",  # a name already (upgraded again after a downgrade)
    }
    await asyncio.to_thread(command.upgrade, alembic_config(url), "head")


async def test_0026_keeps_the_browsers_name_only(tmp_path):
    await _check_0026_names_the_browsers(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")


@pytest.mark.postgres
async def test_0026_on_postgres(postgres_server):  # noqa: F811
    name = f"m_{secrets.token_hex(6)}"
    await asyncio.to_thread(postgres_server.execute, f"CREATE DATABASE {name}")
    await _check_0026_names_the_browsers(postgres_server.url(name))


async def test_0026_renames_many_sessions_in_a_few_statements(tmp_path):
    """Many distinct User-Agents (each browser version, each build): the migration reads the
    table once and updates by id in batches, not once per value (a full scan each, as
    `user_agent` has no index)."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    agents = [f"Mozilla/5.0 (X11; Linux x86_64) Firefox/{n}.0" for n in range(600)]
    await _sessions_at_0025(url, agents)
    updates: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("UPDATE WEB_SESSIONS"):
            updates.append(statement)

    event.listen(Engine, "before_cursor_execute", count)
    try:
        await asyncio.to_thread(command.upgrade, alembic_config(url), "0026_session_browser_names")
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    assert len(updates) == 2  # one name, 600 rows: two batches of ids
    db = Database(url)
    try:
        async with db.read() as session:
            rows = await session.execute(text("SELECT DISTINCT user_agent FROM web_sessions"))
            assert rows.scalars().all() == ["Firefox on Linux"]
    finally:
        await db.dispose()


# -- a database a newer version migrated (a rolling upgrade, a roll-back) ----------------------


async def _stamp_as_newer(url: str, *, runs_on_it: bool = True) -> None:
    """What a newer version's migration leaves: a column this version does not know, a revision
    it has no script for, and whether that version declared this one able to run on it."""
    db = Database(url)
    try:
        await upgrade(db)
        async with db.write() as session:
            await session.execute(text("ALTER TABLE accounts ADD COLUMN future_note VARCHAR(40)"))
            await session.execute(text("UPDATE alembic_version SET version_num = '0099_newer'"))
            await session.execute(text("DELETE FROM schema_compatibility"))
            for revision in ["0099_newer", *(head_revisions() if runs_on_it else [])]:
                await session.execute(
                    text("INSERT INTO schema_compatibility VALUES (:r)"), {"r": revision}
                )
    finally:
        await db.dispose()


async def test_a_newer_schema_is_left_alone_and_this_version_runs_on_it(tmp_path):
    """The first instance of a new version migrates the shared database at its start; an
    instance of the previous version that restarts then (a crash, a host's reboot, a roll-back)
    must still start. It failed with Alembic's `Can't locate revision '0099_newer'`."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'reapi.db'}"
    await _stamp_as_newer(url)
    db = Database(url)
    try:
        assert await upgrade(db) == {"0099_newer"}
        async with db.read() as session:
            stamped = await session.execute(text("SELECT version_num FROM alembic_version"))
            assert stamped.scalars().all() == ["0099_newer"]
    finally:
        await db.dispose()


async def test_a_newer_schema_not_declared_compatible_is_refused(tmp_path):
    """A newer version whose migrations do more than expand (a NOT NULL column this version
    would not fill, a table renamed) does not list this version: it must not serve on it (it
    did, from the revision alone), and says what to run instead."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'reapi.db'}"
    await _stamp_as_newer(url, runs_on_it=False)
    db = Database(url)
    try:
        with pytest.raises(SchemaTooNew, match="0099_newer, newer than this version's"):
            await upgrade(db)
        async with db.read() as session:
            stamped = await session.execute(text("SELECT version_num FROM alembic_version"))
            assert stamped.scalars().all() == ["0099_newer"]
    finally:
        await db.dispose()


async def test_a_list_the_newer_version_did_not_write_is_not_trusted(tmp_path):
    """The list names the head that wrote it: one this version wrote, left as it was by a newer
    migration run without it (Alembic by hand), says nothing of the newer schema."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'reapi.db'}"
    await _stamp_as_newer(url)
    db = Database(url)
    try:
        async with db.write() as session:
            await session.execute(
                text("DELETE FROM schema_compatibility WHERE revision = '0099_newer'")
            )
        with pytest.raises(SchemaTooNew):
            await upgrade(db)
    finally:
        await db.dispose()


async def test_migrating_says_which_versions_run_on_the_schema(tmp_path):
    """Each migration declares whether the code before it still runs (`backward_compatible`);
    migrating writes the revisions that may, for an older instance to read."""
    assert serving_revisions() >= {"0025_schema_compatibility", "0024_deleted_top_ups"}
    assert "0023_rollup_finished_rows" not in serving_revisions()  # 0024 declares nothing
    url = f"sqlite+aiosqlite:///{tmp_path / 'reapi.db'}"
    db = Database(url)
    try:
        await upgrade(db)
        async with db.read() as session:
            rows = await session.execute(text("SELECT revision FROM schema_compatibility"))
            assert set(rows.scalars().all()) == serving_revisions()
    finally:
        await db.dispose()


def _migrate_cli(data_dir):
    from tests.server.test_cli import _bin

    env = {k: v for k, v in os.environ.items() if not k.startswith("REAPI_")}
    env["REAPI_DATA_DIR"] = str(data_dir)
    return env, subprocess.run(
        [_bin("reapi-server"), "migrate"], env=env, capture_output=True, text=True, timeout=120
    )


def test_migrate_and_administration_on_a_newer_schema(tmp_path):
    from tests.server.test_cli import _bin

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    asyncio.run(_stamp_as_newer(f"sqlite+aiosqlite:///{data_dir / 'reapi.db'}"))
    env, migrate = _migrate_cli(data_dir)
    assert migrate.returncode == 0, migrate.stderr
    assert "0099_newer, newer than this version: left as it is" in migrate.stdout
    account = subprocess.run(
        [_bin("reapi-server"), "accounts", "create", "--email", "a@example.com"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert account.returncode == 0, account.stderr
    assert "a@example.com" in account.stdout


def test_migrate_refuses_a_newer_schema_in_one_line(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    url = f"sqlite+aiosqlite:///{data_dir / 'reapi.db'}"
    asyncio.run(_stamp_as_newer(url, runs_on_it=False))
    _, migrate = _migrate_cli(data_dir)
    assert migrate.returncode == 1
    assert migrate.stderr.startswith("error: the database's schema is at 0099_newer")
    assert "Traceback" not in migrate.stderr


async def test_an_instance_that_changes_the_schema_says_so_in_one_line(tmp_path, caplog):
    """`serve` migrates at start: an upgrade (or a new database) went by without a word in its
    log (Alembic's own per-step lines did not pass the log allowlist), so an operator could not
    tell from the log whether, or from which revision, it had migrated. One line, revision ids
    only; none when there was nothing to do."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'reapi.db'}"
    head = ",".join(sorted(head_revisions()))
    db = Database(url)
    try:

        def said() -> list[tuple[str, str]]:
            lines = [(r.getMessage(), getattr(r, "code", "")) for r in caplog.records]
            caplog.clear()
            return [(m, c) for m, c in lines if m.startswith("database ")]

        caplog.set_level("INFO", logger="reapi_server")
        await upgrade(db)
        assert said() == [("database created", f"revision={head}")]
        await upgrade(db)
        assert said() == []
        await db.dispose()
        await asyncio.to_thread(command.downgrade, alembic_config(url), "0024_deleted_top_ups")
        db = Database(url)
        await upgrade(db)
        assert said() == [("database migrated", f"from=0024_deleted_top_ups to={head}")]
    finally:
        await db.dispose()


def test_serve_logs_the_migration_it_ran_at_start(tmp_path):
    """The same line in a real `serve`'s JSON log (through the formatter and the allowlist)."""
    import json
    import signal

    from tests.server.live import free_port
    from tests.server.test_cli import _bin, _wait_for

    env = {k: v for k, v in os.environ.items() if not k.startswith("REAPI_")}
    port = free_port()
    env.update(
        REAPI_DATA_DIR=str(tmp_path / "data"), REAPI_METRICS_LISTEN="off", REAPI_PORT=str(port)
    )
    process = subprocess.Popen(
        [_bin("reapi-server"), "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_for(f"http://127.0.0.1:{port}/healthz", process)
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=60)[0]
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    created = [r for r in records if r["msg"] == "database created"]
    assert [r["code"] for r in created] == [f"revision={','.join(sorted(head_revisions()))}"]

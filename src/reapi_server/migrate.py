"""Schema migrations (Alembic), run programmatically: `reapi-server migrate` and at start-up."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection

from .db import Database

__all__ = ["alembic_config", "upgrade", "upgrade_sync"]


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", "reapi_server:migrations")
    if url:
        config.set_main_option("sqlalchemy.url", url)
    return config


def upgrade_sync(url: str) -> None:
    """Bring the database at `url` to the newest schema (outside any event loop)."""
    command.upgrade(alembic_config(url), "head")


#: PostgreSQL advisory lock key held while migrating ("reapi" in ASCII, for recognition).
MIGRATION_LOCK = 0x7265617069


async def _at_head(db: Database) -> bool:
    def current(connection: Connection) -> set[str]:
        return set(MigrationContext.configure(connection).get_current_heads())

    async with db.read() as session:
        connection = await session.connection()
        heads = await connection.run_sync(current)
    return heads == set(ScriptDirectory.from_config(alembic_config()).get_heads())


async def upgrade(db: Database) -> None:
    """Bring `db` to the newest schema (inside an event loop), in one write transaction, so two
    processes never migrate at once: on SQLite it waits for the write lock like any other
    writer; on PostgreSQL for an advisory lock (instances of a fleet start together). On
    SQLite, foreign keys are not enforced while it runs (checked before it commits): a
    migration that rebuilds a table must not cascade into the tables pointing at it. A
    database already at the newest schema is left alone (no write lock taken)."""
    if await _at_head(db):
        return

    def _run(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")

    async with db.write(enforce_foreign_keys=False) as session:
        if db.is_postgres:
            await session.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK}
            )
        connection = await session.connection()
        await connection.run_sync(_run)

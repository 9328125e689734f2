"""Schema migrations (Alembic), run programmatically: `reapi-server migrate` and at start-up.

Alembic is imported only when there is something to migrate: whether a database is at the newest
schema is read without it (`head_revisions` from the migration files, the stamped revision with
one query). Every gateway process checks at start-up, and Alembic with Mako stayed resident after
that check: about 9 MiB of a worker's memory for nothing (issue 15).
"""

from __future__ import annotations

import logging
import re
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from .db import Database

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["alembic_config", "head_revisions", "known_revisions", "upgrade", "upgrade_sync"]

log = logging.getLogger("reapi_server")

_VERSION_TABLE = "alembic_version"
_REVISION = re.compile(r"^revision(?:\s*:[^=]*)?\s*=\s*[\"']([^\"']+)[\"']", re.M)
_DOWN_REVISION = re.compile(r"^down_revision(?:\s*:[^=]*)?\s*=\s*(.+)$", re.M)


@cache
def _scripts() -> tuple[frozenset[str], frozenset[str]]:
    """The revisions of the migration scripts, and those some script follows (read from the
    files without importing Alembic)."""
    revisions: set[str] = set()
    followed: set[str] = set()
    versions = resources.files("reapi_server.migrations").joinpath("versions")
    for script in versions.iterdir():
        if not script.name.endswith(".py"):
            continue
        source = script.read_text(encoding="utf-8")
        revision, down = _REVISION.search(source), _DOWN_REVISION.search(source)
        if revision is None or down is None:
            continue
        revisions.add(revision.group(1))
        followed.update(re.findall(r"[\"']([^\"']+)[\"']", down.group(1)))
    return frozenset(revisions), frozenset(followed)


def head_revisions() -> frozenset[str]:
    """The newest revisions of the migration scripts: those no other script follows (what
    Alembic's `ScriptDirectory.get_heads` says)."""
    revisions, followed = _scripts()
    return revisions - followed


def known_revisions() -> frozenset[str]:
    """Every revision this version has a script for."""
    return _scripts()[0]


def alembic_config(url: str | None = None) -> Config:
    from alembic.config import Config  # only to migrate (see the module's docstring)

    config = Config()
    config.set_main_option("script_location", "reapi_server:migrations")
    if url:
        config.set_main_option("sqlalchemy.url", url)
    return config


def upgrade_sync(url: str) -> None:
    """Bring the database at `url` to the newest schema (outside any event loop)."""
    from alembic import command

    command.upgrade(alembic_config(url), "head")


#: PostgreSQL advisory lock key held while migrating ("reapi" in ASCII, for recognition).
MIGRATION_LOCK = 0x7265617069


def _stamped_revisions(connection: Connection) -> set[str]:
    """The revisions the database is stamped with (none before its first migration)."""
    if not inspect(connection).has_table(_VERSION_TABLE):
        return set()
    rows = connection.execute(text("SELECT version_num FROM alembic_version"))
    return {str(row[0]) for row in rows}


async def _stamped(db: Database) -> set[str]:
    async with db.read() as session:
        connection = await session.connection()
        return await connection.run_sync(_stamped_revisions)


async def upgrade(db: Database) -> frozenset[str]:
    """Bring `db` to the newest schema (inside an event loop), in one write transaction, so two
    processes never migrate at once: on SQLite it waits for the write lock like any other
    writer; on PostgreSQL for an advisory lock (instances of a fleet start together). On
    SQLite, foreign keys are not enforced while it runs (checked before it commits): a
    migration that rebuilds a table must not cascade into the tables pointing at it. A
    database already at the newest schema is left alone (no write lock taken).

    A database a newer version has migrated (stamped with a revision this one has no script
    for) is left alone too, and those revisions returned: migrations only add, so this version
    runs on it. Without that, an instance of the previous version could not restart during a
    rolling upgrade, nor could a deploy be rolled back (Alembic cannot locate the revision)."""
    stamped = await _stamped(db)
    if stamped == head_revisions():
        return frozenset()
    newer = frozenset(stamped - known_revisions())
    if newer:
        log.warning(
            "database schema is newer than this version: not migrating",
            extra={
                "code": f"database={','.join(sorted(newer))} "
                f"this_version={','.join(sorted(head_revisions()))}"
            },
        )
        return newer

    def _run(connection: Connection) -> None:
        from alembic import command

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
    return frozenset()

"""Schema migrations (Alembic), run programmatically: `reapi-server migrate` and at start-up.

Alembic is imported only when there is something to migrate: whether a database is at the newest
schema is read without it (`head_revisions` from the migration files, the stamped revision with
one query). Every gateway process checks at start-up, and Alembic with Mako stayed resident after
that check: about 9 MiB of a worker's memory for nothing (issue 15).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from .config_errors import ConfigError
from .db import Database

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "SchemaTooNew",
    "alembic_config",
    "head_revisions",
    "known_revisions",
    "serving_revisions",
    "upgrade",
    "upgrade_sync",
]

log = logging.getLogger("reapi_server")

_VERSION_TABLE = "alembic_version"
_COMPATIBILITY_TABLE = "schema_compatibility"
_REVISION = re.compile(r"^revision(?:\s*:[^=]*)?\s*=\s*[\"']([^\"']+)[\"']", re.M)
_DOWN_REVISION = re.compile(r"^down_revision(?:\s*:[^=]*)?\s*=\s*(.+)$", re.M)


_COMPATIBLE = re.compile(r"^backward_compatible(?:\s*:[^=]*)?\s*=\s*True\b", re.M)


@dataclass(frozen=True, slots=True)
class _Scripts:
    #: Each revision with those it follows.
    down: dict[str, tuple[str, ...]]
    #: The revisions whose script declares `backward_compatible = True`: expand only, the code
    #: of the revision before runs on the schema it leaves.
    compatible: frozenset[str]


@cache
def _scripts() -> _Scripts:
    """The migration scripts' revisions, read from the files without importing Alembic."""
    down: dict[str, tuple[str, ...]] = {}
    compatible: set[str] = set()
    versions = resources.files("reapi_server.migrations").joinpath("versions")
    for script in versions.iterdir():
        if not script.name.endswith(".py"):
            continue
        source = script.read_text(encoding="utf-8")
        revision, follows = _REVISION.search(source), _DOWN_REVISION.search(source)
        if revision is None or follows is None:
            continue
        down[revision.group(1)] = tuple(re.findall(r"[\"']([^\"']+)[\"']", follows.group(1)))
        if _COMPATIBLE.search(source):
            compatible.add(revision.group(1))
    return _Scripts(down, frozenset(compatible))


def head_revisions() -> frozenset[str]:
    """The newest revisions of the migration scripts: those no other script follows (what
    Alembic's `ScriptDirectory.get_heads` says)."""
    scripts = _scripts()
    followed = {r for downs in scripts.down.values() for r in downs}
    return frozenset(scripts.down) - followed


def known_revisions() -> frozenset[str]:
    """Every revision this version has a script for."""
    return frozenset(_scripts().down)


def serving_revisions() -> frozenset[str]:
    """The revisions whose code runs on the newest schema: the heads, and back from each as
    long as the migrations declare `backward_compatible` (a merge stops the walk)."""
    scripts = _scripts()
    serving: set[str] = set()
    for revision in head_revisions():
        serving.add(revision)
        while revision in scripts.compatible and len(scripts.down[revision]) == 1:
            revision = scripts.down[revision][0]
            serving.add(revision)
    return frozenset(serving)


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


def _stamped_revisions(connection: Connection) -> tuple[set[str], set[str]]:
    """The revisions the database is stamped with (none before its first migration), and those
    its last migration said may run on it (`schema_compatibility`)."""
    tables = inspect(connection)
    if not tables.has_table(_VERSION_TABLE):
        return set(), set()
    rows = connection.execute(text("SELECT version_num FROM alembic_version"))
    stamped = {str(row[0]) for row in rows}
    if not tables.has_table(_COMPATIBILITY_TABLE):
        return stamped, set()
    rows = connection.execute(text("SELECT revision FROM schema_compatibility"))
    return stamped, {str(row[0]) for row in rows}


async def _stamped(db: Database) -> tuple[set[str], set[str]]:
    async with db.read() as session:
        connection = await session.connection()
        return await connection.run_sync(_stamped_revisions)


async def stamped_revisions(db: Database) -> frozenset[str]:
    """The revisions the database is stamped with (none before its first migration)."""
    stamped, _serving = await _stamped(db)
    return frozenset(stamped)


def _say_who_runs(connection: Connection) -> None:
    """Write which revisions' code runs on the schema just migrated to (same transaction)."""
    connection.execute(text("DELETE FROM schema_compatibility"))
    for revision in sorted(serving_revisions()):
        connection.execute(
            text("INSERT INTO schema_compatibility (revision) VALUES (:revision)"),
            {"revision": revision},
        )


class SchemaTooNew(ConfigError):
    """A newer version migrated the database in a way this one may not run on."""


async def upgrade(db: Database) -> frozenset[str]:
    """Bring `db` to the newest schema (inside an event loop), in one write transaction, so two
    processes never migrate at once: on SQLite it waits for the write lock like any other
    writer; on PostgreSQL for an advisory lock (instances of a fleet start together). On
    SQLite, foreign keys are not enforced while it runs (checked before it commits): a
    migration that rebuilds a table must not cascade into the tables pointing at it. A
    database already at the newest schema is left alone (no write lock taken).

    A database a newer version has migrated (stamped with a revision this one has no script
    for) is left alone, and those revisions returned, when that version declared this one's
    revision able to run on it (`schema_compatibility`: its migrations since only expand).
    Then an instance of the previous version can restart during a rolling upgrade, and a
    deploy be rolled back. Otherwise `SchemaTooNew`: serving a schema it does not know (a
    column it does not fill, a table renamed) could fail requests or record them wrongly."""
    stamped, serving = await _stamped(db)
    if stamped == head_revisions():
        return frozenset()
    newer = frozenset(stamped - known_revisions())
    if newer:
        database, ours = ",".join(sorted(newer)), ",".join(sorted(head_revisions()))
        # The list must be the migrating version's (it names its own head), not one left by
        # an older migration and not rewritten since (Alembic run by hand, `upgrade_sync`).
        if not (stamped | head_revisions()) <= serving:
            raise SchemaTooNew(
                f"the database's schema is at {database}, newer than this version's ({ours}),"
                " and the version that migrated it does not declare this one able to run on"
                " it: run that version (or newer), not this one"
            )
        log.warning(
            "database schema is newer than this version: not migrating",
            extra={"code": f"database={database} this_version={ours}"},
        )
        return newer

    def _run(connection: Connection) -> frozenset[str]:
        from alembic import command

        # Read again under the lock: an instance that started beside this one may have
        # migrated while this one waited for it.
        before, _serving = _stamped_revisions(connection)
        if before == head_revisions():
            return frozenset(before)
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        _say_who_runs(connection)
        return frozenset(before)

    async with db.write(enforce_foreign_keys=False) as session:
        if db.is_postgres:
            await session.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK}
            )
        connection = await session.connection()
        before = await connection.run_sync(_run)
    _say_what_changed(before)
    return frozenset()


def _say_what_changed(before: frozenset[str]) -> None:
    """One line for the operator when this process changed the schema (`serve` migrates at
    start): an upgrade should not go by unseen in the log. Revision ids only."""
    after = ",".join(sorted(head_revisions()))
    if before == head_revisions():
        return
    if not before:
        log.info("database created", extra={"code": f"revision={after}"})
    else:
        log.info("database migrated", extra={"code": f"from={','.join(sorted(before))} to={after}"})

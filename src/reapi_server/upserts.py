"""INSERT ... ON CONFLICT in the session's own dialect, importing only that dialect (SQLAlchemy's
PostgreSQL package is ~2 MiB resident that a gateway on SQLite never needs)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite

__all__ = ["conflict_insert"]


def conflict_insert(session: AsyncSession) -> type[postgresql.Insert] | type[sqlite.Insert]:
    """The `Insert` construct (with `on_conflict_do_*`) of the database `session` is bound to."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import Insert as PostgresInsert

        return PostgresInsert
    from sqlalchemy.dialects.sqlite import Insert as SqliteInsert

    return SqliteInsert

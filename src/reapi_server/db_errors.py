"""Which database errors mean "the database is unavailable" — a full disk, a refused or lost
connection, a server shutting down — as opposed to a bug or a conflict between requests.

Those answer `503 database_unavailable` (the client may retry) and make `/readyz` fail for a
while (`Database.seconds_since_unavailable`); anything else stays a 500.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy import exc as sa

__all__ = ["error_causes", "error_name", "is_sqlite_busy", "is_unavailable"]

#: SQLite primary result codes of a database that cannot work right now (locked past the busy
#: timeout, out of memory or disk, read-only, I/O errors, unopenable or damaged files).
_SQLITE_CODES = {
    sqlite3.SQLITE_BUSY,
    sqlite3.SQLITE_LOCKED,
    sqlite3.SQLITE_NOMEM,
    sqlite3.SQLITE_READONLY,
    sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_CORRUPT,
    sqlite3.SQLITE_FULL,
    sqlite3.SQLITE_CANTOPEN,
    sqlite3.SQLITE_PROTOCOL,
    sqlite3.SQLITE_NOTADB,
}
#: PostgreSQL SQLSTATE classes: connection exception, insufficient resources (disk full, out of
#: memory, too many connections), operator intervention (shutdown, cannot connect now), system
#: error (I/O); and a read-only transaction (a standby).
_PG_CLASSES = ("08", "53", "57", "58")
_PG_STATES = {"25006"}


def is_sqlite_busy(error: BaseException) -> bool:
    """SQLite's lock is taken (worth waiting for), whatever form of it: Python gives the
    extended result code (SQLITE_BUSY_SNAPSHOT, SQLITE_BUSY_RECOVERY, ...), whose low byte is
    the primary SQLITE_BUSY or SQLITE_LOCKED. `error` is the driver's or SQLAlchemy's."""
    cause = getattr(error, "orig", error)
    code = getattr(cause, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def error_causes(error: BaseException) -> list[BaseException]:
    """The error, the driver's error it wraps, and what that was raised from."""
    found: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and len(found) < 4:
        found.append(current)
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return found


def is_unavailable(error: BaseException) -> bool:
    if isinstance(error, sa.TimeoutError | sa.InterfaceError | sa.DisconnectionError):
        return True  # no connection to be had from the pool, or it went away
    if isinstance(error, sa.DBAPIError) and error.connection_invalidated:
        return True
    for cause in error_causes(error):
        code = getattr(cause, "sqlite_errorcode", None)
        if isinstance(cause, sqlite3.Error) and isinstance(code, int):
            return code & 0xFF in _SQLITE_CODES
        state = getattr(cause, "sqlstate", None)
        if isinstance(state, str) and state:
            return state[:2] in _PG_CLASSES or state in _PG_STATES
        if isinstance(cause, OSError | TimeoutError):
            return True  # a connection refused, reset or timed out (asyncpg raises these bare)
    return False


def error_name(error: BaseException) -> str:
    """For logs: the error's type and the driver's code, never its message (it may quote SQL
    parameters)."""
    for cause in error_causes(error):
        name = getattr(cause, "sqlite_errorname", None) or getattr(cause, "sqlstate", None)
        if isinstance(name, str) and name:
            return f"{type(error).__name__}:{name}"
    return type(error_causes(error)[-1]).__name__

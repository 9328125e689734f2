"""Why a SQLite database file cannot be opened, said before SQLite says `unable to open
database file` (which names neither the path nor the reason) from deep inside a command."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import make_url

__all__ = ["sqlite_problem"]


def sqlite_problem(url: str) -> str | None:
    """One line naming the path and the cause, or None: the file can be opened (or made), or
    the URL is not a SQLite file. SQLite writes its `-wal` and `-shm` files beside the database,
    so its directory must be writable too."""
    parsed = make_url(url)
    path = parsed.database or ""
    if not parsed.drivername.startswith("sqlite") or path in ("", ":memory:"):
        return None
    if path.startswith("file:"):  # a URI filename: SQLite's own syntax, left to SQLite
        return None
    file = Path(path)
    directory = file.parent
    if file.is_dir():
        return f"database: {file} is a directory, not a SQLite file"
    if not directory.exists():
        return f"database: cannot create {file}: the directory {directory} does not exist"
    if not directory.is_dir():
        return f"database: cannot create {file}: {directory} is not a directory"
    if file.exists() and not os.access(file, os.R_OK | os.W_OK):
        return f"database: cannot open {file}: this user may not read and write it"
    if not os.access(directory, os.W_OK | os.X_OK):
        return f"database: cannot open {file}: this user may not write to {directory}"
    return None

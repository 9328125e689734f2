"""What an operator is told when the database `database_url` names cannot be used: the cause in
words and what to change, rather than a driver's bare code (`DBAPIError:28P01`) or, from an
administration command, a traceback.

Only the driver's code and error type are read, never its message (it may quote the URL's host,
user or database), and nothing of the URL is repeated: `database_url` is a secret setting.
"""

from __future__ import annotations

import socket
import sqlite3

from .db_errors import error_causes, error_name

__all__ = ["database_problem", "describe_database_error"]

#: PostgreSQL SQLSTATEs an operator causes and fixes (a URL, a role, a server setting).
_BY_SQLSTATE = {
    "28P01": "the server refused the user name or password in database_url",
    "28000": (
        "the server does not let database_url's user connect from this host: check the user"
        " name, and that pg_hba.conf has a line for this host"
    ),
    "3D000": (
        "the database database_url names does not exist on the server: create it"
        " (`createdb --owner <user> <name>`) or correct the URL's path"
    ),
    "42501": (
        "database_url's user lacks a privilege the gateway needs (connecting, or creating its"
        " tables): make it the database's owner"
    ),
    "53300": (
        "the server has no connection slot left: raise its max_connections (each gateway"
        " instance opens up to 30) or run fewer instances"
    ),
    "57P03": "the server is starting, stopping or recovering: start the gateway once it runs",
    "25006": "the server is a read-only standby: point database_url at the primary",
}


def database_problem(error: BaseException) -> str | None:
    """A line saying what is wrong and what to do, for an error the configuration or the
    database server causes; None for any other (a bug, a conflict between requests)."""
    for cause in error_causes(error):
        state = getattr(cause, "sqlstate", None)
        if isinstance(state, str) and state in _BY_SQLSTATE:
            return f"{_BY_SQLSTATE[state]} ({state})"
        if getattr(cause, "sqlite_errorcode", None) == sqlite3.SQLITE_NOTADB:
            return "the file database_url names is not a SQLite database (SQLITE_NOTADB)"
        if isinstance(cause, ConnectionRefusedError):
            return (
                "nothing accepts connections at database_url's host and port (connection"
                " refused): is PostgreSQL running, and listening there (port,"
                " listen_addresses)?"
            )
        if isinstance(cause, socket.gaierror):
            return "database_url's host name does not resolve (DNS): correct it"
        if isinstance(cause, TimeoutError):
            return (
                "no answer from database_url's host within database_timeout: a wrong address,"
                " a firewall, or a server too busy to answer"
            )
        if type(cause) is ConnectionError:  # asyncpg's own refusals (TLS asked, not given)
            return (
                "the server at database_url's address ended the connection before it could be"
                " used (as when the URL asks for TLS, `ssl=require` or `sslmode=require`, and"
                " the server has no TLS, or is not PostgreSQL)"
            )
    return None


def describe_database_error(error: BaseException) -> str:
    """`database: <what is wrong>`, for any error of connecting to the database or using it."""
    said = database_problem(error)
    return f"database: {said}" if said else f"database: cannot use it ({error_name(error)})"

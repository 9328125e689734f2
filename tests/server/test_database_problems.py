"""A database that cannot be used is named in words, with what to change: `check-config` and
`serve` said only a driver's code (`database: cannot use it (DBAPIError:28P01)`, `(gaierror)`),
and every administration command (`accounts show`, `keys list`, `migrate`, ...) printed a whole
traceback of SQLAlchemy's and asyncpg's internals for a wrong password, a database not created
or a server not running."""

import socket
import subprocess

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError
from tests.server.live import free_port
from tests.server.test_cli import _bin

from reapi_server.database_problems import database_problem, describe_database_error


class _DriverError(Exception):
    """What asyncpg raises: its SQLSTATE in `sqlstate`, the message quoting the URL's parts."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__('password authentication failed for user "secret-user"')
        self.sqlstate = sqlstate


def _wrapped(sqlstate: str) -> DBAPIError:
    return DBAPIError("SELECT 1", None, _DriverError(sqlstate))


@pytest.mark.parametrize(
    ("error", "says"),
    [
        (_wrapped("28P01"), "refused the user name or password in database_url (28P01)"),
        (_wrapped("3D000"), "the database database_url names does not exist"),
        (_wrapped("28000"), "pg_hba.conf"),
        (_wrapped("53300"), "max_connections"),
        (ConnectionRefusedError(111, "Connect call failed ('10.0.0.9', 5432)"), "refused"),
        (socket.gaierror(-2, "Name or service not known"), "does not resolve"),
        (TimeoutError(), "database_timeout"),
    ],
)
def test_each_cause_is_said_without_the_drivers_message(error, says):
    line = describe_database_error(error)
    assert line.startswith("database: ") and says in line
    assert "secret-user" not in line and "10.0.0.9" not in line


def test_an_error_of_the_gateways_own_is_left_alone():
    """A constraint broken (a bug) is no configuration problem: the command's traceback stays."""
    bug = IntegrityError("INSERT", None, _DriverError("23505"))
    assert database_problem(bug) is None
    assert describe_database_error(bug) == "database: cannot use it (IntegrityError:23505)"


def _admin(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_bin("reapi-server"), *args],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_an_administration_command_says_it_in_one_line(tmp_path):
    url = f"postgresql+asyncpg://reapi:db-password@127.0.0.1:{free_port()}/reapi"
    for command in (["accounts", "show", "--email", "a@example.com"], ["migrate"]):
        done = _admin(*command, "--data-dir", str(tmp_path), "--database-url", url)
        assert done.returncode == 1
        assert "Traceback" not in done.stderr and "db-password" not in done.stderr
        assert done.stderr.strip().splitlines() == [
            "error: database: nothing accepts connections at database_url's host and port "
            "(connection refused): is PostgreSQL running, and listening there (port, "
            "listen_addresses)?"
        ]


def test_a_file_that_is_no_database(tmp_path):
    (tmp_path / "not-a-database.db").write_bytes(b"not a database " * 512)
    url = f"sqlite+aiosqlite:///{tmp_path}/not-a-database.db"
    done = _admin("keys", "list", "--email", "a@example.com", "--database-url", url)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "error: database: the file database_url names is not a SQLite database (SQLITE_NOTADB)"
    )


@pytest.mark.postgres
def test_a_database_not_created(tmp_path, postgres_server):
    url = postgres_server.url("not_created_yet")
    for command in (["check-config"], ["keys", "list", "--email", "a@example.com"]):
        done = _admin(*command, "--data-dir", str(tmp_path), "--database-url", url)
        assert done.returncode == 1
        assert done.stderr.strip() == (
            "error: database: the database database_url names does not exist on the server: "
            "create it (`createdb --owner <user> <name>`) or correct the URL's path (3D000)"
        )

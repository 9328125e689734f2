"""A throwaway PostgreSQL server for the database tests: Debian's binaries, a temp directory,
loopback only, stopped at the end of the session. Absent binaries skip the PostgreSQL leg."""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator

import pytest

SKIP_MESSAGE = (
    "PostgreSQL leg skipped: no pg_ctl under /usr/lib/postgresql/*/bin. "
    "Enable it with `apt-get install postgresql` (CI's .ci/run does)."
)


def pg_bin() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return os.path.dirname(found[-1]) if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    def __init__(self, bindir: str) -> None:
        self.bindir = bindir
        # Not under pytest's tmp dir: its parents are private to root, and PostgreSQL refuses
        # to run as root, so the server runs as the `postgres` user and must reach its files.
        self.base = tempfile.mkdtemp(prefix="reapi-pg-")
        self.data = os.path.join(self.base, "data")
        self.port = _free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            os.chmod(self.base, 0o755)
            shutil.chown(self.base, "postgres", "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self._run(
            f"{self.bindir}/initdb", "-D", self.data, "-A", "trust", "-U", "reapi", "--no-sync"
        )
        for _attempt in range(4):
            try:
                self.resume()
                return
            except subprocess.CalledProcessError:
                # Another process on the machine took the free port between our choosing it
                # and the server binding it: choose again.
                if "Address already in use" not in self._log():
                    raise
                self.port = _free_port()
        self.resume()

    def _log(self) -> str:
        try:
            with open(os.path.join(self.base, "log"), encoding="utf-8", errors="replace") as log:
                return log.read()
        except OSError:
            return ""

    def resume(self) -> None:
        """Start the server (again, after `halt`)."""
        options = (
            f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            f"{self.bindir}/pg_ctl",
            "-D",
            self.data,
            "-o",
            options,
            "-w",
            "-l",
            os.path.join(self.base, "log"),
            "start",
        )

    def halt(self) -> None:
        """Stop the server, keeping its data (an outage; `resume` ends it)."""
        self._run(f"{self.bindir}/pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")

    def stop(self) -> None:
        try:  # (a server already halted has nothing to stop)
            pg_ctl = f"{self.bindir}/pg_ctl"
            subprocess.run(
                [*self.as_user, pg_ctl, "-D", self.data, "-m", "immediate", "stop"],
                capture_output=True,
                timeout=120,
                check=False,
            )
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://reapi@127.0.0.1:{self.port}/{database}"

    def execute(self, sql: str) -> None:
        async def run() -> None:
            import asyncpg

            connection = await asyncpg.connect(
                host="127.0.0.1", port=self.port, user="reapi", database="postgres"
            )
            try:
                await connection.execute(sql)
            finally:
                await connection.close()

        asyncio.run(run())


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bindir = pg_bin()
    if bindir is None:
        pytest.skip(SKIP_MESSAGE)
    server = PostgresServer(bindir)
    server.start()
    try:
        from reapi_server.migrate import upgrade_sync

        server.execute("CREATE DATABASE reapi_template")
        upgrade_sync(server.url("reapi_template"))
        yield server
    finally:
        server.stop()

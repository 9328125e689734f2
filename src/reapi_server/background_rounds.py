"""A background loop's failed rounds in the log, with a database outage said once.

The loops (video poller, webhook sender, email outbox, sweeper) try again every second or so.
While the database was away every round failed and logged an error: about three lines a second
in each process, on top of the one warning each request logs, enough to drown the outage's
start and to page whoever alerts on errors. An outage is now one warning when a loop first
meets it and one info line when a round succeeds again; any other failure stays an error, each
time (a bug does not go away by waiting).
"""

from __future__ import annotations

import errno
import logging
import socket

from .db_errors import error_name, is_unavailable

__all__ = ["RoundLog"]

#: A bare `OSError` is the database's only when it is a network's (asyncpg raises a refused
#: connection bare); a file's (the sweeper deletes outputs) is a failure like any other.
_NETWORK_ERRNOS = {
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.ECONNABORTED,
    errno.ETIMEDOUT,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.EPIPE,
}


def _database_away(exc: Exception) -> bool:
    a_file = (
        isinstance(exc, OSError)
        and not isinstance(exc, TimeoutError | socket.gaierror)
        and exc.errno not in _NETWORK_ERRNOS
    )
    return not a_file and is_unavailable(exc)


class RoundLog:
    """What one loop says of its rounds: `failed(exc)` after a failed round, `succeeded()`
    after one that worked. `what` names the loop in each line ("poller round", ...)."""

    def __init__(self, log: logging.Logger, what: str) -> None:
        self._log = log
        self._what = what
        self._waiting_for_database = False

    def failed(self, exc: Exception) -> None:
        if not _database_away(exc):
            self._log.error("%s failed", self._what, extra={"code": type(exc).__name__})
            return
        if not self._waiting_for_database:
            self._waiting_for_database = True
            self._log.warning(
                "%s: database unavailable, retrying quietly until it is back",
                self._what,
                extra={"code": error_name(exc)},
            )

    def succeeded(self) -> None:
        if self._waiting_for_database:
            self._waiting_for_database = False
            self._log.info("%s: database back", self._what)

"""Structured, metadata-only logs: one JSON object per line.

Only the fields named in `FIELDS` are ever written besides the message, and messages in this
package are constant strings with metadata arguments. Nothing here formats a body, prompt or key.

Records from other libraries are not ours to trust: a web server may log a request line, a
WebSocket library every header, a form parser a byte of the body. The one handler (on the root
logger, so nothing reaches `logging.lastResort` as raw text) writes such a record only when its
logger, level and message template are on `ALLOWED`, whose arguments are metadata; any other is
dropped below WARNING and reduced to its logger, level and a constant text from WARNING up.
"""

from __future__ import annotations

import errno
import json
import logging
import re
import sys
import time
from typing import Any

__all__ = ["ALLOWED", "FIELDS", "WITHHELD", "admit", "configure_logging"]

#: The fields of a log record besides its message (spans carry the same: tracing.attributes).
FIELDS = (
    "method",
    "route",
    "status",
    "provider",
    "attempts",
    "request_id",
    "duration_ms",
    "job_id",
    "code",
    "model",
)

#: Loggers of reapi's own code: their messages are constant strings with metadata arguments.
_OURS = ("reapi", "reapi_server")

#: What a record outside the allowlist is reduced to.
WITHHELD = "record withheld: not on the gateway's log allowlist"


def _templates(*patterns: str) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(pattern) for pattern in patterns)


_PID = r"\[\d+\]"

#: (logger, level) → message templates (matched whole, before arguments are applied) whose
#: arguments are metadata: process ids, the address the server listens on, revision ids.
ALLOWED: dict[tuple[str, int], tuple[re.Pattern[str], ...]] = {
    ("uvicorn.error", logging.INFO): _templates(
        r"Started server process \[%d\]",
        r"Finished server process \[%d\]",
        r"Waiting for application startup\.",
        r"Application startup complete\.",
        r"Waiting for application shutdown\.",
        r"Application shutdown complete\.",
        r"Shutting down",
        r"Uvicorn running on %s://%s:%d \(Press CTRL\+C to quit\)",
        r"Uvicorn running on %s://\[%s\]:%d \(Press CTRL\+C to quit\)",
        r"Waiting for connections to close\. \(CTRL\+C to force quit\)",
        r"Waiting for background tasks to complete\. \(CTRL\+C to force quit\)",
        # The supervisor of `--workers N` formats its process ids into the message itself.
        rf"Started parent process {_PID}",
        rf"Stopping parent process {_PID}",
        rf"Terminated child process {_PID}",
        rf"Waiting for child process {_PID}",
        rf"Child process {_PID} died",
        r"Received SIG[A-Z]+, exiting\.",
    ),
    ("uvicorn.error", logging.WARNING): _templates(
        r"Invalid HTTP request received\.",
        r"Unsupported upgrade request\.",
        r"No supported WebSocket library detected\. .*",
        r"Exceeded concurrency limit\.",
    ),
    ("uvicorn.error", logging.ERROR): _templates(
        # Written with the exception attached: the formatters below print its type only.
        r"Exception in ASGI application\n",
        r"Exception in 'lifespan' protocol\n",
        r"ASGI callable returned without starting response\.",
        r"ASGI callable returned without completing response\.",
        r"Application startup failed\. Exiting\.",
        r"Application shutdown failed\. Exiting\.",
        r"Cancel %s running task\(s\), timeout graceful shutdown exceeded",
        rf"Child process {_PID} failed to start, stopping the parent process\.",
    ),
}


def _is_ours(name: str) -> bool:
    return any(name == own or name.startswith(own + ".") for own in _OURS)


def admit(record: logging.LogRecord) -> logging.LogRecord | None:
    """The record as it may be written: itself (ours, or on the allowlist), a reduced copy
    (logger, level and a constant text) or None (dropped)."""
    if _is_ours(record.name):
        return record
    template = record.msg
    if isinstance(template, str):
        for pattern in ALLOWED.get((record.name, record.levelno), ()):
            if pattern.fullmatch(template):
                return record
    if record.levelno < logging.WARNING:
        return None
    text, args = WITHHELD, None
    code = template.errno if isinstance(template, OSError) else None
    if code is not None and code in errno.errorcode:
        # uvicorn logs a failed bind as the error itself: its errno name says enough.
        text, args = "socket error %s", (errno.errorcode[code],)
    reduced = logging.LogRecord(record.name, record.levelno, "", 0, text, args, None, None, None)
    reduced.created = record.created
    return reduced


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info and record.exc_info[0] is not None:
            # The type only: an exception's message may hold data we must not keep.
            entry["exc_type"] = record.exc_info[0].__name__
        return json.dumps(entry, separators=(",", ":"))


class PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(
            f"{name}={getattr(record, name)}"
            for name in FIELDS
            if getattr(record, name, None) is not None
        )
        when = time.strftime("%H:%M:%S", time.localtime(record.created))
        text = f"{when} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if record.exc_info and record.exc_info[0] is not None:
            text += f" exc_type={record.exc_info[0].__name__}"
        return f"{text} {extras}".rstrip()


class GatewayHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """stderr, through `admit`: the shared record is never changed, a reduced copy is written."""

    def handle(self, record: logging.LogRecord) -> bool:
        admitted = admit(record)
        if admitted is None:
            return False
        return bool(super().handle(admitted))

    def handleError(self, record: logging.LogRecord) -> None:
        # logging's own report would print the record's message and arguments.
        self.stream.write(f"logging error in a record of {record.name}\n")


def configure_logging(level: str = "INFO", *, json_lines: bool = True) -> None:
    level = level.upper()
    handler = GatewayHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else PlainFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Every logger below writes through the root's handler, and so through `admit`.
    for name in (*_OURS, "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.setLevel(level)
        logger.propagate = True
    # Warnings (a serializer's, say, quoting the value it was given) become records too.
    logging.captureWarnings(True)
    # httpx and httpcore log whole upstream URLs at INFO/DEBUG, and signed upload or download
    # URLs carry credentials: keep them quiet whatever the root logger's level.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # uvicorn's access log prints raw paths and query strings; ours prints route templates.
    logging.getLogger("uvicorn.access").disabled = True

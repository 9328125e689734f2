"""Structured, metadata-only logs: one JSON object per line.

Only the fields named in `_FIELDS` are ever written besides the message, and messages in this
package are constant strings with metadata arguments. Nothing here formats a body, prompt or key.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

__all__ = ["configure_logging"]

_FIELDS = (
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


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in _FIELDS:
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
            for name in _FIELDS
            if getattr(record, name, None) is not None
        )
        when = time.strftime("%H:%M:%S", time.localtime(record.created))
        text = f"{when} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if record.exc_info and record.exc_info[0] is not None:
            text += f" exc_type={record.exc_info[0].__name__}"
        return f"{text} {extras}".rstrip()


def configure_logging(level: str = "INFO", *, json_lines: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else PlainFormatter())
    for name in ("reapi", "reapi_server"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False
    # httpx and httpcore log whole upstream URLs at INFO/DEBUG, and signed upload or download
    # URLs carry credentials: keep them quiet whatever the root logger's level.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # uvicorn's access log prints raw paths and query strings; ours prints route templates.
    logging.getLogger("uvicorn.access").disabled = True
    uvicorn_errors = logging.getLogger("uvicorn.error")
    uvicorn_errors.handlers[:] = [handler]
    uvicorn_errors.setLevel(level.upper())
    uvicorn_errors.propagate = False

"""Deleting what reapi left at an upstream for one request (an input it uploaded): best effort.

Zero retention holds for what sub-processors keep too, so an upload made for a caller's request
is deleted once the upstream task that read it has ended. The deletion must never fail the
caller's request: a request that got no answer (the engine raises the error at the `yield`),
was throttled (429) or failed (5xx) is sent again a few times, then the failure is logged (its
provider, code and status: metadata only) and the protocol goes on.
"""

from __future__ import annotations

import logging

from .._exceptions import ReapiError
from ._protocol import Protocol, Sleep, UpstreamRequest

__all__ = ["TRIES", "removed"]

log = logging.getLogger("reapi")

#: Sends of one clean-up request before its failure is logged.
TRIES = 3
#: Seconds before the second send; doubled before each later one.
_BACKOFF = 0.5
#: The thing is not there (any more): what a clean-up wanted.
_GONE = frozenset({404, 410})


def _worth_retrying(status: int) -> bool:
    return status == 429 or status >= 500


def removed(request: UpstreamRequest, provider: str) -> Protocol[bool]:
    """Send a clean-up `request` (`purpose="cleanup"`, a DELETE) until the upstream says the
    thing is gone: a 2xx, or 404/410 (already gone). True then; False, logged, when it is not."""
    code: str | None = None
    status: int | None = None
    tries = 0
    while tries < TRIES:
        if tries:
            yield Sleep(_BACKOFF * 2 ** (tries - 1))
        tries += 1
        try:
            response = yield request
        except ReapiError as error:  # no answer (connection, timeout): the engine's error
            code, status = error.code, None
            continue
        if 200 <= response.status < 300 or response.status in _GONE:
            return True
        code, status = "cleanup_refused", response.status
        if not _worth_retrying(response.status):
            break
    log.warning(
        "upstream clean-up failed: what reapi uploaded is left at the provider",
        extra={"provider": provider, "code": code, "status": status, "attempts": tries},
    )
    return False

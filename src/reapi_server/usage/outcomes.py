"""How a failed request is described in usage rows and metrics: stable codes, never messages."""

from __future__ import annotations

import time

import anyio

from reapi import NoRouteAvailableError, ReapiError

from ..accounts import repository as accounts
from ..api_keys.auth import Principal
from ..errors import GatewayError
from ..group_commit import Tx
from ..observability.middleware import RequestContext
from ..runtime import Runtime
from . import repository as usage_rows
from .service import new_row

__all__ = ["error_code", "failed_attempts", "record_refusal"]


def error_code(error: BaseException) -> str:
    if isinstance(error, ReapiError | GatewayError):
        return error.code
    if isinstance(error, anyio.get_cancelled_exc_class()):
        return "cancelled"
    return "internal_error"


def failed_attempts(error: BaseException) -> tuple[str | None, int]:
    """(last provider, attempts) for a failure, when the error knows."""
    if isinstance(error, NoRouteAvailableError):
        last = error.attempts[-1].provider if error.attempts else None
        return last, len(error.attempts)
    if isinstance(error, ReapiError) and error.provider:
        return error.provider, 1
    return None, 0


async def record_refusal(
    rt: Runtime,
    principal: Principal,
    context: RequestContext,
    model: str,
    endpoint: str,
    code: str,
    started: float,
) -> None:
    """A usage row for a request refused before any upstream call (bad parameter, no credit)."""
    known = model if model in rt.catalog.models else "unknown"
    row = new_row(
        principal,
        context.request_id,
        model=known,
        endpoint=endpoint,
        status="failed",
        error_code=code,
        now=rt.now(),
        duration_ms=int((time.perf_counter() - started) * 1000),
    )

    async def insert(tx: Tx) -> None:
        # Not for an account being deleted (its key may live on in a process's key cache for a
        # moment): no row may point at it any more.
        if await accounts.is_open(tx, row.account_id):
            await usage_rows.insert(tx, row)

    await rt.db.grouped(insert, account=principal.account_id)

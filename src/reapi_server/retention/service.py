"""The retention job, in every server process: delete what is older than `retention_days`
(closed credit holds and per-request ledger rows too, the latter folded into their sums:
`credit_history`; webhook deliveries: `webhook_retention_days`, when that is shorter; Stripe
events handled that long ago), and payment records older than `payment_retention_days`
(7 years), with their refunds and disputes; a kept payment detached from its deleted account
loses any link to Stripe's hosted invoice or receipt pages left on it (they show the buyer's
name and card); a deleted account's top-up tombstones (ids only) after 30 days; audit-log rows
after `audit_retention_days`; API keys revoked more than `retention_days` ago, once no usage row
can name them (`api_keys.repository.delete_revoked_before`).

Rows go in batches, each in its own short transaction; an output's object is queued for deletion
in the same transaction as its row, then deleted from storage (`mirror.service`), so a storage
outage only delays it. Last, what processes killed mid-write left in storage (temp files,
unfinished multipart uploads) goes once it is `abandoned_write_seconds` old. Deleting is
idempotent and batches never overlap, so several processes may run the job at once; they only
share the work.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import astuple, dataclass

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from ..api_keys import repository as api_keys
from ..audit import repository as audit_rows
from ..billing import event_store
from ..billing import repository as payments
from ..billing.after_deletion import TOMBSTONE_DAYS
from ..mirror.repository import enqueue_deletions
from ..mirror.service import purge_deletions
from ..runtime import Runtime
from ..webhooks import repository as webhook_rows
from . import credit_history, repository

__all__ = ["RetentionReport", "purge_once", "run_retention"]

log = logging.getLogger("reapi_server.retention")

DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class RetentionReport:
    outputs: int
    usage_rows: int
    video_jobs: int
    payments: int
    #: Objects deleted from storage (from this run or earlier ones that met an outage).
    objects: int
    #: Partial writes of processes that died mid-write (temp files, multipart uploads).
    abandoned_writes: int = 0
    #: Webhook deliveries past `webhook_retention_days` (sent or not).
    webhook_deliveries: int = 0
    #: Stripe events handled before `retention_days` (their effects are in the rows they made).
    stripe_events: int = 0
    #: Settled or released credit holds (each one request's) created before `retention_days`.
    credit_holds: int = 0
    #: Per-request ledger rows folded into `carried` rows (net: rows the ledger lost).
    ledger_rows: int = 0
    #: Tombstones of deleted accounts' top-ups past `TOMBSTONE_DAYS` (`billing.after_deletion`).
    deleted_top_ups: int = 0
    #: Audit-log rows past `audit_retention_days`.
    audit_rows: int = 0
    #: API keys revoked before `retention_days` (after their usage rows, jobs and deliveries).
    revoked_keys: int = 0


Batch = Callable[[AsyncSession, float, int], Awaitable[int]]


async def _until_short(step: Callable[[], Awaitable[int]], size: int) -> int:
    """Run `step` until it handles fewer than `size` items; the total it handled."""
    total = 0
    while True:
        count = await step()
        total += count
        if count < size:
            return total


async def _in_batches(rt: Runtime, work: Batch, cutoff: float, size: int) -> int:
    async def step() -> int:
        async with rt.db.write() as session:
            return await work(session, cutoff, size)

    return await _until_short(step, size)


async def _fold_ledger(rt: Runtime, cutoff: float, size: int) -> int:
    run = credit_history.LedgerFold()
    total = 0
    while not run.done:
        async with rt.db.read() as session:
            ids = await credit_history.next_to_fold(session, cutoff, size, run)
        if ids:
            async with rt.db.write() as session:
                total += await credit_history.fold(session, ids, run)
    return total


async def purge_once(rt: Runtime, *, batch: int = 500) -> RetentionReport:
    cutoff = rt.now() - rt.settings.retention_days * DAY

    async def outputs(session: AsyncSession, cutoff: float, size: int) -> int:
        keys = await repository.delete_expired_outputs(session, cutoff, size)
        await enqueue_deletions(session, keys, rt.now())
        return len(keys)

    expired_outputs = await _in_batches(rt, outputs, cutoff, batch)
    usage_rows = await _in_batches(rt, repository.delete_expired_usage, cutoff, batch)
    video_jobs = await _in_batches(rt, repository.delete_expired_jobs, cutoff, batch)
    # After the jobs, whose `hold_id` names them; what a request's credit rows said about it.
    holds = await _in_batches(rt, credit_history.delete_closed_holds, cutoff, batch)
    ledger_rows = await _fold_ledger(rt, cutoff, batch)
    payment_cutoff = rt.now() - rt.settings.payment_retention_days * DAY
    old_payments = await _in_batches(rt, payments.delete_expired, payment_cutoff, batch)
    async with rt.db.write() as session:
        # Kept payments hold no links to Stripe's hosted pages once detached.
        await payments.clear_detached_links(session)
    events = await _in_batches(rt, event_store.delete_handled_before, cutoff, batch)
    tombstone_cutoff = rt.now() - TOMBSTONE_DAYS * DAY
    tombstones = await _in_batches(rt, payments.delete_tombstones_before, tombstone_cutoff, batch)
    objects = await _until_short(lambda: purge_deletions(rt, batch=batch), batch)
    abandoned = await rt.store.sweep_abandoned(rt.now() - rt.settings.abandoned_write_seconds)
    deliveries = await _in_batches(
        rt,
        webhook_rows.delete_expired,
        # Never past the general retention: a delivery holds the video object it announced.
        rt.now() - min(rt.settings.webhook_retention_days, rt.settings.retention_days) * DAY,
        batch,
    )
    audit_cutoff = rt.now() - rt.settings.audit_retention_days * DAY
    audited = await _in_batches(rt, audit_rows.delete_before, audit_cutoff, batch)
    # Last: the usage rows, jobs, holds and deliveries that named these keys are gone above.
    revoked_keys = await _in_batches(rt, api_keys.delete_revoked_before, cutoff, batch)
    report = RetentionReport(
        expired_outputs,
        usage_rows,
        video_jobs,
        old_payments,
        objects,
        abandoned,
        deliveries,
        events,
        holds,
        ledger_rows,
        tombstones,
        audited,
        revoked_keys,
    )
    if any(astuple(report)):  # something was deleted
        counts = (
            f"outputs={expired_outputs} usage={usage_rows} jobs={video_jobs} "
            f"payments={old_payments} objects={objects} abandoned={abandoned} "
            f"webhooks={deliveries} events={events} holds={holds} ledger={ledger_rows} "
            f"tombstones={tombstones} audit={audited} keys={revoked_keys}"
        )
        log.info("retention purge", extra={"code": counts})
        rt.db.personal_data_deleted()
    return report


async def run_retention(rt: Runtime) -> None:
    while True:
        try:
            await purge_once(rt)
        except Exception as exc:  # a database or storage hiccup must not end the loop
            log.error("retention purge failed", extra={"code": type(exc).__name__})
        await anyio.sleep(rt.settings.retention_interval)

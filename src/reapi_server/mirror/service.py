"""Deleting stored outputs without ever leaving a row that points at nothing, and without ever
forgetting an object that must go.

Rows go first, and in the same transaction each object's key (or its task's prefix) is queued in
`pending_deletions`; the objects are then deleted at once, and whatever the store refused (an
outage) stays queued until the retention job gets it deleted.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from ..errors import GatewayError
from ..models import StoredOutput
from ..runtime import Runtime
from ..usage import repository as usage_rows
from . import listing, repository
from .keys import task_of_prefix, task_prefix
from .outputs import MirroredFile
from .storage import ObjectStore, read_object

__all__ = [
    "delete_account_outputs",
    "delete_file",
    "delete_output",
    "delete_queued",
    "delete_task_outputs",
    "discard_unrecorded",
    "find_output",
    "forget_account_outputs",
    "forget_task",
    "purge_deletions",
    "queue_task_cleanup",
    "read_outputs",
]

log = logging.getLogger("reapi_server.mirror")

#: How long a process owns the queue entries it claimed before another may take them.
_CLAIM_SECONDS = 300.0
_MAX_BACKOFF = 3600.0


async def _delete(store: ObjectStore, target: str) -> None:
    if target.endswith("/"):
        await store.delete_prefix(target)
    else:
        await store.delete(target)


def _targets(task_id: str, keys: Sequence[str]) -> list[str]:
    """The task's prefix (orphans of failed attempts included), plus keys that predate prefixes."""
    prefix = task_prefix(task_id)
    return [prefix, *(k for k in keys if not k.startswith(prefix))]


async def find_output(rt: Runtime, file_id: str) -> StoredOutput | None:
    async with rt.db.read() as session:
        return await repository.get_output(session, file_id)


async def read_outputs(rt: Runtime, file_ids: Sequence[str]) -> list[bytes]:
    """The bytes of these (small: image) outputs, in order; deleted ones are left out."""
    async with rt.db.read() as session:
        keys = await repository.storage_keys(session, file_ids)
    found: list[bytes] = []
    for file_id in file_ids:
        stored = await read_object(rt.store, keys[file_id]) if file_id in keys else None
        if stored is not None:
            found.append(stored.data)
    return found


async def delete_queued(rt: Runtime, targets: Sequence[str]) -> bool:
    """Delete queued objects now; True when all are gone. Failures stay queued."""
    gone: list[str] = []
    for target in targets:
        try:
            await _delete(rt.store, target)
        except Exception as exc:
            log.warning("storage delete failed; queued", extra={"code": type(exc).__name__})
            continue
        gone.append(target)
    if gone:
        async with rt.db.write() as session:
            await repository.remove_deletions(session, keys=gone)
    return len(gone) == len(targets)


async def delete_file(rt: Runtime, file_id: str, account_id: str | None) -> bool:
    """Delete one output (row, then object); False when the account has no such output.

    A video goes with its thumbnail: a frame of it, which the dashboard shows only beside its
    video, so that left alone it would stay stored and served at its URL, listed nowhere,
    until retention. A thumbnail alone goes alone."""
    async with rt.db.write() as session:
        deleted = await repository.delete_output_row(session, file_id, account_id)
        if deleted is None:
            return False
        key, kind, task_id = deleted
        keys = [key]
        if kind == "video" and task_id is not None:
            keys += await repository.delete_thumbnail_rows(session, task_id, account_id)
        await repository.enqueue_deletions(session, keys, rt.now())
    rt.db.personal_data_deleted()
    await delete_queued(rt, keys)
    return True


async def delete_output(rt: Runtime, account_id: str, file_id: str) -> bool:
    """Delete one of the account's outputs as its owner sees it: an image alone, a video with
    its thumbnail. False when the account has no such output."""
    async with rt.db.read() as session:
        output = await listing.output_of(session, account_id, file_id)
    if output is None:
        return False
    if output.kind in ("video", "thumbnail") and output.task_id:
        return await delete_task_outputs(rt, output.task_id, account_id) is not None
    return await delete_file(rt, file_id, account_id)


async def forget_task(
    session: AsyncSession, task_id: str, account_id: str | None, now: float
) -> tuple[int, list[str]] | None:
    """In the caller's transaction: delete a task's output rows and queue its objects. Returns
    how many rows went and what to delete once it commits, or None when the account has no
    outputs of that task.

    Without an account (an operator, a deleted job), the task's prefix is queued even when no
    row is left: it also holds what failed attempts stored. Refused (GatewayError) for an image
    request that is still running."""
    keys = await repository.delete_task_rows(session, task_id, account_id)
    if not keys and account_id is not None:
        return None
    if not keys and await usage_rows.status_of(session, task_id) == "pending":
        # An image request still running: its rows come with its settlement, after its objects
        # are stored; deleting those now would leave the rows pointing at nothing.
        raise GatewayError(
            "the request is still running; delete its outputs once it has finished",
            code="task_in_progress",
            param="task",
        )
    targets = _targets(task_id, keys)
    await repository.enqueue_deletions(session, targets, now)
    return len(keys), targets


async def forget_account_outputs(session: AsyncSession, account_id: str, now: float) -> list[str]:
    """In the caller's transaction: delete every output row of an account (being deleted) and
    queue its objects, each task's prefix whole. What to delete once it commits."""
    rows = await repository.delete_account_rows(session, account_id)
    targets = {task_prefix(task_id) for task_id, _ in rows if task_id is not None}
    targets.update(key for task_id, key in rows if task_id is None)
    queued = sorted(targets)
    await repository.enqueue_deletions(session, queued, now)
    return queued


async def delete_account_outputs(rt: Runtime, account_id: str) -> bool:
    """Delete every stored output of an account now (rows, then objects): their URLs answer 404
    from the commit on. True when the store confirmed every deletion (the rest is queued)."""
    async with rt.db.write() as session:
        targets = await forget_account_outputs(session, account_id, rt.now())
    return await delete_queued(rt, targets)


async def delete_task_outputs(
    rt: Runtime, task_id: str, account_id: str | None
) -> tuple[int, bool] | None:
    """Delete every output of a task (rows, then objects): how many rows went and whether the
    store confirmed every deletion (what it did not is queued); None when the account has none."""
    async with rt.db.write() as session:
        forgotten = await forget_task(session, task_id, account_id, rt.now())
    if forgotten is None:
        return None
    rt.db.personal_data_deleted()
    count, targets = forgotten
    return count, await delete_queued(rt, targets)


async def queue_task_cleanup(rt: Runtime, task_id: str) -> None:
    """Queue a task's objects whose rows were never written (storing it failed part-way).
    Queued rather than deleted now: the store just failed, and the caller is answering."""
    with anyio.CancelScope(shield=True):
        try:
            async with rt.db.write() as session:
                await repository.enqueue_deletions(session, [task_prefix(task_id)], rt.now())
        except Exception as exc:
            log.error("could not queue a task's objects", extra={"code": type(exc).__name__})


async def discard_unrecorded(rt: Runtime, task_id: str, files: Sequence[MirroredFile]) -> bool:
    """Delete a task's objects when their rows were not written; True when they were (the
    transaction committed after all).

    Called when the transaction that records them failed or was interrupted; it may still have
    committed (a cancellation can land after COMMIT, a connection can drop during it), so the
    database decides. When it cannot be asked, everything is kept (and False returned): an
    orphan object is harmless, a row without its object is not."""
    with anyio.CancelScope(shield=True):
        try:
            async with rt.db.write() as session:
                if await repository.recorded_ids(session, [f.file_id for f in files]):
                    return True
                targets = _targets(task_id, [])
                await repository.enqueue_deletions(session, targets, rt.now())
        except Exception as exc:
            log.warning("could not check stored outputs", extra={"code": type(exc).__name__})
            return False
        await delete_queued(rt, targets)
    return False


async def purge_deletions(rt: Runtime, *, batch: int = 200) -> int:
    """Work through the deletion queue once: claim due entries, delete their objects, forget
    them; a failure is tried again later with exponential backoff. Returns how many went."""
    now = rt.now()
    async with rt.db.write() as session:
        claimed = await repository.claim_deletions(session, now, now + _CLAIM_SECONDS, batch)
        owned = await repository.tasks_with_rows(
            session, [t for _, target, _ in claimed if (t := task_of_prefix(target))]
        )
    done: list[int] = []
    failed: list[tuple[int, int]] = []
    for entry_id, target, attempts in claimed:
        if task_of_prefix(target) in owned:
            # Queued for a request taken for dead (its hold swept) that wrote its rows after
            # all: the rows own the objects now, and go (with them) by the usual ways.
            done.append(entry_id)
            continue
        try:
            await _delete(rt.store, target)
        except Exception as exc:
            log.warning("queued storage delete failed", extra={"code": type(exc).__name__})
            failed.append((entry_id, attempts))
            continue
        done.append(entry_id)
    if claimed:
        async with rt.db.write() as session:
            await repository.remove_deletions(session, ids=done)
            for entry_id, attempts in failed:
                wait = min(30.0 * 2 ** min(attempts, 10), _MAX_BACKOFF)
                await repository.postpone_deletion(session, entry_id, rt.now() + wait)
    return len(done)

"""All SQL about stored outputs and the queue of objects waiting to be deleted."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ARRAY, Insert, bindparam, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ..group_commit import Statement, Tx, as_tx
from ..models import PendingDeletion, StoredOutput
from .outputs import MirroredFile

__all__ = [
    "claim_deletions",
    "delete_account_rows",
    "delete_output_row",
    "delete_task_rows",
    "delete_thumbnail_rows",
    "enqueue_deletion",
    "enqueue_deletions",
    "get_output",
    "insert_outputs",
    "latest_outputs",
    "output_arrays",
    "outputs_for_account",
    "outputs_inserting",
    "postpone_deletion",
    "recorded_ids",
    "remove_deletions",
    "storage_keys",
    "tasks_with_rows",
]


_OUTPUT_COLUMNS = (
    "id",
    "account_id",
    "storage_key",
    "content_type",
    "size_bytes",
    "kind",
    "task_id",
    "created_at",
)
# Compiled once per dialect: an image request's rows join its settlement in a group commit.
_INSERT_OUTPUTS = Statement(insert(StoredOutput), column_keys=_OUTPUT_COLUMNS)


def _rows(files: Sequence[MirroredFile], account_id: str, now: float) -> list[dict[str, Any]]:
    return [
        {
            "id": f.file_id,
            "account_id": account_id,
            "storage_key": f.storage_key,
            "content_type": f.content_type,
            "size_bytes": f.size_bytes,
            "kind": f.kind,
            "task_id": f.task_id,
            "created_at": now,
        }
        for f in files
    ]


async def insert_outputs(
    session: AsyncSession | Tx, files: Sequence[MirroredFile], account_id: str, now: float
) -> None:
    """Rows for objects already stored (never before: no row may point at a missing object)."""
    await as_tx(session).execute_many(_INSERT_OUTPUTS, _rows(files, account_id, now))


def outputs_inserting(prefix: str) -> Insert:
    """PostgreSQL: `insert_outputs` as one INSERT of arrays (parameters `<prefix><column>`,
    `output_arrays`), for a statement that writes the rows with others (a settlement's)."""
    table = StoredOutput.__table__
    arrays = [
        func.unnest(bindparam(f"{prefix}{name}", type_=ARRAY(table.c[name].type)))
        for name in _OUTPUT_COLUMNS
    ]
    return insert(StoredOutput).from_select(list(_OUTPUT_COLUMNS), select(*arrays))


def output_arrays(
    files: Sequence[MirroredFile], account_id: str, now: float, prefix: str
) -> dict[str, list[Any]]:
    """The parameters of `outputs_inserting`: a list per column, a row per file."""
    rows = _rows(files, account_id, now)
    return {f"{prefix}{name}": [row[name] for row in rows] for name in _OUTPUT_COLUMNS}


async def recorded_ids(session: AsyncSession, file_ids: Sequence[str]) -> set[str]:
    """Which of these outputs have rows (i.e. whose transaction committed)."""
    return set(await storage_keys(session, file_ids))


async def get_output(session: AsyncSession, file_id: str) -> StoredOutput | None:
    result = await session.execute(select(StoredOutput).where(StoredOutput.id == file_id))
    return result.scalar_one_or_none()


async def outputs_for_account(session: AsyncSession, account_id: str) -> list[StoredOutput]:
    result = await session.execute(
        select(StoredOutput)
        .where(StoredOutput.account_id == account_id)
        .order_by(StoredOutput.created_at, StoredOutput.id)
    )
    return list(result.scalars())


async def storage_keys(session: AsyncSession, file_ids: Sequence[str]) -> dict[str, str]:
    """file id → storage key, for those that have rows."""
    if not file_ids:
        return {}
    result = await session.execute(
        select(StoredOutput.id, StoredOutput.storage_key).where(StoredOutput.id.in_(file_ids))
    )
    return {str(row[0]): str(row[1]) for row in result.all()}


async def tasks_with_rows(session: AsyncSession, task_ids: Sequence[str]) -> set[str]:
    """Which of these tasks have output rows."""
    if not task_ids:
        return set()
    result = await session.execute(
        select(StoredOutput.task_id).where(StoredOutput.task_id.in_(task_ids)).distinct()
    )
    return {str(task_id) for task_id in result.scalars()}


async def delete_output_row(
    session: AsyncSession, file_id: str, account_id: str | None
) -> tuple[str, str, str | None] | None:
    """Delete one output's row; its storage key, kind and task, or None when there is no such
    row (or it is another account's)."""
    query = delete(StoredOutput).where(StoredOutput.id == file_id)
    if account_id is not None:
        query = query.where(StoredOutput.account_id == account_id)
    connection = await session.connection()
    result = await connection.execute(
        query.returning(StoredOutput.storage_key, StoredOutput.kind, StoredOutput.task_id)
    )
    row = result.one_or_none()
    return (str(row[0]), str(row[1]), row[2]) if row is not None else None


async def delete_thumbnail_rows(
    session: AsyncSession, task_id: str, account_id: str | None
) -> list[str]:
    """Delete the rows of a video's thumbnails (only the account's, when one is given); their
    keys."""
    query = delete(StoredOutput).where(
        StoredOutput.task_id == task_id, StoredOutput.kind == "thumbnail"
    )
    if account_id is not None:
        query = query.where(StoredOutput.account_id == account_id)
    connection = await session.connection()
    result = await connection.execute(query.returning(StoredOutput.storage_key))
    return list(result.scalars())


async def delete_task_rows(
    session: AsyncSession, task_id: str, account_id: str | None
) -> list[str]:
    """Delete the rows of a task's outputs (only the account's, when one is given); their keys."""
    query = delete(StoredOutput).where(StoredOutput.task_id == task_id)
    if account_id is not None:
        query = query.where(StoredOutput.account_id == account_id)
    connection = await session.connection()
    result = await connection.execute(query.returning(StoredOutput.storage_key))
    return list(result.scalars())


async def delete_account_rows(
    session: AsyncSession, account_id: str
) -> list[tuple[str | None, str]]:
    """Delete every output row of the account; (task id, storage key) of each."""
    connection = await session.connection()
    result = await connection.execute(
        delete(StoredOutput)
        .where(StoredOutput.account_id == account_id)
        .returning(StoredOutput.task_id, StoredOutput.storage_key)
    )
    return [(row[0], str(row[1])) for row in result.all()]


# -- the deletion queue ----------------------------------------------------------------------------


_QUEUE_DELETION = Statement(
    insert(PendingDeletion), column_keys=("storage_key", "attempts", "not_before", "created_at")
)


async def enqueue_deletion(tx: Tx, key: str, now: float) -> None:
    """`enqueue_deletions` of one key, in a group-commit transaction (a request's release)."""
    await tx.execute(
        _QUEUE_DELETION, {"storage_key": key, "attempts": 0, "not_before": now, "created_at": now}
    )


async def enqueue_deletions(session: AsyncSession, keys: Sequence[str], now: float) -> None:
    if not keys:
        return
    connection = await session.connection()
    await connection.execute(
        insert(PendingDeletion),
        [{"storage_key": k, "attempts": 0, "not_before": now, "created_at": now} for k in keys],
    )


async def claim_deletions(
    session: AsyncSession, now: float, claim_until: float, limit: int
) -> list[tuple[int, str, int]]:
    """Take up to `limit` due entries for this process until `claim_until`: (id, key, attempts).

    Like the video poller's claim: `FOR UPDATE SKIP LOCKED` on PostgreSQL, the single writer on
    SQLite. Deleting twice would be harmless; claiming just saves the work."""
    due = await session.execute(
        select(PendingDeletion.id, PendingDeletion.storage_key, PendingDeletion.attempts)
        .where(PendingDeletion.not_before <= now)
        .order_by(PendingDeletion.not_before)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = [(int(r[0]), str(r[1]), int(r[2])) for r in due.all()]
    if rows:
        connection = await session.connection()
        await connection.execute(
            update(PendingDeletion)
            .where(PendingDeletion.id.in_([r[0] for r in rows]))
            .values(not_before=claim_until)
        )
    return rows


async def remove_deletions(
    session: AsyncSession, *, ids: Sequence[int] = (), keys: Sequence[str] = ()
) -> None:
    """Forget entries whose objects are gone."""
    connection = await session.connection()
    if ids:
        await connection.execute(delete(PendingDeletion).where(PendingDeletion.id.in_(ids)))
    if keys:
        await connection.execute(
            delete(PendingDeletion).where(PendingDeletion.storage_key.in_(keys))
        )


async def postpone_deletion(session: AsyncSession, entry_id: int, not_before: float) -> None:
    connection = await session.connection()
    await connection.execute(
        update(PendingDeletion)
        .where(PendingDeletion.id == entry_id)
        .values(not_before=not_before, attempts=PendingDeletion.attempts + 1)
    )


async def latest_outputs(
    session: AsyncSession, account_id: str, *, limit: int
) -> list[StoredOutput]:
    result = await session.execute(
        select(StoredOutput)
        .where(StoredOutput.account_id == account_id)
        .order_by(StoredOutput.created_at.desc(), StoredOutput.id)
        .limit(limit)
    )
    return list(result.scalars())

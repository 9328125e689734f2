"""All SQL about stored outputs."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from ..models import StoredOutput
from .outputs import MirroredFile

__all__ = ["insert_outputs", "owner_of", "recorded_ids"]


async def insert_outputs(
    session: AsyncSession,
    files: Sequence[MirroredFile],
    account_id: str,
    now: float,
    job_id: str | None = None,
) -> None:
    """Rows for objects already stored (never before: no row may point at a missing object)."""
    if not files:
        return
    connection = await session.connection()
    await connection.execute(
        insert(StoredOutput),
        [
            {
                "id": f.file_id,
                "account_id": account_id,
                "storage_key": f.storage_key,
                "content_type": f.content_type,
                "size_bytes": f.size_bytes,
                "kind": f.kind,
                "job_id": job_id,
                "created_at": now,
            }
            for f in files
        ],
    )


async def recorded_ids(session: AsyncSession, file_ids: Sequence[str]) -> set[str]:
    """Which of these outputs have rows (i.e. whose transaction committed)."""
    if not file_ids:
        return set()
    result = await session.execute(select(StoredOutput.id).where(StoredOutput.id.in_(file_ids)))
    return set(result.scalars())


async def owner_of(session: AsyncSession, file_id: str) -> str | None:
    result = await session.execute(
        select(StoredOutput.account_id).where(StoredOutput.id == file_id)
    )
    return result.scalar_one_or_none()

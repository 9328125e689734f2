"""An account's stored outputs as its owner browses them: images and videos newest first, a page
at a time (keyset on time, then id), each video with its thumbnail and the model that made it.
Every statement is bound to the account."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from ..db import Database
from ..models import StoredOutput, UsageRecord, VideoJob
from ..usage.filters import Cursor

__all__ = [
    "ListedOutput",
    "OutputsPage",
    "StoredOutputs",
    "browse",
    "listed_output",
    "output_of",
    "outputs_page",
    "stored_totals",
]

#: What the list shows; a video's thumbnail is shown with its video, not on its own.
_LISTED_KINDS = ("image", "video")


@dataclass(frozen=True, slots=True)
class ListedOutput:
    id: str
    kind: str
    task_id: str | None
    content_type: str
    size_bytes: int
    created_at: float
    thumbnail_id: str | None = None
    model: str | None = None
    #: A video's length and frame size, when its job says.
    seconds: int | None = None
    size: str | None = None


@dataclass(frozen=True, slots=True)
class OutputsPage:
    outputs: list[ListedOutput]
    has_older: bool
    has_newer: bool

    @property
    def older_cursor(self) -> Cursor | None:
        last = self.outputs[-1] if self.outputs and self.has_older else None
        return Cursor(last.created_at, last.id) if last else None

    @property
    def newer_cursor(self) -> Cursor | None:
        first = self.outputs[0] if self.outputs and self.has_newer else None
        return Cursor(first.created_at, first.id) if first else None


async def outputs_page(
    session: AsyncSession,
    account_id: str,
    *,
    limit: int,
    older_than: Cursor | None = None,
    newer_than: Cursor | None = None,
) -> OutputsPage:
    query = select(StoredOutput).where(
        StoredOutput.account_id == account_id, StoredOutput.kind.in_(_LISTED_KINDS)
    )
    if newer_than is not None:
        query = query.where(
            StoredOutput.created_at >= newer_than.created_at,
            or_(StoredOutput.created_at > newer_than.created_at, StoredOutput.id > newer_than.id),
        ).order_by(StoredOutput.created_at.asc(), StoredOutput.id.asc())
    else:
        if older_than is not None:
            query = query.where(
                StoredOutput.created_at <= older_than.created_at,
                or_(
                    StoredOutput.created_at < older_than.created_at,
                    StoredOutput.id < older_than.id,
                ),
            )
        query = query.order_by(StoredOutput.created_at.desc(), StoredOutput.id.desc())
    rows = list((await session.execute(query.limit(limit + 1))).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    if newer_than is not None:
        rows.reverse()
    listed = await _described(session, account_id, rows)
    if newer_than is not None:
        return OutputsPage(listed, has_older=True, has_newer=more)
    return OutputsPage(listed, has_older=more, has_newer=older_than is not None)


async def _described(
    session: AsyncSession, account_id: str, rows: Sequence[StoredOutput]
) -> list[ListedOutput]:
    """The rows with their video's thumbnail, length and size, and the model that made them."""
    tasks = [row.task_id for row in rows if row.task_id]
    thumbnails: dict[str, str] = {}
    models: dict[str, str] = {}
    videos: dict[str, tuple[str, int | None, str | None]] = {}
    if tasks:
        found = await session.execute(
            select(StoredOutput.task_id, StoredOutput.id).where(
                StoredOutput.account_id == account_id,
                StoredOutput.kind == "thumbnail",
                StoredOutput.task_id.in_(tasks),
            )
        )
        thumbnails = {str(task): str(file_id) for task, file_id in found.all()}
        usage = await session.execute(
            select(UsageRecord.id, UsageRecord.model).where(
                UsageRecord.account_id == account_id, UsageRecord.id.in_(tasks)
            )
        )
        models = {str(task): str(model) for task, model in usage.all()}
        jobs = await session.execute(
            select(VideoJob.id, VideoJob.model, VideoJob.seconds, VideoJob.size).where(
                VideoJob.account_id == account_id, VideoJob.id.in_(tasks)
            )
        )
        videos = {str(j): (str(model), seconds, size) for j, model, seconds, size in jobs.all()}
    listed = []
    for row in rows:
        task = row.task_id or ""
        model, seconds, size = videos.get(task, (models.get(task), None, None))
        listed.append(
            ListedOutput(
                id=row.id,
                kind=row.kind,
                task_id=row.task_id,
                content_type=row.content_type,
                size_bytes=row.size_bytes,
                created_at=row.created_at,
                thumbnail_id=thumbnails.get(task),
                model=model,
                seconds=seconds,
                size=size,
            )
        )
    return listed


async def output_of(session: AsyncSession, account_id: str, file_id: str) -> StoredOutput | None:
    """One of the account's outputs (never another account's)."""
    result = await session.execute(
        select(StoredOutput).where(
            and_(StoredOutput.id == file_id, StoredOutput.account_id == account_id)
        )
    )
    return result.scalar_one_or_none()


async def listed_output(db: Database, account_id: str, file_id: str) -> ListedOutput | None:
    """One of the account's images or videos as the list shows it (None: not the account's,
    not listed, or gone)."""
    async with db.read() as session:
        row = await output_of(session, account_id, file_id)
        if row is None or row.kind not in _LISTED_KINDS:
            return None
        [listed] = await _described(session, account_id, [row])
    return listed


async def stored_totals(session: AsyncSession, account_id: str) -> tuple[int, int]:
    """(images and videos stored, bytes they and their thumbnails take)."""
    result = await session.execute(
        select(
            func.count().filter(StoredOutput.kind.in_(_LISTED_KINDS)),
            func.coalesce(func.sum(StoredOutput.size_bytes), 0),
        ).where(StoredOutput.account_id == account_id)
    )
    count, size = result.one()
    return int(count), int(size)


@dataclass(frozen=True, slots=True)
class StoredOutputs:
    page: OutputsPage
    #: Images and videos the account has stored, and the bytes they take.
    count: int
    size_bytes: int


async def browse(
    db: Database,
    account_id: str,
    *,
    limit: int,
    older_than: Cursor | None = None,
    newer_than: Cursor | None = None,
) -> StoredOutputs:
    async with db.read() as session:
        page = await outputs_page(
            session, account_id, limit=limit, older_than=older_than, newer_than=newer_than
        )
        count, size = await stored_totals(session, account_id)
    return StoredOutputs(page, count, size)

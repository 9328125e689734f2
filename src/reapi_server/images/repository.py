"""All SQL of the image path that is not credit or usage: its stored outputs' rows.

The same table as `mirror.repository.insert_outputs`, as one compiled statement on a `Tx`, so
that it joins the request's settlement in a group commit."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import insert

from ..group_commit import Statement, Tx
from ..mirror.outputs import MirroredFile
from ..mirror.repository import output_rows
from ..models import StoredOutput

__all__ = ["insert_outputs"]

_COLUMNS = (
    "id",
    "account_id",
    "storage_key",
    "content_type",
    "size_bytes",
    "kind",
    "task_id",
    "created_at",
)
_INSERT = Statement(insert(StoredOutput), column_keys=_COLUMNS)


async def insert_outputs(
    tx: Tx, files: Sequence[MirroredFile], account_id: str, now: float
) -> None:
    """Rows for objects already stored (never before: no row may point at a missing object)."""
    await tx.execute_many(_INSERT, output_rows(files, account_id, now))

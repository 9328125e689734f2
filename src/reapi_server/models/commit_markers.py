"""One row per writer process: the sequence number of its last group-commit transaction,
written inside that transaction. When a COMMIT's outcome is unknown (the connection dropped
during it), the row says whether it landed (`group_commit`)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base

__all__ = ["CommitMarker"]


class CommitMarker(Base):
    __tablename__ = "commit_markers"

    #: The group committer's own random id (one per process and database).
    owner: Mapped[str] = mapped_column(String(32), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    #: Rows of processes long gone are deleted by the sweeper (no index: a handful of rows, and
    #: every transaction updates this column).
    updated_at: Mapped[float] = mapped_column(Float)

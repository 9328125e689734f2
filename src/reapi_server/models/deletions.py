"""Objects waiting to be deleted from storage. A row is written in the same transaction that
deletes the rows pointing at the object, and removed once the store confirms the deletion: an
object is never deleted while a row points at it, and never forgotten when the store is down."""

from __future__ import annotations

from sqlalchemy import Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base

__all__ = ["PendingDeletion"]


class PendingDeletion(Base):
    __tablename__ = "pending_deletions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    #: One object's key, or a task's prefix (`outputs/<task id>/`, ending in '/').
    storage_key: Mapped[str] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: Not tried again before this time: a claim by one process, or a backoff after a failure.
    not_before: Mapped[float] = mapped_column(Float, index=True)
    created_at: Mapped[float] = mapped_column(Float)

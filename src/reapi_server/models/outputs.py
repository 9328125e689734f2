"""Generated outputs mirrored into the gateway's storage. A row is written only after its object
is stored, and the object is deleted only after its row: no row points at a missing object."""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base

__all__ = ["StoredOutput"]


class StoredOutput(Base):
    __tablename__ = "stored_outputs"
    #: The dashboard lists an account's outputs newest first, a page at a time; the same index
    #: finds an account's outputs for everything else, retention's by age included (an index on
    #: `account_id` or `created_at` alone would be one more b-tree written with every output).
    __table_args__ = (Index("ix_stored_outputs_account_created", "account_id", "created_at"),)

    #: The unguessable public id in `/v1/files/{id}/content`.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    storage_key: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    #: image | video | thumbnail
    kind: Mapped[str] = mapped_column(String(16))
    #: The image request (its `x-request-id`) or video job the output belongs to; its objects
    #: live under `outputs/<task id>/`. None for outputs stored before tasks were recorded.
    task_id: Mapped[str | None] = mapped_column(String(40), default=None, index=True)
    #: Retention deletes rows (and objects) by age, account by account, through
    #: `ix_stored_outputs_account_created` (migration 0020).
    created_at: Mapped[float] = mapped_column(Float)

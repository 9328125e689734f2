"""What operators did: one row per admin action (grant credits, disable an account, delete a
user...), by whom, when, on which account or person. Metadata only: ids, amounts, a reason the
operator typed; never a request body, a key or an email address (a deleted person's address
must not outlive them here).

No foreign keys: the log outlives the accounts and people it mentions, but detached
(`audit.repository.detach`: their ids and the reason typed go with them), and every row goes
after `audit_retention_days`."""

from __future__ import annotations

from sqlalchemy import Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base

__all__ = ["AuditEntry"]


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_account_created", "account_id", "created_at"),
        Index("ix_audit_log_target_user_id", "target_user_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[float] = mapped_column(Float, index=True)
    #: The admin who acted; None when the command line did (`via` = "cli").
    actor_user_id: Mapped[str | None] = mapped_column(String(40), default=None)
    #: web | cli
    via: Mapped[str] = mapped_column(String(8))
    #: e.g. credits.adjust, account.disable, account.enable, user.delete, user.promote
    action: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[str | None] = mapped_column(String(40), default=None)
    target_user_id: Mapped[str | None] = mapped_column(String(40), default=None)
    #: JSON object of scalars (amounts, counts, the operator's reason).
    detail: Mapped[str] = mapped_column(Text, default="{}")

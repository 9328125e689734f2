"""outbox rows name the person they were sent to

Revision ID: 0021_mail_by_person
Revises: 0020_retention_by_account
Create Date: 2026-12-06 15:30:00.000000

A person's export and deletion found their mail by their current address only: after an email
change, the rows to the old address (the notices of the change among them) and to an address a
change was asked for were in no export and outlived the account by up to 30 days. Rows now
carry the user's id. Existing rows get the id of the user whose address they went to, where
that is someone's address now; the rest are at most 30 days old and go with the retention.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021_mail_by_person"
down_revision: str | None = "0020_retention_by_account"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("outbox_messages", sa.Column("user_id", sa.String(40), nullable=True))
    op.create_index("ix_outbox_messages_user_id", "outbox_messages", ["user_id"])
    op.execute(
        "UPDATE outbox_messages SET user_id ="
        " (SELECT users.id FROM users WHERE users.email = outbox_messages.to_address)"
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_messages_user_id", table_name="outbox_messages")
    with op.batch_alter_table("outbox_messages") as batch:
        batch.drop_column("user_id")

"""web sessions remember when their person last confirmed who they are

Revision ID: 0022_session_step_up
Revises: 0021_mail_by_person
Create Date: 2026-12-06 19:40:00.000000

Step-up ("sudo mode"): a session whose person typed their password (and code) on the
confirm-access page may mint keys, link a sign-in method or export data for the next ten
minutes without being asked again. NULL: never confirmed (the sign-in itself counts).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022_session_step_up"
down_revision: str | None = "0021_mail_by_person"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("web_sessions", sa.Column("confirmed_at", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("web_sessions") as batch:
        batch.drop_column("confirmed_at")

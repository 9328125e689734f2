"""fleet_secret: the one secret every instance on this database keys its hashes with

Revision ID: 0007_fleet
Revises: 0006_mail
Create Date: 2026-12-05 10:00:00.000000

Each instance used to generate its own `secret.key` in its data dir, so two instances on one
PostgreSQL fingerprinted the same idempotent request differently and both ran it. The table is
made empty here; the first instance to start writes the row (`fleet_secret.resolve`).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_fleet"
down_revision: str | None = "0006_mail"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fleet_secret",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=True),
        sa.Column("verifier", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fleet_secret")),
    )


def downgrade() -> None:
    op.drop_table("fleet_secret")

"""which versions of the gateway may run on the schema (rolling upgrades, roll-backs)

Revision ID: 0025_schema_compatibility
Revises: 0024_deleted_top_ups
Create Date: 2026-12-07 03:30:00.000000

An instance older than the database's schema (a newer version migrated it during a rolling
upgrade, or a deploy was rolled back) cannot know whether that schema still suits it: a column
added NOT NULL without a default, a table renamed, a value given a new meaning would have it
fail, or worse write what the newer version misreads. The newer version says so instead: each
migration declares whether the code before it still runs (`backward_compatible`), and
migrating writes here the revisions whose code may run on the schema. An older instance starts
only if its own revision is listed (`migrate.upgrade`).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025_schema_compatibility"
down_revision: str | None = "0024_deleted_top_ups"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
#: A new table only: the previous version runs on this schema.
backward_compatible = True


def upgrade() -> None:
    op.create_table(
        "schema_compatibility",
        sa.Column("revision", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("revision", name=op.f("pk_schema_compatibility")),
    )


def downgrade() -> None:
    op.drop_table("schema_compatibility")

"""api_keys.active_videos: the key's unfinished video jobs, kept by triggers

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 09:30:00.000000

The per-key limit on unfinished video jobs was checked by counting the key's jobs in an active
state on every create: a cost that grows with the number of such jobs. Triggers on `video_jobs`
now keep the count on the key's row whatever changes a job (create, poller, sweeper, delete), so
the check reads one row, the one it already locks.

On SQLite, dropping or copying `video_jobs` (Alembic's batch mode) drops its triggers: a later
migration that rebuilds that table must create them again (`create_triggers`).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The active states are models.jobs.ACTIVE_JOB_STATES, spelled out in each statement: a
# migration must not change with the code.

_SQLITE = [
    """CREATE TRIGGER video_jobs_active_insert AFTER INSERT ON video_jobs
    WHEN NEW.status IN ('submitting', 'queued', 'in_progress')
    BEGIN
        UPDATE api_keys SET active_videos = active_videos + 1 WHERE id = NEW.api_key_id;
    END""",
    """CREATE TRIGGER video_jobs_active_update AFTER UPDATE OF status, api_key_id ON video_jobs
    WHEN (OLD.status IN ('submitting', 'queued', 'in_progress'))
        != (NEW.status IN ('submitting', 'queued', 'in_progress'))
        OR OLD.api_key_id IS NOT NEW.api_key_id
    BEGIN
        UPDATE api_keys SET active_videos = active_videos - 1
            WHERE id = OLD.api_key_id AND OLD.status IN ('submitting', 'queued', 'in_progress');
        UPDATE api_keys SET active_videos = active_videos + 1
            WHERE id = NEW.api_key_id AND NEW.status IN ('submitting', 'queued', 'in_progress');
    END""",
    """CREATE TRIGGER video_jobs_active_delete AFTER DELETE ON video_jobs
    WHEN OLD.status IN ('submitting', 'queued', 'in_progress')
    BEGIN
        UPDATE api_keys SET active_videos = active_videos - 1 WHERE id = OLD.api_key_id;
    END""",
]

_POSTGRES = [
    """CREATE FUNCTION reapi_count_active_videos() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        was_active boolean := TG_OP <> 'INSERT'
            AND OLD.status IN ('submitting', 'queued', 'in_progress');
        is_active boolean := TG_OP <> 'DELETE'
            AND NEW.status IN ('submitting', 'queued', 'in_progress');
    BEGIN
        IF was_active AND is_active AND OLD.api_key_id IS NOT DISTINCT FROM NEW.api_key_id THEN
            RETURN NULL;
        END IF;
        IF was_active THEN
            UPDATE api_keys SET active_videos = active_videos - 1 WHERE id = OLD.api_key_id;
        END IF;
        IF is_active THEN
            UPDATE api_keys SET active_videos = active_videos + 1 WHERE id = NEW.api_key_id;
        END IF;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER video_jobs_active_videos
    AFTER INSERT OR UPDATE OF status, api_key_id OR DELETE ON video_jobs
    FOR EACH ROW EXECUTE FUNCTION reapi_count_active_videos()""",
]


def create_triggers() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in _POSTGRES if postgres else _SQLITE:
        op.execute(statement)


def upgrade() -> None:
    op.add_column(
        "api_keys",
        sa.Column("active_videos", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.execute(
        "UPDATE api_keys SET active_videos = (SELECT count(*) FROM video_jobs"
        " WHERE video_jobs.api_key_id = api_keys.id"
        " AND video_jobs.status IN ('submitting', 'queued', 'in_progress'))"
    )
    create_triggers()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER video_jobs_active_videos ON video_jobs")
        op.execute("DROP FUNCTION reapi_count_active_videos()")
    else:
        for name in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER video_jobs_active_{name}")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("active_videos")

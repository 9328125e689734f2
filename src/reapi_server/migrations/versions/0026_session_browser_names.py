"""web sessions keep the browser's name, not its User-Agent

Revision ID: 0026_session_browser_names
Revises: 0025_schema_compatibility
Create Date: 2026-12-07 12:00:00.000000

The privacy policy says a session records the "browser name" it came from; the column held the
raw User-Agent (up to 200 characters). From this version on it holds the name the sessions list
shows ("Firefox on Linux"), and this migration replaces each stored User-Agent with its name.
The column keeps its name, `user_agent`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from reapi_server.identity.user_agents import NAMES, describe

revision: str = "0026_session_browser_names"
down_revision: str | None = "0025_schema_compatibility"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
#: Values only: the version before runs on it, showing a stored name as "Unknown browser" (it
#: names the User-Agent it expects). Sessions it starts during a rolling upgrade keep their
#: User-Agent until they end (`session_max_days` at most); this version shows them as stored.
backward_compatible = True

_sessions = sa.table("web_sessions", sa.column("id", sa.String), sa.column("user_agent", sa.String))


#: Sessions renamed per statement (by primary key).
_BATCH = 500


def upgrade() -> None:
    """Each row read once, then updated by id, a batch a statement: per distinct User-Agent,
    an update matching on the unindexed column would scan the table once per value (for
    100,000 sessions of 20,000 User-Agents, two billion rows read while the table is locked)."""
    bind = op.get_bind()
    renamed: dict[str, list[str]] = {}
    for session_id, value in bind.execute(sa.select(_sessions.c.id, _sessions.c.user_agent)):
        if value not in NAMES:  # (a name already: upgraded again after a downgrade)
            renamed.setdefault(describe(value), []).append(session_id)
    for name, ids in renamed.items():
        for start in range(0, len(ids), _BATCH):
            batch = ids[start : start + _BATCH]
            bind.execute(
                _sessions.update().where(_sessions.c.id.in_(batch)).values(user_agent=name)
            )


def downgrade() -> None:
    """The User-Agents are gone: nothing to restore (a name is a valid value before, too)."""

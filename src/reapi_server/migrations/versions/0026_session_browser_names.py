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


def upgrade() -> None:
    bind = op.get_bind()
    stored = bind.execute(sa.select(_sessions.c.user_agent).distinct()).scalars().all()
    for value in stored:
        name = describe(value)
        if value not in NAMES:  # (a name already: upgraded again after a downgrade)
            bind.execute(
                _sessions.update().where(_sessions.c.user_agent == value).values(user_agent=name)
            )


def downgrade() -> None:
    """The User-Agents are gone: nothing to restore (a name is a valid value before, too)."""

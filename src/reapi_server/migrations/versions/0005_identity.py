"""identity: users, memberships, web sessions, consents, one-time tokens, sign-in throttle,
mail outbox; accounts.email moves to users

Revision ID: 0005_identity
Revises: 0004_money
Create Date: 2026-12-05 09:30:00.000000

A user is a person, an account is the wallet. Each existing account becomes a user with the
account's email (no password yet: "reset password" sets one, and proves the address) and a
membership `owner` of that account; then `accounts.email` is dropped.

On SQLite, dropping the column rebuilds `accounts` (batch mode); `migrate.upgrade` runs with
foreign keys unenforced so that the rebuild does not cascade into the tables pointing at it.
The rebuild drops the table's triggers with the old copy (0004_money's credit bounds): they are
created again as they were (`_rebuilt`). PostgreSQL alters the table in place, CHECKs and all.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op
from alembic.operations import BatchOperations

revision: str = "0005_identity"
down_revision: str | None = "0004_money"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 500

_accounts = sa.table(
    "accounts",
    sa.column("id", sa.String),
    sa.column("email", sa.String),
    sa.column("created_at", sa.Float),
)
_users = sa.table(
    "users",
    sa.column("id", sa.String),
    sa.column("email", sa.String),
    sa.column("role", sa.String),
    sa.column("created_at", sa.Float),
    sa.column("newsletter", sa.Boolean),
    sa.column("new_device_alerts", sa.Boolean),
)
_memberships = sa.table(
    "memberships",
    sa.column("user_id", sa.String),
    sa.column("account_id", sa.String),
    sa.column("role", sa.String),
    sa.column("created_at", sa.Float),
)


def _create_tables() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("email_verified_at", sa.Float(), nullable=True),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("role", sa.String(length=16), server_default="user", nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("disabled_at", sa.Float(), nullable=True),
        sa.Column("newsletter", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("new_device_alerts", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_table(
        "memberships",
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_memberships_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_memberships_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "account_id", name=op.f("pk_memberships")),
    )
    op.create_index("ix_memberships_account_id", "memberships", ["account_id"])
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("last_seen_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("client_address", sa.String(length=64), nullable=False),
        sa.Column("user_agent", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_web_sessions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_web_sessions_token_hash")),
    )
    op.create_index(op.f("ix_web_sessions_expires_at"), "web_sessions", ["expires_at"])
    op.create_index("ix_web_sessions_user_id", "web_sessions", ["user_id"])
    op.create_table(
        "consents",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("policy_version", sa.String(length=32), nullable=False),
        sa.Column("accepted_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_consents_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consents")),
    )
    op.create_index(op.f("ix_consents_user_id"), "consents", ["user_id"])
    op.create_table(
        "user_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("used_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_tokens_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_user_tokens")),
    )
    op.create_index(op.f("ix_user_tokens_expires_at"), "user_tokens", ["expires_at"])
    op.create_index("ix_user_tokens_user_purpose", "user_tokens", ["user_id", "purpose"])
    op.create_table(
        "auth_throttle",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_started_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_auth_throttle")),
    )
    op.create_index(
        op.f("ix_auth_throttle_window_started_at"), "auth_throttle", ["window_started_at"]
    )
    op.create_table(
        "outbox_messages",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("template", sa.String(length=40), nullable=False),
        sa.Column("to_address", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=True),
        sa.Column("text_body", sa.Text(), nullable=True),
        sa.Column("html_body", sa.Text(), nullable=True),
        sa.Column("headers", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("not_before", sa.Float(), nullable=False),
        sa.Column("last_error", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("sent_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_messages")),
    )
    op.create_index(
        "ix_outbox_messages_status_not_before", "outbox_messages", ["status", "not_before"]
    )
    op.create_index(op.f("ix_outbox_messages_to_address"), "outbox_messages", ["to_address"])


def _accounts_become_users() -> None:
    """Each account: a user with its email, owner of it. Ids are made here (a migration must
    not import the application's code), in batches so a large table is not held in memory."""
    bind = op.get_bind()
    after = ""
    while True:
        rows = bind.execute(
            sa.select(_accounts.c.id, _accounts.c.email, _accounts.c.created_at)
            .where(_accounts.c.id > after)
            .order_by(_accounts.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            return
        users, memberships = [], []
        for account_id, email, created_at in rows:
            user_id = f"user_{secrets.token_hex(12)}"
            users.append(
                {
                    "id": user_id,
                    "email": email.strip().lower(),
                    "role": "user",
                    "created_at": created_at,
                    "newsletter": False,
                    "new_device_alerts": False,
                }
            )
            memberships.append(
                {
                    "user_id": user_id,
                    "account_id": account_id,
                    "role": "owner",
                    "created_at": created_at,
                }
            )
        bind.execute(_users.insert(), users)
        bind.execute(_memberships.insert(), memberships)
        after = rows[-1][0]


def _triggers(table: str) -> dict[str, str]:
    """name → CREATE statement of each SQLite trigger on `table`."""
    rows = op.get_bind().execute(
        sa.text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"),
        {"t": table},
    )
    return {str(name): str(sql) for name, sql in rows}


@contextmanager
def _rebuilt(table: str) -> Iterator[BatchOperations]:
    """`op.batch_alter_table(table)`, keeping the table's triggers: on SQLite the batch copies
    the table and drops the original, and its triggers go with it."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    kept = _triggers(table) if sqlite else {}
    with op.batch_alter_table(table, schema=None) as batch_op:
        yield batch_op
    left = _triggers(table) if sqlite else {}
    for name, statement in sorted(kept.items()):
        if name not in left:
            op.execute(statement)


def upgrade() -> None:
    _create_tables()
    _accounts_become_users()
    with _rebuilt("accounts") as batch_op:
        batch_op.drop_constraint("uq_accounts_email", type_="unique")
        batch_op.drop_column("email")


def downgrade() -> None:
    """accounts.email back from each account's owner (an account without one gets a
    placeholder address, as the column is required); everything identity held is dropped."""
    with _rebuilt("accounts") as batch_op:
        batch_op.add_column(sa.Column("email", sa.String(length=320), nullable=True))
    owner_email = (
        sa.select(_users.c.email)
        .select_from(_users.join(_memberships, _memberships.c.user_id == _users.c.id))
        .where(_memberships.c.account_id == _accounts.c.id, _memberships.c.role == "owner")
        .limit(1)
        .scalar_subquery()
    )
    op.execute(_accounts.update().values(email=owner_email))
    op.execute(
        _accounts.update()
        .where(_accounts.c.email.is_(None))
        .values(email=_accounts.c.id + "@invalid")
    )
    with _rebuilt("accounts") as batch_op:
        batch_op.alter_column("email", existing_type=sa.String(length=320), nullable=False)
        batch_op.create_unique_constraint("uq_accounts_email", ["email"])
    for table in (
        "outbox_messages",
        "auth_throttle",
        "user_tokens",
        "consents",
        "web_sessions",
        "memberships",
        "users",
    ):
        op.drop_table(table)

"""Migrations build exactly the models' schema, and no table can hold a request body."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from reapi_server.migrate import upgrade_sync
from reapi_server.models import Base

BODY_LIKE = {"prompt", "body", "content", "input", "user", "mask", "image", "images", "payload"}


def test_migrations_match_models(tmp_path):
    path = tmp_path / "m.db"
    upgrade_sync(f"sqlite+aiosqlite:///{path}")
    upgrade_sync(f"sqlite+aiosqlite:///{path}")  # idempotent
    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []


def test_no_column_can_hold_a_body(tmp_path):
    path = tmp_path / "m.db"
    upgrade_sync(f"sqlite+aiosqlite:///{path}")
    inspector = inspect(create_engine(f"sqlite:///{path}"))
    for table in inspector.get_table_names():
        names = {c["name"] for c in inspector.get_columns(table)}
        assert not names & BODY_LIKE, (table, names & BODY_LIKE)

"""Schema migrations (Alembic), run programmatically: `reapi-server migrate` and at start-up."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["alembic_config", "upgrade", "upgrade_sync"]


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", "reapi_server:migrations")
    if url:
        config.set_main_option("sqlalchemy.url", url)
    return config


def upgrade_sync(url: str) -> None:
    """Bring the database at `url` to the newest schema (outside any event loop)."""
    command.upgrade(alembic_config(url), "head")


async def upgrade(engine: AsyncEngine) -> None:
    """Bring the database behind `engine` to the newest schema (inside an event loop)."""

    def _run(connection: object) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")

    async with engine.begin() as connection:
        await connection.run_sync(_run)

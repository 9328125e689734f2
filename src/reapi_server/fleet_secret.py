"""The fleet's one secret. Idempotency fingerprints, and every other keyed hash or signed token,
use a secret that all instances on one database share, so that a request retried on another
instance is recognised there.

- Given by the operator (`secret_key`, or `secret_key_file`): the database keeps only a check
  value of it (`verifier`), never the secret. Recommended: a copy of the database then holds
  nothing that keys its hashes.
- Not given: the first instance to start generates one and stores it in the database; the others
  read it from there.

On PostgreSQL an instance whose configured secret disagrees with the database's refuses to start:
it would fingerprint requests differently from the rest of the fleet. On SQLite (one host) a newly
configured secret replaces the stored one, with a warning. `reapi-server migrate --adopt-secret`
makes the configured secret the database's on purpose (idempotency keys of the last day are then
not recognised).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.exc import IntegrityError

from .config import ConfigError, Settings
from .db import Database
from .migrate import upgrade
from .models import FleetSecret

__all__ = [
    "SecretDisagrees",
    "resolve",
    "resolve_blocking",
    "resolve_for",
    "secret_of",
    "verifier",
]

log = logging.getLogger("reapi_server")

_ROW = 1
_VERIFIED_TEXT = b"reapi/fleet-secret-verifier"
#: What an earlier version generated into the data dir (SQLite installations keep it).
LEGACY_FILE = "secret.key"


class SecretDisagrees(ConfigError):
    """The configured secret is not the one the rest of the fleet uses."""


def verifier(secret: bytes) -> str:
    return hmac.new(secret, _VERIFIED_TEXT, hashlib.sha256).hexdigest()


async def resolve(
    db: Database,
    configured: bytes | None,
    *,
    legacy: bytes | None = None,
    adopt: bool = False,
    now: float | None = None,
) -> bytes:
    """The secret this instance must use: written to the database by the first instance,
    checked against it by every other. `legacy`: an earlier version's generated secret, kept
    when the database has none yet."""
    for attempt in (1, 2):
        try:
            async with db.write() as session:
                row = await session.get(FleetSecret, _ROW, with_for_update=True)
                if row is None:
                    secret = configured or legacy or secrets.token_hex(32).encode()
                    session.add(
                        FleetSecret(
                            id=_ROW,
                            secret=None if configured else secret.decode(),
                            verifier=verifier(secret),
                            created_at=time.time() if now is None else now,
                        )
                    )
                    return secret
                if configured is None:
                    if row.secret is None:
                        raise SecretDisagrees(
                            "the database's secret was given by the operator: set secret_key "
                            "(REAPI_SECRET_KEY or REAPI_SECRET_KEY_FILE) to the same value"
                        )
                    return row.secret.encode()
                if hmac.compare_digest(row.verifier, verifier(configured)):
                    return configured
                if not adopt and db.is_postgres:
                    raise SecretDisagrees(
                        "secret_key disagrees with the secret the other instances on this "
                        "database use: give every instance the same secret_key, or run "
                        "`reapi-server migrate --adopt-secret` to replace the database's"
                    )
                log.warning("the configured secret replaces the database's")
                row.secret = None
                row.verifier = verifier(configured)
                return configured
        except IntegrityError:  # another instance wrote the first row a moment ago
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _configured(settings: Settings) -> bytes | None:
    key = settings.secret_key
    return None if key is None else key.get_secret_value().encode()


def _legacy(settings: Settings, db: Database) -> bytes | None:
    if db.is_postgres:  # each instance had its own: none of them is the fleet's
        return None
    try:
        return (settings.data_dir / LEGACY_FILE).read_bytes().strip() or None
    except FileNotFoundError:
        return None


async def secret_of(db: Database, settings: Settings) -> bytes:
    """The fleet's secret for these settings, on an open database (administration commands
    that key what the servers key: unsubscribe links, say)."""
    return await resolve(db, _configured(settings), legacy=_legacy(settings, db))


async def resolve_for(settings: Settings, *, migrate: bool = False, adopt: bool = False) -> bytes:
    """Open the settings' database (migrating it first if asked), resolve, close it."""
    settings.ensure_database_dir()
    # A migration's statements may take long on big tables: no statement timeout for them.
    db = Database(
        settings.resolved_database_url, timeout=None if migrate else settings.database_timeout
    )
    try:
        if migrate:
            await upgrade(db)
        return await resolve(db, _configured(settings), legacy=_legacy(settings, db), adopt=adopt)
    finally:
        await db.dispose()


def resolve_blocking(settings: Settings, *, migrate: bool = False) -> bytes:
    """`resolve_for` from synchronous code, whether or not an event loop runs in this thread
    (the app is built before it serves, sometimes from inside a running loop)."""
    with ThreadPoolExecutor(1, thread_name_prefix="reapi-secret") as pool:
        return pool.submit(asyncio.run, resolve_for(settings, migrate=migrate)).result()

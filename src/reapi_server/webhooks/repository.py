"""All SQL about webhooks: a key's default URL and signing salts, and the deliveries outbox.

A sender claims due deliveries under a lease (`lease_owner`, with `next_attempt_at` pushed to
when the lease runs out) and records each outcome only while it still holds that lease, so two
processes never send one attempt twice, and a process that died mid-attempt leaves its delivery
to the next sender once the lease is over.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ..models import ApiKey, WebhookDelivery
from .signing import KeySalts

__all__ = [
    "claim_due",
    "clear_defaults",
    "delete_expired",
    "delete_for_account",
    "delete_for_video",
    "disable_default",
    "finish",
    "hand_back",
    "insert",
    "key_salts",
    "rotate_salt",
    "set_default",
    "set_salt_if_missing",
    "stop_pending_to",
]


async def _changed(session: AsyncSession, statement: Any) -> int:
    # On the Core connection: an ORM-enabled UPDATE would also try to sync loaded objects.
    result = await (await session.connection()).execute(statement)
    return int(result.rowcount)


def _key(key_id: str, account_id: str | None) -> list[Any]:
    conditions = [ApiKey.id == key_id]
    if account_id is not None:
        conditions.append(ApiKey.account_id == account_id)
    return conditions


# -- keys ----------------------------------------------------------------------------------------
async def set_default(
    session: AsyncSession, key_id: str, url: str | None, *, account_id: str | None = None
) -> bool:
    """Set (or clear) a key's default webhook URL; a disabled one is enabled again."""
    statement = (
        update(ApiKey)
        .where(*_key(key_id, account_id))
        .values(webhook_url=url, webhook_disabled_at=None)
    )
    return await _changed(session, statement) == 1


async def disable_default(session: AsyncSession, key_id: str, url: str, now: float) -> None:
    """The receiver at `url` answered 410 Gone: the key stops using it as its default."""
    await _changed(
        session,
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.webhook_url == url, ApiKey.webhook_disabled_at.is_(None))
        .values(webhook_disabled_at=now),
    )


async def key_salts(
    session: AsyncSession, key_id: str, *, account_id: str | None = None
) -> tuple[bool, KeySalts | None]:
    """(whether the key exists, its salts when it has a salt yet)."""
    row = (
        await session.execute(
            select(
                ApiKey.webhook_salt, ApiKey.webhook_previous_salt, ApiKey.webhook_rotated_at
            ).where(*_key(key_id, account_id))
        )
    ).first()
    if row is None:
        return False, None
    salt, previous, rotated_at = row
    return True, KeySalts(key_id, salt, previous, rotated_at) if salt else None


async def clear_defaults(session: AsyncSession, account_id: str) -> int:
    """Forget the default URL of every key of the account."""
    return await _changed(
        session,
        update(ApiKey)
        .where(ApiKey.account_id == account_id, ApiKey.webhook_url.is_not(None))
        .values(webhook_url=None, webhook_disabled_at=None),
    )


async def set_salt_if_missing(session: AsyncSession, key_id: str, salt: str) -> None:
    """First use: a salt, unless another process gave the key one first (then that stands)."""
    await _changed(
        session,
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.webhook_salt.is_(None))
        .values(webhook_salt=salt),
    )


async def rotate_salt(session: AsyncSession, key_id: str, salt: str, now: float) -> bool:
    statement = (
        update(ApiKey)
        .where(ApiKey.id == key_id)
        .values(
            webhook_previous_salt=ApiKey.webhook_salt, webhook_salt=salt, webhook_rotated_at=now
        )
    )
    return await _changed(session, statement) == 1


# -- deliveries ----------------------------------------------------------------------------------
async def insert(session: AsyncSession, delivery: WebhookDelivery) -> None:
    session.add(delivery)
    await session.flush()


async def claim_due(
    session: AsyncSession, owner: str, now: float, lease_until: float, limit: int
) -> list[WebhookDelivery]:
    """Take up to `limit` pending deliveries that are due (or whose sender's lease ran out),
    each counted as one more attempt. PostgreSQL: SKIP LOCKED keeps concurrent senders on
    disjoint rows; SQLite: the write transaction is the one writer."""
    due = await session.execute(
        select(WebhookDelivery.id)
        .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list(due.scalars())
    if not ids:
        return []
    await _changed(
        session,
        update(WebhookDelivery)
        .where(WebhookDelivery.id.in_(ids))
        .values(
            lease_owner=owner,
            next_attempt_at=lease_until,
            attempts=WebhookDelivery.attempts + 1,
        ),
    )
    result = await session.execute(
        select(WebhookDelivery)
        .where(WebhookDelivery.id.in_(ids))
        .execution_options(populate_existing=True)
    )
    return list(result.scalars())


async def finish(session: AsyncSession, delivery_id: str, owner: str, **values: Any) -> bool:
    """Record an attempt's outcome, only while `owner` still holds the delivery's lease."""
    statement = (
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.lease_owner == owner,
            WebhookDelivery.status == "pending",
        )
        .values(lease_owner=None, **values)
    )
    return await _changed(session, statement) == 1


async def hand_back(session: AsyncSession, owner: str, now: float) -> int:
    """The deliveries `owner` holds, due now for any sender (its process stops)."""
    return await _changed(
        session,
        update(WebhookDelivery)
        .where(WebhookDelivery.lease_owner == owner, WebhookDelivery.status == "pending")
        .values(lease_owner=None, next_attempt_at=now),
    )


async def stop_pending_to(
    session: AsyncSession, api_key_id: str | None, url: str, now: float
) -> int:
    """Give up the other pending deliveries of a key to a URL that answered 410 Gone (those a
    sender holds right now too: their outcome is then not recorded)."""
    return await _changed(
        session,
        update(WebhookDelivery)
        .where(
            WebhookDelivery.api_key_id == api_key_id,
            WebhookDelivery.url == url,
            WebhookDelivery.status == "pending",
        )
        .values(status="gone", lease_owner=None, finished_at=now),
    )


async def delete_expired(session: AsyncSession, cutoff: float, limit: int) -> int:
    batch = select(WebhookDelivery.id).where(WebhookDelivery.created_at < cutoff).limit(limit)
    return await _changed(
        session, delete(WebhookDelivery).where(WebhookDelivery.id.in_(batch.scalar_subquery()))
    )


async def delete_for_video(session: AsyncSession, video_id: str) -> int:
    return await _changed(
        session, delete(WebhookDelivery).where(WebhookDelivery.video_id == video_id)
    )


async def delete_for_account(session: AsyncSession, account_id: str) -> int:
    return await _changed(
        session, delete(WebhookDelivery).where(WebhookDelivery.account_id == account_id)
    )


async def all_for_account(session: AsyncSession, account_id: str) -> list[WebhookDelivery]:
    """Every delivery of an account, oldest first (for its owner's data export)."""
    result = await session.execute(
        select(WebhookDelivery)
        .where(WebhookDelivery.account_id == account_id)
        .order_by(WebhookDelivery.created_at, WebhookDelivery.id)
    )
    return list(result.scalars())

"""All SQL of identity: users, web sessions, one-time tokens, consents, the sign-in throttle.
Nothing here commits; the caller's unit of work does."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import CursorResult, case, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from ..ids import new_id
from ..models import AuthThrottle, Consent, User, UserToken, WebSession

__all__ = [
    "clear_throttle",
    "consume_token",
    "count_users",
    "delete_expired_sessions",
    "delete_sessions",
    "delete_stale_throttles",
    "delete_stale_tokens",
    "delete_unused_tokens",
    "delete_user",
    "find_session",
    "find_token",
    "find_user_by_email",
    "get_user",
    "insert_consents",
    "insert_session",
    "insert_token",
    "insert_user",
    "list_consents",
    "list_sessions",
    "list_users",
    "mark_email_verified",
    "newest_users",
    "record_attempt",
    "search_users",
    "set_password_hash",
    "set_role",
    "throttle_rows",
    "touch_session",
]


def _changed(result: object) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


# -- users ---------------------------------------------------------------------------------------


async def insert_user(
    session: AsyncSession,
    *,
    email: str,
    password_hash: str | None,
    now: float,
    newsletter: bool = False,
) -> User:
    user = User(
        id=new_id("user"),
        email=email,
        password_hash=password_hash,
        role="user",
        created_at=now,
        newsletter=newsletter,
        new_device_alerts=False,
    )
    session.add(user)
    await session.flush()
    return user


async def get_user(session: AsyncSession, user_id: str) -> User | None:
    return await session.get(User, user_id)


async def find_user_by_email(session: AsyncSession, email: str) -> User | None:
    result = await session.execute(select(User).where(User.email == email))
    return result.scalar_one_or_none()


async def list_users(session: AsyncSession, *, limit: int, offset: int = 0) -> list[User]:
    result = await session.execute(
        select(User).order_by(User.created_at, User.id).limit(limit).offset(offset)
    )
    return list(result.scalars())


async def count_users(session: AsyncSession, *, role: str | None = None) -> int:
    query = select(func.count()).select_from(User)
    if role is not None:
        query = query.where(User.role == role)
    return int((await session.execute(query)).scalar_one())


async def newest_users(session: AsyncSession, *, limit: int, offset: int = 0) -> list[User]:
    result = await session.execute(
        select(User).order_by(User.created_at.desc(), User.id).limit(limit).offset(offset)
    )
    return list(result.scalars())


async def search_users(session: AsyncSession, fragment: str, *, limit: int) -> list[User]:
    """Users whose email contains `fragment` (any case; `%` and `_` match only themselves)."""
    escaped = fragment.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    result = await session.execute(
        select(User)
        .where(User.email.like(f"%{escaped}%", escape="\\"))
        .order_by(User.email)
        .limit(limit)
    )
    return list(result.scalars())


async def set_role(session: AsyncSession, user_id: str, role: str) -> bool:
    """False when the user already has this role (or does not exist)."""
    result = await session.execute(
        update(User).where(User.id == user_id, User.role != role).values(role=role)
    )
    return _changed(result) == 1


async def set_password_hash(
    session: AsyncSession, user_id: str, new_hash: str, *, replacing: str | None = None
) -> bool:
    """Set the hash; with `replacing`, only if the stored hash is still that one (a rehash at
    sign-in must not undo a password change that happened meanwhile)."""
    statement = update(User).where(User.id == user_id).values(password_hash=new_hash)
    if replacing is not None:
        statement = statement.where(User.password_hash == replacing)
    return _changed(await session.execute(statement)) == 1


async def mark_email_verified(session: AsyncSession, user_id: str, email: str, now: float) -> bool:
    """Verified only if the user's address is still the one the token was sent to."""
    result = await session.execute(
        update(User)
        .where(User.id == user_id, User.email == email)
        .values(email_verified_at=func.coalesce(User.email_verified_at, now))
    )
    return _changed(result) == 1


async def delete_user(session: AsyncSession, user_id: str) -> bool:
    """The user row and, by cascade, its sessions, tokens, consents and memberships."""
    # Explicit deletes first: SQLite enforces ON DELETE CASCADE only with foreign keys on.
    for model in (WebSession, UserToken, Consent):
        await session.execute(delete(model).where(model.user_id == user_id))
    return _changed(await session.execute(delete(User).where(User.id == user_id))) == 1


# -- web sessions --------------------------------------------------------------------------------


async def insert_session(
    session: AsyncSession,
    *,
    token_hash: str,
    user_id: str,
    now: float,
    expires_at: float,
    client_address: str,
    user_agent: str,
) -> WebSession:
    row = WebSession(
        id=new_id("sess"),
        token_hash=token_hash,
        user_id=user_id,
        created_at=now,
        last_seen_at=now,
        expires_at=expires_at,
        client_address=client_address,
        user_agent=user_agent,
    )
    session.add(row)
    await session.flush()
    return row


async def find_session(session: AsyncSession, token_hash: str) -> tuple[WebSession, User] | None:
    result = await session.execute(
        select(WebSession, User)
        .join(User, User.id == WebSession.user_id)
        .where(WebSession.token_hash == token_hash)
    )
    row = result.first()
    return None if row is None else (row[0], row[1])


async def touch_session(session: AsyncSession, session_id: str, now: float) -> None:
    await session.execute(
        update(WebSession).where(WebSession.id == session_id).values(last_seen_at=now)
    )


async def list_sessions(session: AsyncSession, user_id: str) -> list[WebSession]:
    result = await session.execute(
        select(WebSession)
        .where(WebSession.user_id == user_id)
        .order_by(WebSession.last_seen_at.desc())
    )
    return list(result.scalars())


async def delete_sessions(
    session: AsyncSession,
    *,
    user_id: str | None = None,
    session_id: str | None = None,
    token_hash: str | None = None,
    keep_id: str | None = None,
) -> int:
    """Delete the sessions matching every condition given (at least one)."""
    conditions = []
    if user_id is not None:
        conditions.append(WebSession.user_id == user_id)
    if session_id is not None:
        conditions.append(WebSession.id == session_id)
    if token_hash is not None:
        conditions.append(WebSession.token_hash == token_hash)
    assert conditions, "refusing to delete every session"
    if keep_id is not None:
        conditions.append(WebSession.id != keep_id)
    return _changed(await session.execute(delete(WebSession).where(*conditions)))


async def delete_expired_sessions(session: AsyncSession, *, now: float, idle_cutoff: float) -> int:
    result = await session.execute(
        delete(WebSession).where(
            (WebSession.expires_at <= now) | (WebSession.last_seen_at <= idle_cutoff)
        )
    )
    return _changed(result)


# -- one-time tokens -----------------------------------------------------------------------------


async def insert_token(
    session: AsyncSession,
    *,
    token_hash: str,
    user_id: str,
    purpose: str,
    email: str,
    now: float,
    expires_at: float,
) -> None:
    session.add(
        UserToken(
            token_hash=token_hash,
            user_id=user_id,
            purpose=purpose,
            email=email,
            created_at=now,
            expires_at=expires_at,
        )
    )
    await session.flush()


async def find_token(
    session: AsyncSession, token_hash: str, purpose: str, now: float
) -> UserToken | None:
    """The token if it is for `purpose`, unused and unexpired."""
    result = await session.execute(
        select(UserToken).where(
            UserToken.token_hash == token_hash,
            UserToken.purpose == purpose,
            UserToken.used_at.is_(None),
            UserToken.expires_at > now,
        )
    )
    return result.scalar_one_or_none()


async def consume_token(
    session: AsyncSession, token_hash: str, purpose: str, now: float
) -> UserToken | None:
    """Mark the token used, once: of two concurrent uses, one gets the token, one None."""
    result = await session.execute(
        update(UserToken)
        .where(
            UserToken.token_hash == token_hash,
            UserToken.purpose == purpose,
            UserToken.used_at.is_(None),
            UserToken.expires_at > now,
        )
        .values(used_at=now)
    )
    if _changed(result) != 1:
        return None
    return await session.get(UserToken, token_hash, populate_existing=True)


async def delete_unused_tokens(session: AsyncSession, user_id: str, purpose: str) -> None:
    await session.execute(
        delete(UserToken).where(
            UserToken.user_id == user_id,
            UserToken.purpose == purpose,
            UserToken.used_at.is_(None),
        )
    )


async def delete_stale_tokens(session: AsyncSession, cutoff: float) -> int:
    """Tokens expired before `cutoff` (used ones included: their use is on the user row)."""
    return _changed(await session.execute(delete(UserToken).where(UserToken.expires_at <= cutoff)))


# -- consents ------------------------------------------------------------------------------------


async def insert_consents(
    session: AsyncSession, user_id: str, versions: Iterable[tuple[str, str]], now: float
) -> None:
    session.add_all(
        Consent(user_id=user_id, kind=kind, policy_version=version, accepted_at=now)
        for kind, version in versions
    )
    await session.flush()


async def list_consents(session: AsyncSession, user_id: str) -> list[Consent]:
    result = await session.execute(
        select(Consent).where(Consent.user_id == user_id).order_by(Consent.accepted_at)
    )
    return list(result.scalars())


# -- throttle ------------------------------------------------------------------------------------


async def throttle_rows(session: AsyncSession, keys: Sequence[str]) -> dict[str, AuthThrottle]:
    result = await session.execute(select(AuthThrottle).where(AuthThrottle.key.in_(keys)))
    return {row.key: row for row in result.scalars()}


async def record_attempt(session: AsyncSession, key: str, *, window: float, now: float) -> None:
    """One more attempt under `key`: counted in the running window, or the first of a new
    window when the last one has ended. One statement, safe against concurrent attempts."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(AuthThrottle).values(key=key, failures=1, window_started_at=now)
    running = AuthThrottle.window_started_at > now - window
    statement = statement.on_conflict_do_update(
        index_elements=[AuthThrottle.key],
        set_={
            "failures": case((running, AuthThrottle.failures + 1), else_=1),
            "window_started_at": case((running, AuthThrottle.window_started_at), else_=now),
        },
    )
    await session.execute(statement)


async def clear_throttle(session: AsyncSession, keys: Sequence[str]) -> None:
    await session.execute(delete(AuthThrottle).where(AuthThrottle.key.in_(keys)))


async def delete_stale_throttles(session: AsyncSession, cutoff: float) -> int:
    result = await session.execute(
        delete(AuthThrottle).where(AuthThrottle.window_started_at <= cutoff)
    )
    return _changed(result)

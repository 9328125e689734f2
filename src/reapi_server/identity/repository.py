"""All SQL of identity: users, web sessions, one-time tokens, consents, the sign-in throttle.
Nothing here commits; the caller's unit of work does."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import CursorResult, case, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ..ids import new_id
from ..models import (
    AuthThrottle,
    BackupCode,
    Consent,
    KnownDevice,
    NoticeDelivery,
    OAuthIdentity,
    OAuthRequest,
    User,
    UserToken,
    WebSession,
)
from ..upserts import conflict_insert

__all__ = [
    "clear_throttle",
    "confirm_session",
    "consent_kinds",
    "consents_given",
    "consume_token",
    "count_backup_codes_left",
    "count_users",
    "delete_backup_codes",
    "delete_expired_sessions",
    "delete_known_devices",
    "delete_sessions",
    "delete_stale_devices",
    "delete_stale_throttles",
    "delete_stale_tokens",
    "delete_unused_tokens",
    "delete_user",
    "device_last_seen",
    "enable_totp",
    "find_session",
    "find_token",
    "find_user_by_email",
    "get_user",
    "insert_consents",
    "insert_session",
    "insert_token",
    "insert_user",
    "list_backup_codes",
    "list_consents",
    "list_known_devices",
    "list_sessions",
    "list_tokens",
    "list_users",
    "mark_email_verified",
    "newest_users",
    "record_attempt",
    "replace_backup_codes",
    "return_attempt",
    "search_users",
    "set_email",
    "set_new_device_alerts",
    "set_password_hash",
    "set_role",
    "set_totp_secret",
    "take_attempt",
    "throttle_rows",
    "touch_session",
    "upsert_known_device",
    "use_backup_code",
    "use_totp_step",
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


async def set_email(session: AsyncSession, user_id: str, *, old: str, new: str, now: float) -> bool:
    """Change the address, if it is still `old`; the new one counts as verified (the link
    that changes it went there). IntegrityError if another user has taken it meanwhile."""
    result = await session.execute(
        update(User)
        .where(User.id == user_id, User.email == old)
        .values(email=new, email_verified_at=now)
    )
    return _changed(result) == 1


async def set_new_device_alerts(session: AsyncSession, user_id: str, on: bool) -> None:
    await session.execute(update(User).where(User.id == user_id).values(new_device_alerts=on))


# -- two-factor authentication -------------------------------------------------------------------


async def set_totp_secret(session: AsyncSession, user_id: str, sealed: str | None) -> None:
    """Store a new (not yet enabled) secret, or none: two-factor authentication off."""
    await session.execute(
        update(User)
        .where(User.id == user_id)
        .values(totp_secret=sealed, totp_enabled_at=None, totp_last_step=None)
    )


async def enable_totp(session: AsyncSession, user_id: str, *, sealed: str, now: float) -> bool:
    """Turn two-factor authentication on with the secret the user confirmed (if it is still
    the stored one and not on already)."""
    result = await session.execute(
        update(User)
        .where(User.id == user_id, User.totp_secret == sealed, User.totp_enabled_at.is_(None))
        .values(totp_enabled_at=now)
    )
    return _changed(result) == 1


async def use_totp_step(session: AsyncSession, user_id: str, step: int) -> bool:
    """Record `step` as used, if it is later than the last used one: of two uses of the same
    code (even concurrent), one wins."""
    result = await session.execute(
        update(User)
        .where(
            User.id == user_id,
            (User.totp_last_step.is_(None)) | (User.totp_last_step < step),
        )
        .values(totp_last_step=step)
    )
    return _changed(result) == 1


async def replace_backup_codes(
    session: AsyncSession, user_id: str, code_hashes: Iterable[str], now: float
) -> None:
    await session.execute(delete(BackupCode).where(BackupCode.user_id == user_id))
    session.add_all(BackupCode(user_id=user_id, code_hash=h, created_at=now) for h in code_hashes)
    await session.flush()


async def use_backup_code(session: AsyncSession, user_id: str, code_hash: str, now: float) -> bool:
    """Mark the code used, once."""
    result = await session.execute(
        update(BackupCode)
        .where(
            BackupCode.user_id == user_id,
            BackupCode.code_hash == code_hash,
            BackupCode.used_at.is_(None),
        )
        .values(used_at=now)
    )
    return _changed(result) == 1


async def count_backup_codes_left(session: AsyncSession, user_id: str) -> int:
    result = await session.execute(
        select(func.count())
        .select_from(BackupCode)
        .where(BackupCode.user_id == user_id, BackupCode.used_at.is_(None))
    )
    return int(result.scalar_one())


async def list_backup_codes(session: AsyncSession, user_id: str) -> list[BackupCode]:
    result = await session.execute(
        select(BackupCode)
        .where(BackupCode.user_id == user_id)
        .order_by(BackupCode.created_at, BackupCode.used_at)
    )
    return list(result.scalars())


async def delete_backup_codes(session: AsyncSession, user_id: str) -> None:
    await session.execute(delete(BackupCode).where(BackupCode.user_id == user_id))


# -- known devices -------------------------------------------------------------------------------


async def list_known_devices(session: AsyncSession, user_id: str) -> list[KnownDevice]:
    result = await session.execute(
        select(KnownDevice)
        .where(KnownDevice.user_id == user_id)
        .order_by(KnownDevice.first_seen_at, KnownDevice.device_hash)
    )
    return list(result.scalars())


async def device_last_seen(session: AsyncSession, user_id: str, device_hash: str) -> float | None:
    result = await session.execute(
        select(KnownDevice.last_seen_at).where(
            KnownDevice.user_id == user_id, KnownDevice.device_hash == device_hash
        )
    )
    return result.scalar_one_or_none()


async def upsert_known_device(
    session: AsyncSession, user_id: str, device_hash: str, now: float
) -> None:
    """Seen now; a device forgotten (unseen too long) starts again as first seen now."""
    insert = conflict_insert(session)
    statement = insert(KnownDevice).values(
        user_id=user_id, device_hash=device_hash, first_seen_at=now, last_seen_at=now
    )
    statement = statement.on_conflict_do_update(
        index_elements=[KnownDevice.user_id, KnownDevice.device_hash],
        set_={"last_seen_at": now},
    )
    await session.execute(statement)


async def delete_known_devices(session: AsyncSession, user_id: str) -> None:
    await session.execute(delete(KnownDevice).where(KnownDevice.user_id == user_id))


async def delete_stale_devices(session: AsyncSession, cutoff: float) -> int:
    result = await session.execute(delete(KnownDevice).where(KnownDevice.last_seen_at <= cutoff))
    return _changed(result)


async def delete_user(session: AsyncSession, user_id: str) -> bool:
    """The user row and, by cascade, its sessions, tokens, consents, backup codes, known
    devices, provider identities and sign-ins under way, notice deliveries and memberships."""
    # Explicit deletes first: SQLite enforces ON DELETE CASCADE only with foreign keys on.
    for model in (
        WebSession,
        UserToken,
        Consent,
        BackupCode,
        KnownDevice,
        OAuthIdentity,
        OAuthRequest,
        NoticeDelivery,
    ):
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
    browser: str,
    awaiting_second_factor: bool = False,
) -> WebSession:
    row = WebSession(
        id=new_id("sess"),
        token_hash=token_hash,
        user_id=user_id,
        created_at=now,
        last_seen_at=now,
        expires_at=expires_at,
        client_address=client_address,
        browser=browser,
        awaiting_second_factor=awaiting_second_factor,
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


async def confirm_session(session: AsyncSession, session_id: str, now: float) -> None:
    """The session's person has just confirmed who they are (step-up)."""
    await session.execute(
        update(WebSession).where(WebSession.id == session_id).values(confirmed_at=now)
    )


async def list_sessions(session: AsyncSession, user_id: str) -> list[WebSession]:
    """The user's signed-in sessions (not those still waiting for a second factor)."""
    result = await session.execute(
        select(WebSession)
        .where(WebSession.user_id == user_id, WebSession.awaiting_second_factor.is_(False))
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


async def delete_unused_tokens(
    session: AsyncSession, user_id: str, purpose: str | None = None
) -> None:
    """The user's unused tokens of `purpose` (of every purpose when None)."""
    conditions = [UserToken.user_id == user_id, UserToken.used_at.is_(None)]
    if purpose is not None:
        conditions.append(UserToken.purpose == purpose)
    await session.execute(delete(UserToken).where(*conditions))


async def list_tokens(session: AsyncSession, user_id: str) -> list[UserToken]:
    result = await session.execute(
        select(UserToken).where(UserToken.user_id == user_id).order_by(UserToken.created_at)
    )
    return list(result.scalars())


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


async def consent_kinds(session: AsyncSession, user_id: str) -> set[str]:
    """The kinds of consent the user has given (any version)."""
    result = await session.execute(
        select(Consent.kind).where(Consent.user_id == user_id).distinct()
    )
    return set(result.scalars())


async def consents_given(session: AsyncSession, user_id: str) -> set[tuple[str, str]]:
    """(kind, version) of every consent the user has given: a policy accepted in an older
    version than the current one is not accepted."""
    result = await session.execute(
        select(Consent.kind, Consent.policy_version).where(Consent.user_id == user_id).distinct()
    )
    return {(kind, version) for kind, version in result.all()}


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
    await session.execute(_counted(session, key, window=window, now=now, limit=None))


async def take_attempt(
    session: AsyncSession, key: str, *, limit: int, window: float, now: float
) -> bool:
    """Count one more attempt under `key` unless it is at `limit` in its running window: True
    when counted. The check and the count are one statement, so attempts at once cannot all
    read "not blocked" first."""
    counted = _counted(session, key, window=window, now=now, limit=limit)
    return (await session.execute(counted.returning(AuthThrottle.key))).first() is not None


def _counted(
    session: AsyncSession, key: str, *, window: float, now: float, limit: int | None
) -> Any:
    """The upsert that counts one attempt under `key` (the first of a new window when the last
    one ended); with `limit`, only while the running window is under it."""
    insert = conflict_insert(session)
    statement = insert(AuthThrottle).values(key=key, failures=1, window_started_at=now)
    running = AuthThrottle.window_started_at > now - window
    return statement.on_conflict_do_update(
        index_elements=[AuthThrottle.key],
        set_={
            "failures": case((running, AuthThrottle.failures + 1), else_=1),
            "window_started_at": case((running, AuthThrottle.window_started_at), else_=now),
        },
        where=None if limit is None else ~running | (AuthThrottle.failures < limit),
    )


async def return_attempt(session: AsyncSession, key: str) -> None:
    """Un-count one attempt `take_attempt` counted (it succeeded)."""
    await session.execute(
        update(AuthThrottle)
        .where(AuthThrottle.key == key, AuthThrottle.failures > 0)
        .values(failures=AuthThrottle.failures - 1)
    )


async def clear_throttle(session: AsyncSession, keys: Sequence[str]) -> None:
    await session.execute(delete(AuthThrottle).where(AuthThrottle.key.in_(keys)))


async def delete_stale_throttles(session: AsyncSession, cutoff: float) -> int:
    result = await session.execute(
        delete(AuthThrottle).where(AuthThrottle.window_started_at <= cutoff)
    )
    return _changed(result)

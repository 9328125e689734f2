"""People and how they sign in. A user is a person; the money hangs from an account (the
wallet), which a user reaches through a membership. Secrets are never stored as given: session
ids and one-time tokens as SHA-256, passwords as argon2id hashes."""

from __future__ import annotations

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base

__all__ = [
    "AuthThrottle",
    "BackupCode",
    "Consent",
    "KnownDevice",
    "Membership",
    "User",
    "UserToken",
    "WebSession",
]


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    #: Normalised (trimmed, lower case).
    email: Mapped[str] = mapped_column(String(320), unique=True)
    email_verified_at: Mapped[float | None] = mapped_column(Float, default=None)
    #: argon2id; None for a user who has no password yet (operator-created, or OAuth only).
    password_hash: Mapped[str | None] = mapped_column(String(200), default=None)
    #: user | admin
    role: Mapped[str] = mapped_column(String(16), default="user", server_default="user")
    created_at: Mapped[float] = mapped_column(Float)
    disabled_at: Mapped[float | None] = mapped_column(Float, default=None)
    # Notification settings (the newsletter and sign-in alerts read them).
    newsletter: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    new_device_alerts: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Two-factor authentication (TOTP). The secret is AES-GCM encrypted under a key derived
    # from the installation secret, bound to this user's id; it is set at enrolment and counts
    # only once `totp_enabled_at` is (a code from the app confirmed it).
    totp_secret: Mapped[str | None] = mapped_column(String(200), default=None)
    totp_enabled_at: Mapped[float | None] = mapped_column(Float, default=None)
    #: The last 30-second step whose code was accepted: a code works once, never again.
    totp_last_step: Mapped[int | None] = mapped_column(Integer, default=None)
    #: IANA name; the dashboard shows times and groups usage by day in it.
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")


class Membership(Base):
    """A user's place in an account. A user owns one account today; the table lets teams come
    later without touching the money tables."""

    __tablename__ = "memberships"
    __table_args__ = (Index("ix_memberships_account_id", "account_id"),)

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    # No cascade from accounts: an account with money history is never deleted under a user.
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    #: owner
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[float] = mapped_column(Float)


class WebSession(Base):
    """A signed-in browser. Its cookie holds a random id; only the id's SHA-256 is stored."""

    __tablename__ = "web_sessions"
    __table_args__ = (Index("ix_web_sessions_user_id", "user_id"),)

    #: A public handle (for "end this session"), not the cookie's secret.
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[float] = mapped_column(Float)
    last_seen_at: Mapped[float] = mapped_column(Float)
    #: The absolute end; the idle end is `last_seen_at` plus the idle limit.
    expires_at: Mapped[float] = mapped_column(Float, index=True)
    client_address: Mapped[str] = mapped_column(String(64), default="")
    #: The browser's name ("Firefox on Linux", `identity.user_agents.describe`), never its
    #: User-Agent. The column kept its old name (`user_agent`, which held the User-Agent
    #: before migration 0026) so that the version before it runs on the schema.
    browser: Mapped[str] = mapped_column("user_agent", String(200), default="")
    #: The password (or provider) was right but the second factor is still due: this session
    #: reaches the code page only, and ends in minutes.
    awaiting_second_factor: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    #: When its person last confirmed who they are (step-up, "sudo mode"); None: never, the
    #: sign-in (`created_at`) stands for it.
    confirmed_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class Consent(Base):
    """What a user confirmed at sign-up (or later): the kind, the policy version, when."""

    __tablename__ = "consents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    #: age_16_plus | terms | privacy
    kind: Mapped[str] = mapped_column(String(32))
    policy_version: Mapped[str] = mapped_column(String(32))
    accepted_at: Mapped[float] = mapped_column(Float)


class UserToken(Base):
    """A one-time token sent by mail (verify the email, reset the password): stored as its
    SHA-256, bound to one purpose and one email address, single use, expiring."""

    __tablename__ = "user_tokens"
    __table_args__ = (Index("ix_user_tokens_user_purpose", "user_id", "purpose"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    #: verify_email | reset_password | change_email
    purpose: Mapped[str] = mapped_column(String(32))
    #: The address the token was sent to: verifying proves control of this one only.
    email: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float, index=True)
    used_at: Mapped[float | None] = mapped_column(Float, default=None)


class AuthThrottle(Base):
    """Failed attempts per key (a keyed hash of an email, or a client address) in a window that
    starts at the first failure: blocked at the limit until the window ends, never for ever."""

    __tablename__ = "auth_throttle"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    window_started_at: Mapped[float] = mapped_column(Float, index=True)


class BackupCode(Base):
    """One of a user's ten single-use backup codes, as a keyed hash (HMAC) of the code: 50
    random bits each, so a keyed hash is enough and a stolen table alone reveals none."""

    __tablename__ = "backup_codes"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[float] = mapped_column(Float)
    used_at: Mapped[float | None] = mapped_column(Float, default=None)


class KnownDevice(Base):
    """A browser a user has signed in from: a keyed hash of its user agent (version numbers
    masked) and its network, never the values themselves. Forgotten when unseen for 90 days."""

    __tablename__ = "known_devices"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    device_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    first_seen_at: Mapped[float] = mapped_column(Float)
    last_seen_at: Mapped[float] = mapped_column(Float, index=True)

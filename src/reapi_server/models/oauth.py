"""Sign-in with GitHub and Google: the identities people linked, and the sign-ins under way.

An identity keeps what the provider returned that sign-in needs, nothing more: the provider's
user id (`subject`) and the email address it gave when the identity was linked."""

from __future__ import annotations

from sqlalchemy import Boolean, Float, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base

__all__ = ["OAuthIdentity", "OAuthRequest"]


class OAuthIdentity(Base):
    """A provider account linked to a user: one per provider and user, one user per provider
    account."""

    __tablename__ = "oauth_identities"
    __table_args__ = (
        UniqueConstraint("provider", "subject"),
        UniqueConstraint("user_id", "provider"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    #: github | google
    provider: Mapped[str] = mapped_column(String(16))
    #: The provider's user id (GitHub's numeric id, Google's `sub`).
    subject: Mapped[str] = mapped_column(String(255))
    #: The address the provider gave when the identity was linked (None: it gave none).
    email: Mapped[str | None] = mapped_column(String(320), default=None)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[float] = mapped_column(Float)


class OAuthRequest(Base):
    """A sign-in or link sent to a provider and not back yet (`sign_in`, `link`: keyed by the
    SHA-256 of its `state`, holding the PKCE verifier and the OpenID Connect nonce), or a
    sign-up waiting for the person's consent (`consent`: what the provider said of them).

    Bound to the browser that started it (the SHA-256 of its `reapi_csrf` value), used once,
    short-lived; nothing here outlives `expires_at` by long (identity housekeeping)."""

    __tablename__ = "oauth_requests"
    __table_args__ = (Index("ix_oauth_requests_browser", "browser_hash", "purpose"),)

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    browser_hash: Mapped[str] = mapped_column(String(64))
    provider: Mapped[str] = mapped_column(String(16))
    #: sign_in | link | consent
    purpose: Mapped[str] = mapped_column(String(16))
    #: `link`: the signed-in user who asked.
    user_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), default=None
    )
    code_verifier: Mapped[str | None] = mapped_column(String(128), default=None)
    nonce: Mapped[str | None] = mapped_column(String(64), default=None)
    #: Where to go once signed in (a local path).
    next_url: Mapped[str] = mapped_column(String(512), default="/settings")
    # `consent`: the provider's answer, until the person accepts or leaves.
    subject: Mapped[str | None] = mapped_column(String(255), default=None)
    email: Mapped[str | None] = mapped_column(String(320), default=None)
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float, index=True)

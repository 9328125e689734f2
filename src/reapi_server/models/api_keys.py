"""API keys: only a SHA-256 of the key and its last four characters are stored.

Two kinds: `model` keys (`rk_live_...`) call /v1; `management` keys (`rk_mgmt_...`) call the
management API (/api) and nothing else. A model key may carry limits, each enforced on /v1:
a spend limit per period, a model allowlist, an expiry, requests per minute, concurrent videos.

The key's spend counter (`period_spend`) is what the limit is checked against and what the
keys page shows: credits charged in the period plus credits held by the key's running
requests. It changes only in the transactions that hold, settle and release credit
(`credits.repository`), and starts again at zero with each period (`api_keys.periods`).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base

__all__ = ["ApiKey"]


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    last4: Mapped[str] = mapped_column(String(4))
    name: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[float] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float, default=None)
    #: None: the server's default limit.
    requests_per_minute: Mapped[int | None] = mapped_column(Integer, default=None)
    max_concurrent_videos: Mapped[int | None] = mapped_column(Integer, default=None)
    #: Unfinished video jobs of this key, kept by triggers on `video_jobs` (migration 0003), so
    #: that the limit above is checked by reading this row rather than counting jobs.
    active_videos: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    #: model | management
    kind: Mapped[str] = mapped_column(String(16), default="model", server_default="model")
    #: Credits the key may spend per period (None: no limit but the account's balance).
    spend_limit: Mapped[int | None] = mapped_column(BigInteger, default=None)
    #: daily | weekly | monthly | never (UTC calendar periods; `never`: one period forever)
    spend_period: Mapped[str] = mapped_column(
        String(16), default="monthly", server_default="monthly"
    )
    #: The start of the period `period_spend` counts (0: none yet).
    period_start: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    period_spend: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    #: A JSON list of catalog model ids the key may call (None: every model).
    model_allowlist: Mapped[str | None] = mapped_column(Text, default=None)
    #: After this the key is refused (None: never).
    expires_at: Mapped[float | None] = mapped_column(Float, default=None)
    #: Written at most about once a minute (`api_keys.last_used`), never on the request path.
    last_used_at: Mapped[float | None] = mapped_column(Float, default=None)
    #: Where this key's video jobs announce their end when a request names no `webhook_url`.
    webhook_url: Mapped[str | None] = mapped_column(String(2048), default=None)
    #: Set when a receiver answered 410 Gone at `webhook_url`: not used again until it is set.
    webhook_disabled_at: Mapped[float | None] = mapped_column(Float, default=None)
    #: The signing secret is derived from the server's secret, the key id and this random salt
    #: (`webhooks.secrets`): nothing secret is stored, and a new salt is a new secret. The
    #: previous salt signs too for a while after a rotation (`webhook_rotated_at`).
    webhook_salt: Mapped[str | None] = mapped_column(String(64), default=None)
    webhook_previous_salt: Mapped[str | None] = mapped_column(String(64), default=None)
    webhook_rotated_at: Mapped[float | None] = mapped_column(Float, default=None)

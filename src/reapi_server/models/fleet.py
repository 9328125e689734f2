"""The fleet's one secret: every instance on this database keys its hashes with it."""

from __future__ import annotations

from sqlalchemy import Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base

__all__ = ["FleetSecret"]


class FleetSecret(Base):
    __tablename__ = "fleet_secret"

    #: Always 1: one row.
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    #: The secret (hex) when the first instance generated it; None when the operator gives it.
    secret: Mapped[str | None] = mapped_column(String(128), default=None)
    #: HMAC of a fixed text under the secret: tells a configured secret that agrees from one
    #: that does not, and says nothing of the secret itself.
    verifier: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)

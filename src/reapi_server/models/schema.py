"""Which versions of the gateway may run on the schema as it is (a rolling upgrade)."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base

__all__ = ["SchemaCompatibility"]


class SchemaCompatibility(Base):
    """One row per migration revision whose code runs on this schema: the head, and each older
    revision the newer migrations declare `backward_compatible` (expand only: new tables,
    nullable or defaulted columns, indexes). Rewritten by every migration (`migrate.upgrade`);
    an older instance starts only when its own head is listed."""

    __tablename__ = "schema_compatibility"

    revision: Mapped[str] = mapped_column(String(64), primary_key=True)

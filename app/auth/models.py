from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow

ROLES = ("admin", "agent", "viewer")


class ApiKey(Base):
    """An API key. Only its SHA-256 is stored, with a short prefix to recognise it by."""

    __tablename__ = "api_key"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(10))
    queues: Mapped[list[str] | None] = mapped_column(
        JSON().with_variant(JSONB(), "postgresql"), default=None
    )
    """The queues an agent may work in; None means every queue."""
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class AuthorIdentity(Base):
    """One customer as far as Andon can tell: the accounts below are the same person."""

    __tablename__ = "author_identity"

    id: Mapped[int] = mapped_column(primary_key=True)
    display_name: Mapped[str | None] = mapped_column(String(255), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class IdentityKey(Base):
    """A key that names an identity: ``email``, ``handle`` or ``account`` (channel:id).

    A key belongs to one identity at a time; detaching it moves it (and the items that
    only it explains) to an identity of its own, which undoes a link.
    """

    __tablename__ = "identity_key"
    __table_args__ = (UniqueConstraint("kind", "value"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    identity_id: Mapped[int] = mapped_column(
        ForeignKey("author_identity.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(10))
    value: Mapped[str] = mapped_column(String(320))
    linked_by: Mapped[str] = mapped_column(String(20), default="auto")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow

QUEUE_NAMES = ("product", "marketing", "sales", "service", "triage")
ENTRY_STATES = ("open", "claimed", "resolved", "rerouted", "dismissed")


class QueueEntry(Base):
    """An item waiting for (or taken by) the team that should act on it."""

    __tablename__ = "queue_entry"
    __table_args__ = (
        Index("ix_queue_entry_pull", "queue", "state", "priority", "created_at"),
        # An item has one current entry; re-routed entries stay as history.
        Index(
            "uq_queue_entry_current_item",
            "item_id",
            unique=True,
            sqlite_where=text("state <> 'rerouted'"),
            postgresql_where=text("state <> 'rerouted'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id", ondelete="CASCADE"))
    queue: Mapped[str] = mapped_column(String(20))
    routed_by: Mapped[str] = mapped_column(String(20), default="model")
    state: Mapped[str] = mapped_column(String(12), default="open")
    priority: Mapped[float] = mapped_column(Float, default=0.0)
    claimed_by: Mapped[str | None] = mapped_column(String(255), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    note: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(default=None)


class Correction(Base):
    """A person's correction of the model: a label for the learning loop."""

    __tablename__ = "correction"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id", ondelete="CASCADE"), index=True)
    field: Mapped[str] = mapped_column(String(20))
    old_value: Mapped[str | None] = mapped_column(String(40), default=None)
    new_value: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str | None] = mapped_column(String(255), default=None)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

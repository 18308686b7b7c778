"""Queue entries, their priority, and people's corrections of the model.

An entry moves: open → claimed (under a lease; an expired lease returns it to open)
→ resolved | rerouted (a new entry opens in the target queue) | dismissed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow

QUEUE_NAMES = ("product", "marketing", "sales", "service", "triage")
ENTRY_STATES = ("open", "claimed", "resolved", "rerouted", "dismissed")
CLOSED_STATES = ("resolved", "rerouted", "dismissed")


class QueueEntry(Base):
    """An item waiting for (or taken by) the team that should act on it."""

    __tablename__ = "queue_entry"
    __table_args__ = (
        # What a claim checks reads claimed entries only: lapsed leases and the queue's WIP
        # (by queue), the agent's WIP (by holder). Partial, so a bitmap scan never walks
        # every version of every entry ever claimed (0011).
        Index(
            "ix_queue_entry_lease",
            "queue",
            "lease_expires_at",
            sqlite_where=text("state = 'claimed'"),
            postgresql_where=text("state = 'claimed'"),
        ),
        Index(
            "ix_queue_entry_holder",
            "claimed_by",
            "lease_expires_at",
            sqlite_where=text("state = 'claimed'"),
            postgresql_where=text("state = 'claimed'"),
        ),
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
    """The part of the priority that does not change with time (see app.queues.priority)."""
    priority_breakdown: Mapped[dict[str, Any]] = mapped_column(default=dict)
    rank: Mapped[float] = mapped_column(Float, default=0.0)
    """Pull order key: priority plus the age weight times hours since a fixed epoch."""
    waiting_since: Mapped[datetime] = mapped_column(default=utcnow)
    """When the customer's item started waiting; a re-routed entry keeps it."""
    claimed_by: Mapped[str | None] = mapped_column(String(255), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    first_claimed_at: Mapped[datetime | None] = mapped_column(default=None)
    note: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(default=None)


# The pull order: highest rank first, then the oldest (lowest id). The index is in that order,
# so a claim reads the entries it takes, not the whole queue (migration 0011).
Index(
    "ix_queue_entry_pull",
    QueueEntry.queue,
    QueueEntry.state,
    QueueEntry.rank.desc(),
    QueueEntry.id,
)


class PriorityWeights(Base):
    """The weights in use (one row); operators change them with ``PUT /priority``."""

    __tablename__ = "priority_weights"

    id: Mapped[int] = mapped_column(primary_key=True)
    weights: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_by: Mapped[str | None] = mapped_column(String(255), default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


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

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class Item(Base):
    """One piece of feedback as pulled, with its original payload."""

    __tablename__ = "item"
    __table_args__ = (
        UniqueConstraint("source_id", "external_id"),
        Index("ix_item_created_at", "created_at"),
        Index("ix_item_channel_created", "channel", "created_at"),
        Index("ix_item_identity_created", "identity_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("source.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(255))
    channel: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(20))
    title: Mapped[str | None] = mapped_column(Text, default=None)
    text: Mapped[str] = mapped_column(Text)
    author_id: Mapped[str | None] = mapped_column(String(255), default=None)
    author_handle: Mapped[str | None] = mapped_column(String(255), default=None)
    author_name: Mapped[str | None] = mapped_column(String(255), default=None)
    author_email: Mapped[str | None] = mapped_column(String(320), default=None)
    author_followers: Mapped[int | None] = mapped_column(default=None)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime | None] = mapped_column(default=None)
    url: Mapped[str | None] = mapped_column(Text, default=None)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    lang: Mapped[str | None] = mapped_column(String(16), default=None)
    thread_id: Mapped[str | None] = mapped_column(String(255), default=None)
    raw: Mapped[dict[str, Any]] = mapped_column(default=dict)
    content_hash: Mapped[str] = mapped_column(String(64))
    ingested_at: Mapped[datetime] = mapped_column(default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)
    """Set when the source reports the record deleted upstream; the item is kept."""
    identity_id: Mapped[int | None] = mapped_column(
        ForeignKey("author_identity.id", ondelete="SET NULL"), default=None
    )
    """The customer behind the author, linked across channels (app/identity); indexed with
    ``created_at`` (a customer's items in a window, for dedupe)."""
    dedupe_group_id: Mapped[int | None] = mapped_column(default=None, index=True)
    """The id of the group's first item when this item is in a dedupe group (app/dedupe)."""
    dedupe_reason: Mapped[str | None] = mapped_column(String(20), default=None)


class Classification(Base):
    """The current sentiment and routing of an item, with the model that produced it."""

    __tablename__ = "classification"

    item_id: Mapped[int] = mapped_column(
        ForeignKey("item.id", ondelete="CASCADE"), primary_key=True
    )
    sentiment: Mapped[str] = mapped_column(String(10))
    compound: Mapped[float] = mapped_column(Float)
    queue: Mapped[str] = mapped_column(String(20))
    confidence: Mapped[float] = mapped_column(Float)
    triage: Mapped[bool]
    reason: Mapped[str] = mapped_column(Text)
    scores: Mapped[dict[str, Any]] = mapped_column(default=dict)
    model_version: Mapped[str] = mapped_column(String(64))
    sentiment_version: Mapped[str] = mapped_column(String(64))
    content_hash: Mapped[str] = mapped_column(String(64))
    classified_at: Mapped[datetime] = mapped_column(default=utcnow)


class ItemMetricSnapshot(Base):
    """A change of an item's metrics (votes, likes ...) as observed, with the delta.

    Kept so the signal can show votes gained per day: an idea's vote count changes
    without its text changing, and the count alone says nothing about when.
    """

    __tablename__ = "item_metric_snapshot"
    __table_args__ = (Index("ix_item_metric_snapshot_observed", "observed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id", ondelete="CASCADE"), index=True)
    observed_at: Mapped[datetime] = mapped_column(default=utcnow)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    delta: Mapped[dict[str, Any]] = mapped_column(default=dict)

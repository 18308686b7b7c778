from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class SignalRollup(Base):
    """Demand per hour × queue × channel, maintained as items are stored and moved."""

    __tablename__ = "signal_rollup"

    bucket_start: Mapped[datetime] = mapped_column(primary_key=True)
    queue: Mapped[str] = mapped_column(String(20), primary_key=True)
    channel: Mapped[str] = mapped_column(String(40), primary_key=True)
    count: Mapped[int] = mapped_column(default=0)
    negative: Mapped[int] = mapped_column(default=0)
    neutral: Mapped[int] = mapped_column(default=0)
    positive: Mapped[int] = mapped_column(default=0)
    compound_sum: Mapped[float] = mapped_column(Float, default=0.0)
    demand: Mapped[float] = mapped_column(Float, default=0.0)


class SignalAuthor(Base):
    """How many items an author has in a bucket × queue × channel (``*``: every channel).

    Kept per granularity (``h``our, ``d``ay, ``w``eek) because distinct authors do not
    add up across buckets; a row appearing or disappearing moves ``SignalBucket.authors``.
    """

    __tablename__ = "signal_author"

    granularity: Mapped[str] = mapped_column(String(1), primary_key=True)
    bucket_start: Mapped[datetime] = mapped_column(primary_key=True)
    queue: Mapped[str] = mapped_column(String(20), primary_key=True)
    channel: Mapped[str] = mapped_column(String(40), primary_key=True)
    author_key: Mapped[str] = mapped_column(String(80), primary_key=True)
    items: Mapped[int] = mapped_column(default=0)


class SignalBucket(Base):
    """The signal per granularity × bucket × queue × channel (``*``: every channel).

    What ``GET /signal`` reads: a month by day is 30 rows per queue, whatever the volume.
    """

    __tablename__ = "signal_bucket"

    granularity: Mapped[str] = mapped_column(String(1), primary_key=True)
    bucket_start: Mapped[datetime] = mapped_column(primary_key=True)
    queue: Mapped[str] = mapped_column(String(20), primary_key=True)
    channel: Mapped[str] = mapped_column(String(40), primary_key=True)
    count: Mapped[int] = mapped_column(default=0)
    negative: Mapped[int] = mapped_column(default=0)
    neutral: Mapped[int] = mapped_column(default=0)
    positive: Mapped[int] = mapped_column(default=0)
    compound_sum: Mapped[float] = mapped_column(Float, default=0.0)
    demand: Mapped[float] = mapped_column(Float, default=0.0)
    authors: Mapped[int] = mapped_column(default=0)


class SignalVersion(Base):
    """One row whose token changes in every transaction that changes the rollups.

    ``GET /signal`` caches its answers per token (app/signal/cache.py). Whatever writes
    ``signal_rollup`` / ``signal_bucket`` / ``signal_author`` must call
    ``app.signal.repository.mark_signal_changed`` in the same transaction —
    ``RollupDeltas.flush`` does.
    """

    __tablename__ = "signal_version"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(32))


class FeedEvent(Base):
    """An item arrived in a queue. The id is the feed's order; consumers resume after it."""

    __tablename__ = "feed_event"
    __table_args__ = (Index("ix_feed_event_queue_id", "queue", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    queue: Mapped[str] = mapped_column(String(20))
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id", ondelete="CASCADE"), index=True)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class Spike(Base):
    """An andon: a queue's or theme's hourly volume or negative share far above baseline."""

    __tablename__ = "spike"
    __table_args__ = (Index("ix_spike_open", "state", "scope", "key", "metric"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(10))
    """``queue`` or ``theme``."""
    key: Mapped[str] = mapped_column(String(120))
    """The queue name, or ``queue/theme label``."""
    metric: Mapped[str] = mapped_column(String(20))
    """``volume`` or ``negative_share``."""
    state: Mapped[str] = mapped_column(String(12), default="open")
    """open → acknowledged → closed."""
    bucket_start: Mapped[datetime]
    last_bucket_start: Mapped[datetime]
    value: Mapped[float] = mapped_column(Float)
    baseline: Mapped[float] = mapped_column(Float)
    scale: Mapped[float] = mapped_column(Float)
    score: Mapped[float] = mapped_column(Float)
    count: Mapped[int] = mapped_column(default=0)
    exemplars: Mapped[dict[str, Any]] = mapped_column(default=dict)
    raised_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(default=None)
    acknowledged_by: Mapped[str | None] = mapped_column(String(255), default=None)
    closed_at: Mapped[datetime | None] = mapped_column(default=None)
    cause: Mapped[str | None] = mapped_column(Text, default=None)
    notified_at: Mapped[datetime | None] = mapped_column(default=None)
    notify_error: Mapped[str | None] = mapped_column(Text, default=None)


class Theme(Base):
    """A cluster of a queue's items, labelled by its top terms; replaced at each re-fit."""

    __tablename__ = "theme"
    __table_args__ = (Index("ix_theme_queue", "queue"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    queue: Mapped[str] = mapped_column(String(20))
    label: Mapped[str] = mapped_column(String(120))
    terms: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """``{"terms": [...top terms...], "representatives": [item ids]}``."""
    size: Mapped[int] = mapped_column(default=0)
    fitted_at: Mapped[datetime] = mapped_column(default=utcnow)


class ThemeMember(Base):
    __tablename__ = "theme_member"

    theme_id: Mapped[int] = mapped_column(
        ForeignKey("theme.id", ondelete="CASCADE"), primary_key=True
    )
    item_id: Mapped[int] = mapped_column(
        ForeignKey("item.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    distance: Mapped[float] = mapped_column(Float, default=0.0)

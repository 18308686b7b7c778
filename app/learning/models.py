"""Routing rules (versioned as a set) and the record of training runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class RoutingRule(Base):
    """An operator's rule: items whose ``pattern`` matches go to ``queue``, before the model."""

    __tablename__ = "routing_rule"
    __table_args__ = (Index("ix_routing_rule_order", "enabled", "priority", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pattern_type: Mapped[str] = mapped_column(String(20))
    pattern: Mapped[str] = mapped_column(Text)
    queue: Mapped[str] = mapped_column(String(20))
    priority: Mapped[int] = mapped_column(default=100)
    enabled: Mapped[bool] = mapped_column(default=True)
    note: Mapped[str | None] = mapped_column(Text, default=None)
    version: Mapped[int] = mapped_column(default=1)
    """The rule-set version of this rule's last change."""
    created_by: Mapped[str | None] = mapped_column(String(255), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class RuleSetVersion(Base):
    """One change to the rule set; the highest ``version`` is the set in force."""

    __tablename__ = "rule_set_version"

    version: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    change: Mapped[str] = mapped_column(Text)
    """What changed, e.g. ``create rule 3`` or ``delete rule 5``."""
    rule_id: Mapped[int | None] = mapped_column(default=None)
    snapshot: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """The rule as it stood after the change (before it, for a delete)."""
    changed_by: Mapped[str | None] = mapped_column(String(255), default=None)
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)


class TrainingRun(Base):
    """One champion/challenger round: what was trained, how both scored, what was decided."""

    __tablename__ = "training_run"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), default="routing", server_default="routing")
    """Which model: ``routing`` or ``sentiment`` (one run of ``andon train`` records both)."""
    trigger: Mapped[str] = mapped_column(String(20))
    """``cli``, ``api`` or ``schedule``."""
    challenger_version: Mapped[str] = mapped_column(String(64))
    champion_version: Mapped[str | None] = mapped_column(String(64), default=None)
    challenger_f1: Mapped[float] = mapped_column(Float)
    champion_f1: Mapped[float | None] = mapped_column(Float, default=None)
    holdout_examples: Mapped[int] = mapped_column(default=0)
    labels: Mapped[int] = mapped_column(default=0)
    """Labels beyond the seed corpus: corrections plus imported files."""
    promoted: Mapped[bool]
    forced: Mapped[bool] = mapped_column(default=False)
    reason: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime] = mapped_column(default=utcnow)

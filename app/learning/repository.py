"""All SQL of the learning domain: rules, rule-set versions, training runs, labels."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.items.models import Item
from app.learning.models import RoutingRule, RuleSetVersion, TrainingRun
from app.queues.models import Correction
from app.sources.models import Source


def rules(session: Session, *, enabled_only: bool = False) -> Sequence[RoutingRule]:
    statement = select(RoutingRule).order_by(RoutingRule.priority, RoutingRule.id)
    if enabled_only:
        statement = statement.where(RoutingRule.enabled.is_(True))
    return session.scalars(statement).all()


def rule(session: Session, rule_id: int) -> RoutingRule | None:
    return session.get(RoutingRule, rule_id)


def rule_set_version(session: Session) -> int:
    return int(session.scalar(select(func.max(RuleSetVersion.version))) or 0)


def rule_set_history(session: Session, limit: int) -> Sequence[RuleSetVersion]:
    statement = select(RuleSetVersion).order_by(RuleSetVersion.version.desc()).limit(limit)
    return session.scalars(statement).all()


def source_names(session: Session, source_ids: Sequence[int]) -> dict[int, str]:
    if not source_ids:
        return {}
    statement = select(Source.id, Source.name).where(Source.id.in_(set(source_ids)))
    return {int(row[0]): str(row[1]) for row in session.execute(statement)}


def corrections(session: Session) -> Sequence[Correction]:
    """Every correction, oldest first (a later correction of the same item wins)."""
    return session.scalars(select(Correction).order_by(Correction.id)).all()


def count_items(session: Session, *, since: datetime | None) -> int:
    statement = select(func.count()).select_from(Item).where(Item.deleted_at.is_(None))
    if since is not None:
        statement = statement.where(Item.created_at >= since)
    return int(session.scalar(statement) or 0)


def training_runs(session: Session, limit: int) -> Sequence[TrainingRun]:
    statement = select(TrainingRun).order_by(TrainingRun.id.desc()).limit(limit)
    return session.scalars(statement).all()

"""The SQL operations need: retention deletes and the state gauges behind /metrics."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.items.models import Item
from app.queues.models import QueueEntry
from app.sources.models import Source


def queue_depth(session: Session) -> Sequence[tuple[str, str, int, datetime | None]]:
    statement = (
        select(
            QueueEntry.queue,
            QueueEntry.state,
            func.count(QueueEntry.id),
            func.min(QueueEntry.created_at),
        )
        .where(QueueEntry.state != "rerouted")
        .group_by(QueueEntry.queue, QueueEntry.state)
    )
    return [(q, s, int(n), oldest) for q, s, n, oldest in session.execute(statement).all()]


def source_health(session: Session) -> Sequence[tuple[str, str, int]]:
    statement = select(Source.name, Source.status, Source.consecutive_failures).order_by(
        Source.name
    )
    return [(name, status, int(failed)) for name, status, failed in session.execute(statement)]


def sources_with_retention(session: Session) -> Sequence[tuple[int, str, int]]:
    statement = select(Source.id, Source.name, Source.retention_days).where(
        Source.retention_days.is_not(None)
    )
    return [(sid, name, days) for sid, name, days in session.execute(statement) if days is not None]


def expired_item_ids(
    session: Session, source_id: int, before: datetime, limit: int
) -> Sequence[int]:
    statement = (
        select(Item.id)
        .where(Item.source_id == source_id, Item.created_at < before)
        .order_by(Item.id)
        .limit(limit)
    )
    return session.scalars(statement).all()


def delete_items(session: Session, item_ids: Sequence[int]) -> int:
    """Delete items; their classification, queue entries and history go by ON DELETE CASCADE."""
    if not item_ids:
        return 0
    result = session.execute(
        delete(Item).where(Item.id.in_(item_ids)).execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]

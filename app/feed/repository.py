from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.items.models import Classification, Item
from app.queues.models import QueueEntry
from app.signal.models import FeedEvent


def events(
    session: Session, *, queue: str, after: int, settled_before: datetime, limit: int
) -> Sequence[FeedEvent]:
    statement = (
        select(FeedEvent)
        .where(
            FeedEvent.queue == queue,
            FeedEvent.id > after,
            FeedEvent.recorded_at <= settled_before,
        )
        .order_by(FeedEvent.id)
        .limit(limit)
    )
    return session.scalars(statement).all()


def export_rows(
    session: Session, *, queue: str, start: datetime, end: datetime, after_id: int, limit: int
) -> list[tuple[Item, Classification | None, QueueEntry]]:
    """Items now in ``queue`` created in [start, end), by id, a chunk at a time."""
    statement = (
        select(Item, Classification, QueueEntry)
        .join(QueueEntry, (QueueEntry.item_id == Item.id) & (QueueEntry.state != "rerouted"))
        .outerjoin(Classification, Classification.item_id == Item.id)
        .where(
            QueueEntry.queue == queue,
            Item.created_at >= start,
            Item.created_at < end,
            Item.id > after_id,
        )
        .order_by(Item.id)
        .limit(limit)
    )
    return [(row[0], row[1], row[2]) for row in session.execute(statement)]

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.queues.models import QueueEntry


def depth_by_state(session: Session) -> Sequence[tuple[str, str, int, datetime | None]]:
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

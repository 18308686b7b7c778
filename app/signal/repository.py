from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from app.db import insert_for
from app.signal.models import SignalRollup

COUNTERS = ("count", "negative", "neutral", "positive", "compound_sum", "demand")


def upsert_deltas(session: Session, rows: Iterable[dict[str, object]]) -> None:
    """Add each row's counters to its (bucket, queue, channel) rollup, creating it if new."""
    rows = list(rows)
    if not rows:
        return
    insert = insert_for(session)
    table = SignalRollup.__table__
    for row in rows:
        statement = insert(table).values(**row)
        statement = statement.on_conflict_do_update(
            index_elements=["bucket_start", "queue", "channel"],
            set_={name: table.c[name] + statement.excluded[name] for name in COUNTERS},
        )
        session.execute(statement)


def rollups(
    session: Session,
    *,
    start: datetime,
    end: datetime,
    queues: Sequence[str] | None = None,
    channels: Sequence[str] | None = None,
) -> Sequence[SignalRollup]:
    statement: Select[SignalRollup] = select(SignalRollup).where(
        SignalRollup.bucket_start >= start, SignalRollup.bucket_start < end
    )
    if queues:
        statement = statement.where(SignalRollup.queue.in_(queues))
    if channels:
        statement = statement.where(SignalRollup.channel.in_(channels))
    return session.scalars(statement.order_by(SignalRollup.bucket_start)).all()

"""Every query of the queues. Claims are race-free on both backends:

- PostgreSQL: the next entry is selected ``FOR UPDATE SKIP LOCKED``, so concurrent claimers
  never wait on, nor take, each other's rows.
- SQLite (one writer at a time): the claim first takes the write lock (``lock_agent``
  writes), then the same ``UPDATE … WHERE id = (first open) AND state = 'open'``; the guard
  turns a lost race into a miss (retried while open entries remain), never a double claim.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from app.auth.models import ApiKey
from app.items import repository as items_repository
from app.items.models import Classification, Item
from app.queues.models import PriorityWeights, QueueEntry


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def lock_agent(session: Session, key_id: int) -> None:
    """Serialise one agent's claims so its WIP limit holds (and, on SQLite, take the lock)."""
    if is_postgres(session):
        session.execute(select(ApiKey.id).where(ApiKey.id == key_id).with_for_update())
    else:
        session.execute(
            update(ApiKey)
            .where(ApiKey.id == key_id)
            .values(name=ApiKey.name)
            .execution_options(synchronize_session=False)
        )


def lock_queue(session: Session, queue: str) -> None:
    """Serialise claims in one queue (only when the queue has a WIP limit)."""
    if is_postgres(session):
        session.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"andon.queue.{queue}"))))


@dataclass(frozen=True, slots=True)
class Expired:
    id: int
    queue: str
    claimed_by: str | None
    lease_expires_at: datetime | None


def expire_leases(session: Session, now: datetime, queue: str | None = None) -> list[Expired]:
    """Return lapsed claims to their queue; the entries this call reopened."""
    statement = select(
        QueueEntry.id, QueueEntry.queue, QueueEntry.claimed_by, QueueEntry.lease_expires_at
    ).where(QueueEntry.state == "claimed", QueueEntry.lease_expires_at < now)
    if queue is not None:
        statement = statement.where(QueueEntry.queue == queue)
    if is_postgres(session):
        statement = statement.with_for_update(skip_locked=True)
    found = {row.id: Expired(*row) for row in session.execute(statement)}
    if not found:
        return []
    reopened = session.execute(
        update(QueueEntry)
        .where(
            QueueEntry.id.in_(list(found)),
            QueueEntry.state == "claimed",
            QueueEntry.lease_expires_at < now,
        )
        .values(state="open", claimed_by=None, lease_expires_at=None, updated_at=now)
        .returning(QueueEntry.id)
        .execution_options(synchronize_session=False)
    )
    return [found[entry_id] for entry_id in reopened.scalars()]


def wip_of_agent(session: Session, agent: str, now: datetime) -> int:
    statement = select(func.count(QueueEntry.id)).where(
        QueueEntry.state == "claimed",
        QueueEntry.claimed_by == agent,
        QueueEntry.lease_expires_at >= now,
    )
    return int(session.scalar(statement) or 0)


def wip_of_queue(session: Session, queue: str, now: datetime) -> int:
    statement = select(func.count(QueueEntry.id)).where(
        QueueEntry.state == "claimed", QueueEntry.queue == queue, QueueEntry.lease_expires_at >= now
    )
    return int(session.scalar(statement) or 0)


def take_next(
    session: Session, queue: str, agent: str, lease_until: datetime, now: datetime
) -> QueueEntry | None:
    """Claim the first open entry of ``queue`` in pull order for ``agent`` (None: empty).

    One statement: ``UPDATE … WHERE id = (the first open entry) AND state = 'open'``. On
    PostgreSQL the inner select skips rows other claimers hold; on SQLite the caller holds
    the write lock, and the ``state = 'open'`` guard makes a lost race a miss, never a
    double claim — a miss is retried while open entries remain.
    """
    first_open = (
        select(QueueEntry.id)
        .where(QueueEntry.queue == queue, QueueEntry.state == "open")
        .order_by(QueueEntry.rank.desc(), QueueEntry.id.asc())
        .limit(1)
    )
    if is_postgres(session):
        first_open = first_open.with_for_update(skip_locked=True)
    statement = (
        update(QueueEntry)
        .where(QueueEntry.id == first_open.scalar_subquery(), QueueEntry.state == "open")
        .values(
            state="claimed",
            claimed_by=agent,
            lease_expires_at=lease_until,
            first_claimed_at=func.coalesce(QueueEntry.first_claimed_at, now),
            updated_at=now,
        )
        .returning(QueueEntry)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    while True:
        entry = session.scalars(statement).first()
        if entry is not None or is_postgres(session):
            # On PostgreSQL a miss means every open entry is empty or taken by claimers in flight.
            return entry
        if not session.scalar(select(first_open.exists())):
            return None


def get(session: Session, entry_id: int) -> QueueEntry | None:
    return session.scalars(
        select(QueueEntry)
        .where(QueueEntry.id == entry_id)
        .execution_options(populate_existing=True)
    ).first()


def lock(session: Session, entry_id: int) -> QueueEntry | None:
    """The entry, locked for this unit of work (row lock; on SQLite the write lock)."""
    if not is_postgres(session):
        session.execute(
            update(QueueEntry)
            .where(QueueEntry.id == entry_id)
            .values(state=QueueEntry.state)
            .execution_options(synchronize_session=False)
        )
    return session.scalars(
        select(QueueEntry)
        .where(QueueEntry.id == entry_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()


def item_with_verdict(session: Session, item_id: int) -> tuple[Item, Classification | None]:
    item = session.get(Item, item_id)
    if item is None:  # pragma: no cover - the foreign key guarantees it
        raise LookupError(f"item {item_id} is gone")
    return item, session.get(Classification, item_id)


def item_row(
    session: Session, item_id: int
) -> tuple[Item, Classification | None, QueueEntry | None] | None:
    row = session.execute(items_repository.listing().where(Item.id == item_id)).first()
    if row is None:
        return None
    item, verdict, entry = row
    return item, verdict, entry


def open_entries(session: Session) -> Sequence[tuple[QueueEntry, Item, Classification | None]]:
    statement = (
        select(QueueEntry, Item, Classification)
        .join(Item, Item.id == QueueEntry.item_id)
        .outerjoin(Classification, Classification.item_id == Item.id)
        .where(QueueEntry.state.in_(("open", "claimed")))
    )
    return [(entry, item, verdict) for entry, item, verdict in session.execute(statement).all()]


def weights(session: Session) -> PriorityWeights | None:
    return session.get(PriorityWeights, 1)


# -- statistics ------------------------------------------------------------------------------


def state_counts(
    session: Session, now: datetime
) -> Sequence[tuple[str, str, int, datetime | None]]:
    """(queue, state, count, earliest waiting_since); a lapsed claim counts as ``open``."""
    state = case(
        (
            (QueueEntry.state == "claimed") & (QueueEntry.lease_expires_at < now),
            "open",
        ),
        else_=QueueEntry.state,
    ).label("effective_state")
    statement = (
        select(
            QueueEntry.queue, state, func.count(QueueEntry.id), func.min(QueueEntry.waiting_since)
        )
        .where(QueueEntry.state != "rerouted")
        .group_by(QueueEntry.queue, state)
    )
    return [(q, s, int(n), oldest) for q, s, n, oldest in session.execute(statement).all()]


def arrivals(session: Session, since: datetime) -> dict[str, int]:
    statement = (
        select(QueueEntry.queue, func.count(QueueEntry.id))
        .where(QueueEntry.created_at >= since)
        .group_by(QueueEntry.queue)
    )
    return {queue: int(count) for queue, count in session.execute(statement).all()}


def resolutions(session: Session, since: datetime) -> dict[str, int]:
    statement = (
        select(QueueEntry.queue, func.count(QueueEntry.id))
        .where(QueueEntry.state == "resolved", QueueEntry.closed_at >= since)
        .group_by(QueueEntry.queue)
    )
    return {queue: int(count) for queue, count in session.execute(statement).all()}


def first_claims(session: Session, since: datetime) -> Sequence[tuple[str, datetime, datetime]]:
    """(queue, arrived, first claimed) for entries first claimed since ``since``."""
    statement = select(QueueEntry.queue, QueueEntry.created_at, QueueEntry.first_claimed_at).where(
        QueueEntry.first_claimed_at >= since
    )
    rows = session.execute(statement).all()
    return [(q, arrived, claimed) for q, arrived, claimed in rows if claimed is not None]


def wip(session: Session, now: datetime) -> Sequence[tuple[str, str, int]]:
    statement = (
        select(QueueEntry.queue, QueueEntry.claimed_by, func.count(QueueEntry.id))
        .where(
            QueueEntry.state == "claimed",
            QueueEntry.lease_expires_at >= now,
            QueueEntry.claimed_by.is_not(None),
        )
        .group_by(QueueEntry.queue, QueueEntry.claimed_by)
    )
    return [(q, str(agent), int(n)) for q, agent, n in session.execute(statement).all()]

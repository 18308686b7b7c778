"""Every query of the queues. Claims are race-free on both backends:

- PostgreSQL: the next entry is selected ``FOR UPDATE SKIP LOCKED``, so concurrent claimers
  never wait on, nor take, each other's rows.
- SQLite (one writer at a time): the claim first takes the write lock (``lock_agent``
  writes), then the same ``UPDATE … WHERE id = (first open) AND state = 'open'``; the guard
  turns a lost race into a miss (retried while open entries remain), never a double claim.

The claim and the close (resolve, dismiss) are the hot path — an agent's every entry goes
through both — so their statements are Core, built once at import with bind parameters and
returning plain rows (``EntryState``): building a ``select()`` and loading ORM objects cost
several times the database's own work (bench/README.md, "claims"). On PostgreSQL the HTTP
claim and close usually run on the event loop instead (``app.queues.fast``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Integer,
    RowMapping,
    String,
    Table,
    bindparam,
    case,
    func,
    select,
    update,
)
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.auth.models import ApiKey
from app.db import UTCDateTime
from app.items import repository as items_repository
from app.items.models import Classification, Item
from app.queues.models import PriorityWeights, QueueEntry

ENTRY = cast(Table, QueueEntry.__table__)
KEY = cast(Table, ApiKey.__table__)
AUDIT = cast(Table, AuditEvent.__table__)


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


@dataclass(frozen=True, slots=True)
class EntryState:
    """An entry's columns as a Core statement returned them (no ORM object behind it)."""

    id: int
    item_id: int
    queue: str
    routed_by: str
    state: str
    priority: float
    priority_breakdown: dict[str, Any]
    rank: float
    waiting_since: datetime
    claimed_by: str | None
    lease_expires_at: datetime | None
    first_claimed_at: datetime | None
    note: str | None
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None

    @classmethod
    def of(cls, row: RowMapping) -> EntryState:
        return cls(**{name: row[name] for name in ENTRY_FIELDS})


ENTRY_FIELDS = tuple(EntryState.__dataclass_fields__)
_ENTRY_COLUMNS = [ENTRY.c[name] for name in ENTRY_FIELDS]
_NOW = bindparam("now", type_=UTCDateTime())

_LOCK_AGENT = {
    # The row lock serialises one agent's claims (its WIP limit holds under concurrency)
    # and, with ``revoked_at IS NULL``, refuses a key revoked by any process at once.
    "postgresql": select(KEY.c.id)
    .where(KEY.c.id == bindparam("key_id", type_=Integer()), KEY.c.revoked_at.is_(None))
    .with_for_update(),
    # SQLite: a write takes the database's write lock; claims are serialised by it.
    "sqlite": update(KEY)
    .where(KEY.c.id == bindparam("key_id", type_=Integer()), KEY.c.revoked_at.is_(None))
    .values(name=KEY.c.name)
    .returning(KEY.c.id),
}


def lock_agent(session: Session, key_id: int) -> bool:
    """Serialise one agent's claims (on SQLite: take the write lock); False if revoked."""
    statement = _LOCK_AGENT["postgresql" if is_postgres(session) else "sqlite"]
    return session.execute(statement, {"key_id": key_id}).first() is not None


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


def _lapsed(postgres: bool, in_queue: bool) -> Any:
    statement = select(ENTRY.c.id, ENTRY.c.queue, ENTRY.c.claimed_by, ENTRY.c.lease_expires_at)
    statement = statement.where(ENTRY.c.state == "claimed", ENTRY.c.lease_expires_at < _NOW)
    if in_queue:
        statement = statement.where(ENTRY.c.queue == bindparam("queue", type_=String()))
    return statement.with_for_update(skip_locked=True) if postgres else statement


# Run at every claim (in its queue): one index range scan of ix_queue_entry_lease that finds
# nothing unless a lease has lapsed.
_LAPSED = {(pg, q): _lapsed(pg, q) for pg in (True, False) for q in (True, False)}


def expire_leases(session: Session, now: datetime, queue: str | None = None) -> list[Expired]:
    """Return lapsed claims to their queue; the entries this call reopened."""
    statement = _LAPSED[(is_postgres(session), queue is not None)]
    rows = session.execute(statement, {"now": now, "queue": queue})
    found = {row.id: Expired(*row) for row in rows}
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


_AGENT = bindparam("agent", type_=String())
_HELD_BY_AGENT = (
    select(func.count(ENTRY.c.id))
    .where(
        ENTRY.c.state == "claimed",
        ENTRY.c.claimed_by == _AGENT,
        ENTRY.c.lease_expires_at >= _NOW,
    )
    .scalar_subquery()
)


def wip_of_agent(session: Session, agent: str, now: datetime) -> int:
    return int(session.scalar(select(_HELD_BY_AGENT), {"agent": agent, "now": now}) or 0)


def wip_of_queue(session: Session, queue: str, now: datetime) -> int:
    statement = select(func.count(QueueEntry.id)).where(
        QueueEntry.state == "claimed", QueueEntry.queue == queue, QueueEntry.lease_expires_at >= now
    )
    return int(session.scalar(statement) or 0)


def _take_statement(postgres: bool) -> Any:
    first_open = (
        select(ENTRY.c.id)
        .where(ENTRY.c.queue == bindparam("in_queue", type_=String()), ENTRY.c.state == "open")
        .order_by(ENTRY.c.rank.desc(), ENTRY.c.id.asc())
        .limit(1)
    )
    if postgres:
        first_open = first_open.with_for_update(skip_locked=True)
    return (
        update(ENTRY)
        .where(
            ENTRY.c.id == first_open.scalar_subquery(),
            ENTRY.c.state == "open",
            # The agent's WIP limit, in the same statement: the caller holds the agent's
            # lock (lock_agent), so this statement's snapshot sees all its other claims.
            bindparam("agent_limit", type_=Integer()) > _HELD_BY_AGENT,
        )
        .values(
            state="claimed",
            claimed_by=_AGENT,
            lease_expires_at=bindparam("lease_until", type_=UTCDateTime()),
            first_claimed_at=func.coalesce(ENTRY.c.first_claimed_at, _NOW),
            updated_at=_NOW,
        )
        .returning(*_ENTRY_COLUMNS)
    )


_TAKE = {True: _take_statement(True), False: _take_statement(False)}
_ANY_OPEN = select(
    select(ENTRY.c.id)
    .where(ENTRY.c.queue == bindparam("in_queue", type_=String()), ENTRY.c.state == "open")
    .exists()
)


def take_next(
    session: Session,
    queue: str,
    agent: str,
    lease_until: datetime,
    now: datetime,
    agent_limit: int,
) -> EntryState | None:
    """Claim the first open entry of ``queue`` in pull order for ``agent`` (None: a miss).

    One statement: ``UPDATE … WHERE id = (the first open entry) AND state = 'open' AND
    (the agent's claims) < agent_limit RETURNING …``. On PostgreSQL the inner select skips
    rows other claimers hold; on SQLite the caller holds the write lock, and the ``state =
    'open'`` guard makes a lost race a miss, never a double claim — a miss is retried while
    open entries remain and the agent is under its limit. A miss: the queue is empty, every
    open entry is being taken by claimers in flight, or the agent is at its limit (the
    caller tells which).
    """
    postgres = is_postgres(session)
    values = {
        "in_queue": queue,
        "agent": agent,
        "lease_until": lease_until,
        "now": now,
        "agent_limit": agent_limit,
    }
    while True:
        row = session.execute(_TAKE[postgres], values).mappings().first()
        if row is not None:
            return EntryState.of(row)
        if postgres or wip_of_agent(session, agent, now) >= agent_limit:
            return None
        if not session.scalar(_ANY_OPEN, {"in_queue": queue}):
            return None


_SELECT_ENTRY = select(*_ENTRY_COLUMNS).where(ENTRY.c.id == bindparam("entry_id", type_=Integer()))
_LOCK_ENTRY = _SELECT_ENTRY.with_for_update()
_SQLITE_WRITE_LOCK = (
    update(ENTRY)
    .where(ENTRY.c.id == bindparam("entry_id", type_=Integer()))
    .values(state=ENTRY.c.state)
)
_CLOSE = (
    update(ENTRY)
    .where(ENTRY.c.id == bindparam("entry_id", type_=Integer()))
    .values(
        state=bindparam("new_state", type_=String()),
        note=bindparam("new_note", type_=String()),
        closed_at=_NOW,
        lease_expires_at=None,
        updated_at=_NOW,
    )
)


def lock_state(session: Session, entry_id: int) -> EntryState | None:
    """The entry as a plain row, locked for this unit of work (on SQLite: the write lock)."""
    if is_postgres(session):
        statement = _LOCK_ENTRY
    else:
        session.execute(_SQLITE_WRITE_LOCK, {"entry_id": entry_id})
        statement = _SELECT_ENTRY
    row = session.execute(statement, {"entry_id": entry_id}).mappings().first()
    return EntryState.of(row) if row is not None else None


def close(session: Session, entry_id: int, state: str, note: str, now: datetime) -> None:
    """Close a locked entry (resolved or dismissed): no lease, no longer claimable."""
    values = {"entry_id": entry_id, "new_state": state, "new_note": note, "now": now}
    session.execute(_CLOSE, values)


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


_ITEM_WITH_VERDICT = (
    select(Item, Classification)
    .outerjoin(Classification, Classification.item_id == Item.id)
    .where(Item.id == bindparam("item_id", type_=Integer()))
)


def item_and_verdict(session: Session, item_id: int) -> tuple[Item, Classification | None]:
    """The item and its classification in one statement (the claim's answer shows both)."""
    row = session.execute(_ITEM_WITH_VERDICT, {"item_id": item_id}).one()
    return row[0], row[1]


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

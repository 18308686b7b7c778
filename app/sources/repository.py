from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.sources.models import Source, SourceState, SyncRun


def by_name(session: Session, name: str) -> Source | None:
    return session.scalar(select(Source).where(Source.name == name))


def all_sources(session: Session) -> Sequence[Source]:
    return session.scalars(select(Source).order_by(Source.name)).all()


def state_for_update(session: Session, source_id: int) -> SourceState:
    """The cursor row, locked for this transaction on PostgreSQL (one writer per source)."""
    state = session.scalar(
        select(SourceState).where(SourceState.source_id == source_id).with_for_update()
    )
    if state is None:
        state = SourceState(source_id=source_id, cursor=None)
        session.add(state)
        session.flush()
    return state


def cursor_of(session: Session, source_id: int) -> SourceState | None:
    return session.get(SourceState, source_id)


def runs(session: Session, source_id: int, limit: int) -> Sequence[SyncRun]:
    statement = (
        select(SyncRun)
        .where(SyncRun.source_id == source_id)
        .order_by(SyncRun.id.desc())
        .limit(limit)
    )
    return session.scalars(statement).all()


def unfinished_runs(session: Session, source_id: int) -> Sequence[SyncRun]:
    statement = select(SyncRun).where(SyncRun.source_id == source_id, SyncRun.status == "running")
    return session.scalars(statement).all()

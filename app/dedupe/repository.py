from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.items.models import Item

# Identities per query: keeps the IN list well under every backend's parameter limit.
_IDENTITY_CHUNK = 500


def recent_of_identities(
    session: Session,
    identity_ids: Collection[int],
    *,
    start: datetime,
    end: datetime,
    before_id: int,
) -> Sequence[Item]:
    """Items of these customers created in [start, end] and stored before ``before_id``,
    by id: one query per chunk of identities (a page's worth), matched up by the caller."""
    ids = sorted(identity_ids)
    found: list[Item] = []
    for offset in range(0, len(ids), _IDENTITY_CHUNK):
        statement = select(Item).where(
            Item.identity_id.in_(ids[offset : offset + _IDENTITY_CHUNK]),
            Item.created_at >= start,
            Item.created_at <= end,
            Item.id < before_id,
        )
        found.extend(session.scalars(statement))
    found.sort(key=lambda item: item.id)
    return found


def by_external_id(session: Session, source_id: int, external_id: str) -> Item | None:
    statement = select(Item).where(Item.source_id == source_id, Item.external_id == external_id)
    return session.scalars(statement).first()


def group_members(session: Session, group_ids: Sequence[int]) -> Sequence[Item]:
    if not group_ids:
        return []
    statement = select(Item).where(Item.dedupe_group_id.in_(group_ids)).order_by(Item.id)
    return session.scalars(statement).all()

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.items.models import Item


def recent_of_identity(
    session: Session, identity_id: int, *, start: datetime, end: datetime, before_id: int
) -> Sequence[Item]:
    """Items of one customer created in [start, end] and stored before ``before_id``."""
    statement = (
        select(Item)
        .where(
            Item.identity_id == identity_id,
            Item.created_at >= start,
            Item.created_at <= end,
            Item.id < before_id,
        )
        .order_by(Item.id)
    )
    return session.scalars(statement).all()


def by_external_id(session: Session, source_id: int, external_id: str) -> Item | None:
    statement = select(Item).where(Item.source_id == source_id, Item.external_id == external_id)
    return session.scalars(statement).first()


def group_members(session: Session, group_ids: Sequence[int]) -> Sequence[Item]:
    if not group_ids:
        return []
    statement = select(Item).where(Item.dedupe_group_id.in_(group_ids)).order_by(Item.id)
    return session.scalars(statement).all()

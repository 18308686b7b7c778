from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import bulk
from app.items.models import Item

# Identities per query: keeps the IN list well under every backend's parameter limit.
_IDENTITY_CHUNK = 500


@dataclass(slots=True)
class Earlier:
    """An earlier item of a customer, as grouping reads it: the columns, not the ORM row.

    A page's customers can have thousands of items in the window between them; plain
    rows without their texts cost a fraction of ORM items with their payloads (``texts``
    reads the texts grouping has not seen yet). Grouping sets ``dedupe_group_id`` /
    ``dedupe_reason`` here when one becomes a group's first item; the caller writes those
    back (``app.items.repository.set_dedupe_groups``).
    """

    id: int
    source_id: int
    external_id: str
    identity_id: int | None
    created_at: datetime
    content_hash: str
    dedupe_group_id: int | None
    dedupe_reason: str | None
    title: str | None = None
    text: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict)  # only new items follow upstream


_EARLIER = (
    Item.id,
    Item.source_id,
    Item.external_id,
    Item.identity_id,
    Item.created_at,
    Item.content_hash,
    Item.dedupe_group_id,
    Item.dedupe_reason,
)


def recent_of_identities(
    session: Session,
    identity_ids: Collection[int],
    *,
    start: datetime,
    end: datetime,
    before_id: int,
    per_identity: int,
) -> list[Earlier]:
    """The ``per_identity`` latest items of each of these customers created in [start, end]
    and stored before ``before_id``, by id: one query per chunk of identities (a page's
    worth), matched up by the caller."""
    ids = sorted(identity_ids)
    found: list[Earlier] = []
    for offset in range(0, len(ids), _IDENTITY_CHUNK):
        # Rank on ids alone, then read the columns of the kept rows only: the ranking is
        # answered from the (identity_id, created_at) index (on SQLite the row id is in
        # every index entry), so only the ``per_identity`` rows of each customer that are
        # kept cost a table lookup, not every item of theirs in the page's window (at a
        # million bench items ~26 per customer, of which 10 are kept).
        latest = (
            select(
                Item.id.label("id"),
                func.row_number()
                .over(partition_by=Item.identity_id, order_by=Item.id.desc())
                .label("latest"),
            )
            .where(
                Item.identity_id.in_(ids[offset : offset + _IDENTITY_CHUNK]),
                Item.created_at >= start,
                Item.created_at <= end,
                Item.id < before_id,
            )
            .subquery()
        )
        statement = (
            select(*_EARLIER)
            .join(latest, latest.c.id == Item.id)
            .where(latest.c.latest <= per_identity)
        )
        found.extend(Earlier(*row) for row in session.execute(statement))
    found.sort(key=lambda item: item.id)
    return found


def texts(session: Session, ids: Sequence[int]) -> dict[int, tuple[str | None, str]]:
    """``id -> (title, text)`` of these items."""
    rows = bulk.select_in(session, _TEXTS, list(ids), chunk=_IDENTITY_CHUNK)
    return {int(item_id): (title, text) for item_id, title, text in rows}


_TEXTS = "SELECT id, title, text FROM item WHERE id {in}"


def by_external_id(session: Session, source_id: int, external_id: str) -> Item | None:
    statement = select(Item).where(Item.source_id == source_id, Item.external_id == external_id)
    return session.scalars(statement).first()


def group_members(session: Session, group_ids: Sequence[int]) -> Sequence[Item]:
    if not group_ids:
        return []
    statement = select(Item).where(Item.dedupe_group_id.in_(group_ids)).order_by(Item.id)
    return session.scalars(statement).all()

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import ColumnElement, Select, or_, select, update
from sqlalchemy.orm import Session

from app import bulk
from app.items.models import Classification, Item, ItemMetricSnapshot
from app.queues.models import Correction, QueueEntry
from app.sources.models import Source

CHUNK = 500

_Selected = TypeVar("_Selected", bound=Select[*tuple[Any, ...]])


_STORED_IDS = "SELECT id, external_id FROM item WHERE source_id = {p} AND external_id {in}"
_CONTENT_HASHES = (
    "SELECT external_id, content_hash FROM item WHERE source_id = {p} AND external_id {in}"
)


def by_external_ids(
    session: Session, source_id: int, external_ids: Sequence[str]
) -> dict[str, Item]:
    """The stored items among these, as ORM objects (only those: a sync's page is mostly
    new items, which are looked up without the ORM)."""
    stored = bulk.select_in(session, _STORED_IDS, external_ids, (source_id,), chunk=CHUNK)
    ids = [int(item_id) for item_id, _ in stored]
    found: dict[str, Item] = {}
    for start in range(0, len(ids), CHUNK):
        statement = select(Item).where(Item.id.in_(ids[start : start + CHUNK]))
        found.update({item.external_id: item for item in session.scalars(statement)})
    return found


def insert_items(session: Session, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Insert new items of one source in bulk; their ids by external id."""
    ids = bulk.insert_returning_ids(session, Item, rows)
    return {str(row["external_id"]): new for row, new in zip(rows, ids, strict=True)}


def content_hashes(session: Session, source_id: int, external_ids: Sequence[str]) -> dict[str, str]:
    """The stored content hash of each of these items that is stored."""
    rows = bulk.select_in(session, _CONTENT_HASHES, external_ids, (source_id,), chunk=CHUNK)
    return {str(external_id): str(digest) for external_id, digest in rows}


def set_dedupe_groups(
    session: Session, groups: Sequence[tuple[int, int | None, str | None]]
) -> None:
    """``(item id, group id, reason)``: items just inserted that joined a group, and earlier
    items that became a group's first."""
    if not groups:
        return
    session.execute(
        update(Item),
        [
            {"id": item, "dedupe_group_id": group, "dedupe_reason": why}
            for item, group, why in groups
        ],
    )


def insert_snapshots(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    bulk.insert_rows(session, ItemMetricSnapshot, rows)


def insert_classifications(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    bulk.insert_rows(session, Classification, rows)


def insert_entries(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    bulk.insert_rows(session, QueueEntry, rows)


def source_names(session: Session, source_ids: Sequence[int]) -> dict[int, str]:
    statement = select(Source.id, Source.name).where(Source.id.in_(sorted(set(source_ids))))
    return dict(session.execute(statement).all())


def classifications(session: Session, item_ids: Sequence[int]) -> dict[int, Classification]:
    found: dict[int, Classification] = {}
    for start in range(0, len(item_ids), CHUNK):
        chunk = item_ids[start : start + CHUNK]
        statement = select(Classification).where(Classification.item_id.in_(chunk))
        found.update({row.item_id: row for row in session.scalars(statement)})
    return found


def current_entries(session: Session, item_ids: Sequence[int]) -> dict[int, QueueEntry]:
    found: dict[int, QueueEntry] = {}
    for start in range(0, len(item_ids), CHUNK):
        chunk = item_ids[start : start + CHUNK]
        statement = select(QueueEntry).where(
            QueueEntry.item_id.in_(chunk), QueueEntry.state != "rerouted"
        )
        found.update({row.item_id: row for row in session.scalars(statement)})
    return found


def listing() -> Select[Item, Classification, QueueEntry]:
    """Every item with its verdict and current entry as mapped objects, newest first (one
    item's detail: add a ``where``; pages of a listing: ``listed``)."""
    return _joined(select(Item, Classification, QueueEntry))


@dataclass(frozen=True, slots=True)
class ListFilter:
    """What a listing is narrowed to (``None``: not narrowed)."""

    queue: str | None = None
    channel: str | None = None
    sentiment: str | None = None
    since: datetime | None = None
    before_id: int | None = None
    thread_id: str | None = None
    dedupe_group_id: int | None = None
    ids: Sequence[int] | None = None


class ItemRow(NamedTuple):
    """The item columns a listing shows (all but the raw payload and the author's address)."""

    id: int
    source_id: int
    external_id: str
    channel: str
    kind: str
    title: str | None
    text: str
    author_id: str | None
    author_handle: str | None
    author_name: str | None
    author_followers: int | None
    created_at: datetime
    updated_at: datetime | None
    url: str | None
    metrics: dict[str, Any]
    lang: str | None
    thread_id: str | None
    deleted_at: datetime | None
    identity_id: int | None
    dedupe_group_id: int | None
    dedupe_reason: str | None


class VerdictRow(NamedTuple):
    sentiment: str
    compound: float
    queue: str
    confidence: float
    triage: bool
    reason: str
    scores: dict[str, Any]
    model_version: str


class EntryRow(NamedTuple):
    id: int
    queue: str
    state: str
    routed_by: str
    claimed_by: str | None
    lease_expires_at: datetime | None


Listed = tuple[ItemRow, VerdictRow | None, EntryRow | None]

# Columns, not ORM objects: a page of 50 built three mapped objects per row (and decoded each
# item's raw payload, which a listing does not show). After the item's columns: whether there
# is a verdict, its columns, whether there is an entry, its columns.
_ITEM_END = len(ItemRow._fields)
_VERDICT_END = _ITEM_END + 1 + len(VerdictRow._fields)
_LISTED_COLUMNS: list[ColumnElement[Any]] = [
    *(Item.__table__.c[name] for name in ItemRow._fields),
    Classification.item_id.is_not(None),
    *(Classification.__table__.c[name] for name in VerdictRow._fields),
    QueueEntry.id.is_not(None),
    *(QueueEntry.__table__.c[name] for name in EntryRow._fields),
]


def listed(session: Session, where: ListFilter, *, limit: int) -> list[Listed]:
    """The items ``where`` selects, newest first, as plain rows, up to ``limit``."""
    statement = _joined(select(*_LISTED_COLUMNS))
    if where.queue is not None:
        statement = statement.where(QueueEntry.queue == where.queue)
    if where.channel is not None:
        statement = statement.where(Item.channel == where.channel)
    if where.sentiment is not None:
        statement = statement.where(Classification.sentiment == where.sentiment)
    if where.since is not None:
        statement = statement.where(Item.created_at >= where.since)
    if where.before_id is not None:
        statement = statement.where(Item.id < where.before_id)
    if where.thread_id is not None:
        statement = statement.where(Item.thread_id == where.thread_id)
    if where.dedupe_group_id is not None:  # the group is named after its first item
        group = where.dedupe_group_id
        statement = statement.where(or_(Item.dedupe_group_id == group, Item.id == group))
    if where.ids is not None:
        statement = statement.where(Item.id.in_(list(where.ids)))
    found: list[Listed] = []
    for row in session.execute(statement.limit(limit)):
        verdict = VerdictRow._make(row[_ITEM_END + 1 : _VERDICT_END]) if row[_ITEM_END] else None
        entry = EntryRow._make(row[_VERDICT_END + 1 :]) if row[_VERDICT_END] else None
        found.append((ItemRow._make(row[:_ITEM_END]), verdict, entry))
    return found


def _joined(statement: _Selected) -> _Selected:
    """``statement`` from items with their verdicts and current entries, newest first."""
    return (
        statement.outerjoin(Classification, Classification.item_id == Item.id)
        .outerjoin(QueueEntry, (QueueEntry.item_id == Item.id) & (QueueEntry.state != "rerouted"))
        .order_by(Item.id.desc())
    )


def history(session: Session, item_id: int) -> Sequence[ItemMetricSnapshot]:
    statement = (
        select(ItemMetricSnapshot)
        .where(ItemMetricSnapshot.item_id == item_id)
        .order_by(ItemMetricSnapshot.observed_at, ItemMetricSnapshot.id)
    )
    return session.scalars(statement).all()


def metric_changes(
    session: Session, *, start: datetime, end: datetime, queue: str | None = None
) -> Sequence[tuple[datetime, dict[str, Any], str | None, str]]:
    """Metric deltas observed in [start, end), with the item's current queue and channel."""
    statement = (
        select(
            ItemMetricSnapshot.observed_at, ItemMetricSnapshot.delta, QueueEntry.queue, Item.channel
        )
        .join(Item, Item.id == ItemMetricSnapshot.item_id)
        .outerjoin(QueueEntry, (QueueEntry.item_id == Item.id) & (QueueEntry.state != "rerouted"))
        .where(ItemMetricSnapshot.observed_at >= start, ItemMetricSnapshot.observed_at < end)
    )
    if queue is not None:
        statement = statement.where(QueueEntry.queue == queue)
    return [(row[0], row[1], row[2], row[3]) for row in session.execute(statement).all()]


# -- re-scoring stored items in bulk -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredItem:
    """What classification and the signal read of a stored item, without the ORM."""

    id: int
    source_id: int
    channel: str
    kind: str
    title: str | None
    text: str
    author_id: str | None
    author_handle: str | None
    author_name: str | None
    author_email: str | None
    author_followers: int | None
    created_at: datetime
    metrics: dict[str, Any]
    lang: str | None
    identity_id: int | None
    dedupe_group_id: int | None
    content_hash: str


_STORED = tuple(getattr(Item, name) for name in StoredItem.__dataclass_fields__)


def stored_batch(
    session: Session, *, since: datetime | None, after_id: int, limit: int
) -> list[StoredItem]:
    """The next ``limit`` stored items (not deleted upstream) after ``after_id``, by id."""
    statement = (
        select(*_STORED)
        .where(Item.id > after_id, Item.deleted_at.is_(None))
        .order_by(Item.id)
        .limit(limit)
    )
    if since is not None:
        statement = statement.where(Item.created_at >= since)
    return [StoredItem(*row) for row in session.execute(statement)]


def stored_items(session: Session, ids: Sequence[int]) -> list[StoredItem]:
    found: list[StoredItem] = []
    for start in range(0, len(ids), CHUNK):
        statement = select(*_STORED).where(Item.id.in_(ids[start : start + CHUNK]))
        found.extend(StoredItem(*row) for row in session.execute(statement))
    return found


@dataclass(frozen=True, slots=True)
class EntryView:
    id: int
    queue: str
    state: str
    routed_by: str
    waiting_since: datetime


def current_entry_views(
    session: Session, item_ids: Sequence[int], *, lock: bool = False
) -> dict[int, EntryView]:
    """Each item's current entry; ``lock`` holds them (PostgreSQL) until the commit."""
    found: dict[int, EntryView] = {}
    for start in range(0, len(item_ids), CHUNK):
        statement = select(
            QueueEntry.item_id,
            QueueEntry.id,
            QueueEntry.queue,
            QueueEntry.state,
            QueueEntry.routed_by,
            QueueEntry.waiting_since,
        ).where(
            QueueEntry.item_id.in_(item_ids[start : start + CHUNK]),
            QueueEntry.state != "rerouted",
        )
        if lock:
            statement = statement.order_by(QueueEntry.id).with_for_update()
        for item_id, entry_id, queue, state, routed_by, waiting in session.execute(statement):
            found[item_id] = EntryView(entry_id, queue, state, routed_by, waiting)
    return found


@dataclass(frozen=True, slots=True)
class VerdictView:
    sentiment: str
    compound: float


def verdict_views(session: Session, item_ids: Sequence[int]) -> dict[int, VerdictView]:
    found: dict[int, VerdictView] = {}
    for start in range(0, len(item_ids), CHUNK):
        statement = select(
            Classification.item_id, Classification.sentiment, Classification.compound
        ).where(Classification.item_id.in_(item_ids[start : start + CHUNK]))
        for item_id, sentiment, compound in session.execute(statement):
            found[item_id] = VerdictView(sentiment, compound)
    return found


def corrected_sentiments(session: Session, item_ids: Sequence[int]) -> dict[int, str]:
    """The sentiment a person last gave each of these items, where one did."""
    found: dict[int, str] = {}
    for start in range(0, len(item_ids), CHUNK):
        statement = (
            select(Correction.item_id, Correction.new_value)
            .where(
                Correction.item_id.in_(item_ids[start : start + CHUNK]),
                Correction.field == "sentiment",
            )
            .order_by(Correction.id)
        )
        found.update(dict(session.execute(statement).all()))  # the latest wins
    return found


def update_classifications(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    bulk.update_rows(session, Classification, "item_id", rows)


def update_entries(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    bulk.update_rows(session, QueueEntry, "id", rows)

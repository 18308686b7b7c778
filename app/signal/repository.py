from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, tuple_
from sqlalchemy.orm import Session

from app import bulk
from app.db import insert_for
from app.items.models import Classification, Item
from app.queues.models import QueueEntry
from app.signal.models import (
    FeedEvent,
    SignalAuthor,
    SignalBucket,
    SignalRollup,
    SignalVersion,
    Spike,
    Theme,
    ThemeMember,
)

COUNTERS = ("count", "negative", "neutral", "positive", "compound_sum", "demand")
AUTHOR_KEY_COLUMNS = ("granularity", "bucket_start", "queue", "channel", "author_key")
BUCKET_KEY_COLUMNS = ("granularity", "bucket_start", "queue", "channel")


def upsert_deltas(session: Session, rows: Iterable[dict[str, object]]) -> None:
    """Add each row's counters to its (bucket, queue, channel) rollup, creating it if new."""
    rows = list(rows)
    if not rows:
        return
    table = SignalRollup.__table__
    statement = insert_for(session)(table)
    statement = statement.on_conflict_do_update(
        index_elements=["bucket_start", "queue", "channel"],
        set_={name: table.c[name] + statement.excluded[name] for name in COUNTERS},
    )
    # One statement, executed many: a page touches hundreds of hourly rollups. A fixed
    # order keeps concurrent writers from deadlocking on PostgreSQL.
    rows.sort(key=lambda row: (row["bucket_start"], row["queue"], row["channel"]))
    bulk.execute_many(session, "signal_rollup.upsert", statement, rows)


AuthorKey = tuple[str, datetime, str, str, str]
# Rows per statement: keeps the bound parameters (and the IN list) well under every
# backend's limit.
_AUTHOR_CHUNK = 500


def bump_authors(session: Session, deltas: Sequence[tuple[AuthorKey, int]]) -> dict[AuthorKey, int]:
    """Add each delta to its author's item count in a bucket; the new count per key.

    Keys must be distinct; pass them sorted (a fixed lock order). Each chunk is one atomic
    upsert returning the new counts, so two writers (two sources syncing at once) never
    both see an author "appear".
    """
    if not deltas:
        return {}
    keys, items = zip(*deltas, strict=True)
    columns = [*zip(*keys, strict=True), items]  # column by column: no mapping per row
    counts = bulk.add_returning_columns(
        session, SignalAuthor, AUTHOR_KEY_COLUMNS, ("items",), columns
    )
    return {key: int(values[0]) for key, values in zip(keys, counts, strict=True)}


def delete_authors(session: Session, keys: Sequence[AuthorKey]) -> None:
    """Delete the author rows of ``keys``: one ``DELETE … WHERE (key) IN (…)`` per chunk."""
    columns = tuple_(*(getattr(SignalAuthor, name) for name in AUTHOR_KEY_COLUMNS))
    for offset in range(0, len(keys), _AUTHOR_CHUNK):
        chunk = list(keys[offset : offset + _AUTHOR_CHUNK])
        session.execute(
            delete(SignalAuthor).where(columns.in_(chunk)),
            execution_options={"synchronize_session": False},
        )


def upsert_buckets(session: Session, rows: Sequence[dict[str, object]]) -> None:
    """Add each row's counters and author delta to its bucket, creating it if new.

    One statement executed for all the rows; pass them in key order (a fixed lock order:
    concurrent writers cannot deadlock).
    """
    if not rows:
        return
    table = SignalBucket.__table__
    statement = insert_for(session)(table)
    statement = statement.on_conflict_do_update(
        index_elements=list(BUCKET_KEY_COLUMNS),
        set_={name: table.c[name] + statement.excluded[name] for name in (*COUNTERS, "authors")},
    )
    bulk.execute_many(session, "signal_bucket.upsert", statement, list(rows))


def mark_signal_changed(session: Session) -> None:
    """The hook every rollup writer calls, in its own transaction: a new change token.

    ``GET /signal`` answers from a cache keyed by the token it reads (``signal_version``),
    so a cached answer is never served after a commit that changed the rollups. A random
    token rather than a counter: a row deleted and re-created cannot repeat an old value.
    """
    statement = insert_for(session)(SignalVersion.__table__).values(id=1, token=uuid.uuid4().hex)
    statement = statement.on_conflict_do_update(
        index_elements=["id"], set_={"token": statement.excluded["token"]}
    )
    session.execute(statement)


_TOKEN = select(SignalVersion.token).where(SignalVersion.id == 1)


def signal_version(session: Session) -> str | None:
    """The current change token (None until the rollups were first written)."""
    return session.scalar(_TOKEN)


def add_feed_events(session: Session, arrivals: Sequence[tuple[str, int]], at: datetime) -> None:
    bulk.insert_rows(
        session,
        FeedEvent,
        [{"queue": queue, "item_id": item_id, "recorded_at": at} for queue, item_id in arrivals],
    )


def rollups(
    session: Session,
    *,
    start: datetime,
    end: datetime,
    queues: Sequence[str] | None = None,
    channels: Sequence[str] | None = None,
) -> list[tuple[datetime, str, str, int, int, int, int, float, float]]:
    """Rollup rows as plain tuples (bucket, queue, channel, count, negative, neutral,
    positive, compound_sum, demand): a month is ~25 000 rows, too many for ORM objects."""
    statement = select(
        SignalRollup.bucket_start,
        SignalRollup.queue,
        SignalRollup.channel,
        SignalRollup.count,
        SignalRollup.negative,
        SignalRollup.neutral,
        SignalRollup.positive,
        SignalRollup.compound_sum,
        SignalRollup.demand,
    ).where(
        SignalRollup.bucket_start >= start,
        SignalRollup.bucket_start < end,
        SignalRollup.count != 0,
    )
    if queues:
        statement = statement.where(SignalRollup.queue.in_(queues))
    if channels:
        statement = statement.where(SignalRollup.channel.in_(channels))
    return [
        (r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8]) for r in session.execute(statement)
    ]


def buckets(
    session: Session,
    *,
    granularity: str,
    start: datetime,
    end: datetime,
    queues: Sequence[str] | None,
    channels: Sequence[str] | None,
    exclude_any: bool,
) -> list[tuple[datetime, str, str, int, int, int, int, float, float, int]]:
    """Bucket rows as tuples (start, queue, channel, count, negative, neutral, positive,
    compound_sum, demand, authors)."""
    statement = select(
        SignalBucket.bucket_start,
        SignalBucket.queue,
        SignalBucket.channel,
        SignalBucket.count,
        SignalBucket.negative,
        SignalBucket.neutral,
        SignalBucket.positive,
        SignalBucket.compound_sum,
        SignalBucket.demand,
        SignalBucket.authors,
    ).where(
        SignalBucket.granularity == granularity,
        SignalBucket.bucket_start >= start,
        SignalBucket.bucket_start < end,
        SignalBucket.count != 0,
    )
    if queues:
        statement = statement.where(SignalBucket.queue.in_(queues))
    if channels:
        statement = statement.where(SignalBucket.channel.in_(channels))
    if exclude_any:
        statement = statement.where(SignalBucket.channel != "*")
    return [
        (r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9])
        for r in session.execute(statement)
    ]


def distinct_authors(
    session: Session,
    *,
    granularity: str,
    start: datetime,
    end: datetime,
    queues: Sequence[str] | None,
    channels: Sequence[str],
) -> list[tuple[datetime, str, int]]:
    """Distinct authors across several channels: counted over the author rows."""
    statement = (
        select(
            SignalAuthor.bucket_start,
            SignalAuthor.queue,
            func.count(func.distinct(SignalAuthor.author_key)),
        )
        .where(
            SignalAuthor.granularity == granularity,
            SignalAuthor.bucket_start >= start,
            SignalAuthor.bucket_start < end,
            SignalAuthor.channel.in_(channels),
        )
        .group_by(SignalAuthor.bucket_start, SignalAuthor.queue)
    )
    if queues:
        statement = statement.where(SignalAuthor.queue.in_(queues))
    return [(row[0], row[1], int(row[2])) for row in session.execute(statement)]


def all_rollups(session: Session) -> Sequence[SignalRollup]:
    return session.scalars(select(SignalRollup)).all()


def all_buckets(session: Session) -> Sequence[SignalBucket]:
    return session.scalars(select(SignalBucket)).all()


def clear_rollups(session: Session) -> None:
    for model in (SignalRollup, SignalAuthor, SignalBucket):
        session.execute(delete(model))
    mark_signal_changed(session)


def routed_items(session: Session) -> Iterator[tuple[Item, QueueEntry, Classification]]:
    """Every item with a current queue entry and a classification, streamed."""
    statement = (
        select(Item, QueueEntry, Classification)
        .join(QueueEntry, (QueueEntry.item_id == Item.id) & (QueueEntry.state != "rerouted"))
        .join(Classification, Classification.item_id == Item.id)
        .order_by(Item.id)
        .execution_options(yield_per=1000)
    )
    for row in session.execute(statement):
        yield row[0], row[1], row[2]


# Spikes -------------------------------------------------------------------------------


def hourly_queue_series(
    session: Session, *, start: datetime, end: datetime
) -> list[tuple[datetime, str, int, int]]:
    """(hour, queue, count, negative) summed over channels, from the rollups."""
    statement = (
        select(
            SignalRollup.bucket_start,
            SignalRollup.queue,
            func.sum(SignalRollup.count),
            func.sum(SignalRollup.negative),
        )
        .where(SignalRollup.bucket_start >= start, SignalRollup.bucket_start < end)
        .group_by(SignalRollup.bucket_start, SignalRollup.queue)
    )
    return [(row[0], row[1], int(row[2]), int(row[3])) for row in session.execute(statement)]


def theme_items(
    session: Session, *, start: datetime, end: datetime
) -> list[tuple[int, str, str, datetime, str | None]]:
    """(theme id, queue, label, item created_at, sentiment) for theme members in range."""
    statement = (
        select(Theme.id, Theme.queue, Theme.label, Item.created_at, Classification.sentiment)
        .join(ThemeMember, ThemeMember.theme_id == Theme.id)
        .join(Item, Item.id == ThemeMember.item_id)
        .outerjoin(Classification, Classification.item_id == Item.id)
        .where(Item.created_at >= start, Item.created_at < end)
    )
    return [(row[0], row[1], row[2], row[3], row[4]) for row in session.execute(statement)]


def open_spike(session: Session, scope: str, key: str, metric: str) -> Spike | None:
    statement = select(Spike).where(
        Spike.scope == scope,
        Spike.key == key,
        Spike.metric == metric,
        Spike.state.in_(("open", "acknowledged")),
    )
    return session.scalars(statement.order_by(Spike.id.desc()).limit(1)).first()


def spikes(session: Session, *, states: Sequence[str], limit: int) -> Sequence[Spike]:
    statement = select(Spike).where(Spike.state.in_(states)).order_by(Spike.id.desc()).limit(limit)
    return session.scalars(statement).all()


def exemplar_items(
    session: Session,
    *,
    start: datetime,
    end: datetime,
    queue: str,
    item_ids: Sequence[int] | None = None,
    limit: int = 3,
) -> list[int]:
    """The most negative items of a queue in an hour (or among ``item_ids``)."""
    statement = (
        select(Item.id)
        .join(QueueEntry, (QueueEntry.item_id == Item.id) & (QueueEntry.state != "rerouted"))
        .join(Classification, Classification.item_id == Item.id)
        .where(Item.created_at >= start, Item.created_at < end, QueueEntry.queue == queue)
        .order_by(Classification.compound, Item.id)
        .limit(limit)
    )
    if item_ids is not None:
        statement = statement.where(Item.id.in_(item_ids))
    return list(session.scalars(statement))


# Themes -------------------------------------------------------------------------------


def queue_texts(
    session: Session, *, queue: str, since: datetime, limit: int
) -> list[tuple[int, str | None, str, str]]:
    """(id, title, text, kind) of the queue's newest items since ``since``."""
    statement = (
        select(Item.id, Item.title, Item.text, Item.kind)
        .join(QueueEntry, (QueueEntry.item_id == Item.id) & (QueueEntry.state != "rerouted"))
        .where(QueueEntry.queue == queue, Item.created_at >= since)
        .order_by(Item.id.desc())
        .limit(limit)
    )
    return [(row[0], row[1], row[2], row[3]) for row in session.execute(statement)]


def replace_themes(session: Session, queue: str) -> None:
    ids = select(Theme.id).where(Theme.queue == queue).scalar_subquery()
    session.execute(delete(ThemeMember).where(ThemeMember.theme_id.in_(ids)))
    session.execute(delete(Theme).where(Theme.queue == queue))


def add_members(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        session.execute(insert(ThemeMember), list(rows))


def themes(session: Session, queue: str | None) -> Sequence[Theme]:
    statement = select(Theme).order_by(Theme.queue, Theme.size.desc(), Theme.id)
    if queue is not None:
        statement = statement.where(Theme.queue == queue)
    return session.scalars(statement).all()


def theme_member_rows(
    session: Session, theme_ids: Sequence[int]
) -> list[tuple[int, int, datetime, str, str | None, float | None]]:
    """(theme id, item id, created_at, channel, sentiment, compound) of members."""
    if not theme_ids:
        return []
    statement = (
        select(
            ThemeMember.theme_id,
            Item.id,
            Item.created_at,
            Item.channel,
            Classification.sentiment,
            Classification.compound,
        )
        .join(Item, Item.id == ThemeMember.item_id)
        .outerjoin(Classification, Classification.item_id == Item.id)
        .where(ThemeMember.theme_id.in_(theme_ids))
    )
    return [(r[0], r[1], r[2], r[3], r[4], r[5]) for r in session.execute(statement)]


def items_by_id(session: Session, ids: Sequence[int]) -> dict[int, Item]:
    if not ids:
        return {}
    return {item.id: item for item in session.scalars(select(Item).where(Item.id.in_(ids)))}


def ideas(session: Session, limit: int) -> list[tuple[Item, int | None]]:
    """Ideas that are not duplicates, with the theme they belong to (if any)."""
    statement = (
        select(Item, ThemeMember.theme_id)
        .outerjoin(ThemeMember, ThemeMember.item_id == Item.id)
        .where(
            Item.kind == "idea",
            (Item.dedupe_group_id.is_(None)) | (Item.dedupe_group_id == Item.id),
        )
        .order_by(Item.id)
        .limit(limit)
    )
    return [(row[0], row[1]) for row in session.execute(statement)]


def theme_mentions(session: Session) -> dict[int, int]:
    """Per theme: members that are not ideas (posts, tickets, mail) and not duplicates."""
    statement = (
        select(ThemeMember.theme_id, func.count())
        .join(Item, Item.id == ThemeMember.item_id)
        .where(
            Item.kind != "idea",
            (Item.dedupe_group_id.is_(None)) | (Item.dedupe_group_id == Item.id),
        )
        .group_by(ThemeMember.theme_id)
    )
    return {int(row[0]): int(row[1]) for row in session.execute(statement)}

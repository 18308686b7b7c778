from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, Protocol

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from app.db import MAX_ID, as_utc, utcnow
from app.deps import RowId, SessionDep, SettingsDep, run_committed
from app.errors import InvalidInput, NotFound
from app.items import repository
from app.items.models import Classification, Item
from app.items.schemas import (
    AuthorRead,
    EntryRead,
    ItemDetail,
    ItemPage,
    ItemRead,
    MetricSnapshotRead,
    RouteRead,
    SentimentRead,
    VotesPoint,
    VotesRead,
)
from app.pagination import decode_cursor, encode_cursor
from app.queues.models import QUEUE_NAMES
from app.signal.service import bucket_start

router = APIRouter(prefix="/items", tags=["items"])

QueueName = Literal["product", "marketing", "sales", "service", "triage"]
SentimentName = Literal["negative", "neutral", "positive"]


class CurrentEntry(Protocol):
    """What an item's answer shows of its current entry (an ORM entry or a Core row)."""

    @property
    def id(self) -> int: ...
    @property
    def queue(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def routed_by(self) -> str: ...
    @property
    def claimed_by(self) -> str | None: ...
    @property
    def lease_expires_at(self) -> datetime | None: ...


ItemColumns = Item | repository.ItemRow
VerdictColumns = Classification | repository.VerdictRow


def to_read(
    item: ItemColumns, verdict: VerdictColumns | None, entry: CurrentEntry | None
) -> ItemRead:
    return ItemRead(**_values(item, verdict, entry))


def to_detail(
    item: ItemColumns,
    verdict: VerdictColumns | None,
    entry: CurrentEntry | None,
    raw: dict[str, Any],
) -> ItemDetail:
    """``to_read`` with the item's raw payload."""
    return ItemDetail(raw=raw, **_values(item, verdict, entry))


def _values(
    item: ItemColumns, verdict: VerdictColumns | None, entry: CurrentEntry | None
) -> dict[str, Any]:
    return {
        "id": item.id,
        "source_id": item.source_id,
        "external_id": item.external_id,
        "channel": item.channel,
        "kind": item.kind,
        "title": item.title,
        "text": item.text,
        "author": AuthorRead(
            id=item.author_id,
            handle=item.author_handle,
            display_name=item.author_name,
            followers=item.author_followers,
        ),
        "created_at": item.created_at,
        "updated_at": item.updated_at,
        "url": item.url,
        "metrics": item.metrics,
        "lang": item.lang,
        "thread_id": item.thread_id,
        "deleted_at": item.deleted_at,
        "identity_id": item.identity_id,
        "dedupe_group_id": item.dedupe_group_id,
        "dedupe_reason": item.dedupe_reason,
        "queue": entry.queue if entry else None,
        "sentiment": SentimentRead(label=verdict.sentiment, compound=verdict.compound)
        if verdict
        else None,
        "route": RouteRead(
            queue=verdict.queue,
            confidence=verdict.confidence,
            triage=verdict.triage,
            reason=verdict.reason,
            scores=verdict.scores,
            model_version=verdict.model_version,
        )
        if verdict
        else None,
        "entry": EntryRead(
            id=entry.id,
            queue=entry.queue,
            state=entry.state,
            routed_by=entry.routed_by,
            claimed_by=entry.claimed_by,
            lease_expires_at=entry.lease_expires_at,
        )
        if entry
        else None,
    }


@router.get("", response_model=ItemPage, summary="List items, newest first")
async def list_items(
    session: SessionDep,
    settings: SettingsDep,
    queue: QueueName | None = None,
    channel: str | None = None,
    sentiment: SentimentName | None = None,
    since: Annotated[datetime | None, Query(description="Items created at or after")] = None,
    thread_id: Annotated[
        str | None, Query(description="Only the items of this thread (the console's context)")
    ] = None,
    dedupe_group_id: Annotated[
        int | None,
        Query(ge=1, le=MAX_ID, description="Only the items of this dedupe group (duplicates)"),
    ] = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> ItemPage:
    before_id = None
    if cursor is not None:
        position = decode_cursor(cursor)
        if not isinstance(position.get("before"), int):
            raise InvalidInput("invalid cursor: pass the next_cursor you were given")
        before_id = position["before"]
    where = repository.ListFilter(
        queue=queue,
        channel=channel,
        sentiment=sentiment,
        since=as_utc(since) if since else None,
        before_id=before_id,
        thread_id=thread_id,
        dedupe_group_id=dedupe_group_id,
    )
    # async with one threadpool call for the query and the commit (see app.deps).
    return await run_committed(session, _page, session, where, min(limit, settings.page_size_max))


def _page(session: Session, where: repository.ListFilter, limit: int) -> ItemPage:
    rows = repository.listed(session, where, limit=limit + 1)
    page = [to_read(item, verdict, entry) for item, verdict, entry in rows[:limit]]
    next_cursor = encode_cursor({"before": page[-1].id}) if len(rows) > limit else None
    return ItemPage(items=page, next_cursor=next_cursor)


@router.get("/{item_id}", response_model=ItemDetail, summary="One item with its raw payload")
def get_item(item_id: RowId, session: SessionDep) -> ItemDetail:
    row = session.execute(repository.listing().where(Item.id == item_id)).first()
    if row is None:
        raise NotFound(f"no item {item_id}")
    item, verdict, entry = row
    return to_detail(item, verdict, entry, item.raw)


@router.get(
    "/{item_id}/history",
    response_model=list[MetricSnapshotRead],
    summary="How the item's metrics (votes, likes ...) changed, oldest first",
)
def item_history(item_id: RowId, session: SessionDep) -> list[MetricSnapshotRead]:
    if session.get(Item, item_id) is None:
        raise NotFound(f"no item {item_id}")
    return [
        MetricSnapshotRead(observed_at=row.observed_at, metrics=row.metrics, delta=row.delta)
        for row in repository.history(session, item_id)
    ]


votes_router = APIRouter(prefix="/signal", tags=["signal"])


@votes_router.get(
    "/votes",
    response_model=VotesRead,
    summary="Votes, likes and reposts gained per bucket, by the item's current queue",
)
def votes_gained(
    session: SessionDep,
    bucket: Literal["hour", "day", "week"] = "day",
    start: Annotated[datetime | None, Query(alias="from")] = None,
    end: Annotated[datetime | None, Query(alias="to")] = None,
    queue: QueueName | None = None,
) -> VotesRead:
    end_at = as_utc(end) if end else utcnow()
    start_at = as_utc(start) if start else end_at - timedelta(days=30)
    if start_at >= end_at:
        raise InvalidInput("'from' must be before 'to'")
    sums: dict[tuple[datetime, str | None], list[int]] = {}
    for observed_at, delta, entry_queue, _channel in repository.metric_changes(
        session, start=start_at, end=end_at, queue=queue
    ):
        row = sums.setdefault((bucket_start(observed_at, bucket), entry_queue), [0, 0, 0])
        for index, name in enumerate(("votes", "likes", "reposts")):
            value = delta.get(name)
            if isinstance(value, int | float):
                row[index] += int(value)
    series = [
        VotesPoint(
            bucket_start=moment,
            queue=name,
            votes_gained=values[0],
            likes_gained=values[1],
            reposts_gained=values[2],
        )
        for (moment, name), values in sorted(
            sums.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")
        )
    ]
    return VotesRead(bucket=bucket, start=start_at, end=end_at, series=series)


__all__ = ["QUEUE_NAMES", "router", "votes_router"]

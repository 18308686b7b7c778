from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from app.db import as_utc
from app.deps import SessionDep, SettingsDep
from app.errors import InvalidInput, NotFound
from app.items import repository
from app.items.models import Classification, Item
from app.items.schemas import (
    AuthorRead,
    EntryRead,
    ItemDetail,
    ItemPage,
    ItemRead,
    RouteRead,
    SentimentRead,
)
from app.pagination import decode_cursor, encode_cursor
from app.queues.models import QUEUE_NAMES, QueueEntry

router = APIRouter(prefix="/items", tags=["items"])

QueueName = Literal["product", "marketing", "sales", "service", "triage"]
SentimentName = Literal["negative", "neutral", "positive"]


def to_read(
    item: Item, verdict: Classification | None, entry: QueueEntry | None, *, detail: bool = False
) -> ItemRead:
    values = {
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
    if detail:
        return ItemDetail(raw=item.raw, **values)
    return ItemRead(**values)


@router.get("", response_model=ItemPage, summary="List items, newest first")
def list_items(
    session: SessionDep,
    settings: SettingsDep,
    queue: QueueName | None = None,
    channel: str | None = None,
    sentiment: SentimentName | None = None,
    since: Annotated[datetime | None, Query(description="Items created at or after")] = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> ItemPage:
    before_id = None
    if cursor is not None:
        position = decode_cursor(cursor)
        if not isinstance(position.get("before"), int):
            raise InvalidInput("invalid cursor: pass the next_cursor you were given")
        before_id = position["before"]
    limit = min(limit, settings.page_size_max)
    statement = repository.listing(
        queue=queue,
        channel=channel,
        sentiment=sentiment,
        since=as_utc(since) if since else None,
        before_id=before_id,
    ).limit(limit + 1)
    rows = session.execute(statement).all()
    page = [to_read(item, verdict, entry) for item, verdict, entry in rows[:limit]]
    next_cursor = encode_cursor({"before": page[-1].id}) if len(rows) > limit else None
    return ItemPage(items=page, next_cursor=next_cursor)


@router.get("/{item_id}", response_model=ItemDetail, summary="One item with its raw payload")
def get_item(item_id: int, session: SessionDep) -> ItemRead:
    row = session.execute(repository.listing().where(Item.id == item_id)).first()
    if row is None:
        raise NotFound(f"no item {item_id}")
    item, verdict, entry = row
    return to_read(item, verdict, entry, detail=True)


__all__ = ["QUEUE_NAMES", "router"]

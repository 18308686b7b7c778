"""``GET /feed/{queue}``: what arrived in a queue, in a stable order, resumable by cursor.

Every arrival of an item in a queue (routed there, re-routed there, re-classified into
it) is an event with an increasing id; the cursor is the last event id a consumer has
seen, so pulling with ``after=next_cursor`` returns exactly what is new. Events younger
than ``ANDON_FEED_SETTLE_SECONDS`` are held back so a transaction that took a lower id
but committed later is never skipped. An item that leaves a queue and comes back is a
new event.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from app.db import as_utc, utcnow
from app.deps import SessionDep, SettingsDep
from app.errors import InvalidInput
from app.feed import repository
from app.items import repository as items_repository
from app.items.router import to_read
from app.items.schemas import ItemRead
from app.pagination import decode_cursor, encode_cursor
from app.signal.service import contribution_of

router = APIRouter(prefix="/feed", tags=["feed"])

QueueName = Literal["product", "marketing", "sales", "service", "triage"]
EXPORT_CHUNK = 1000
EXPORT_COLUMNS = (
    "id",
    "created_at",
    "channel",
    "kind",
    "external_id",
    "title",
    "text",
    "author_handle",
    "author_name",
    "url",
    "queue",
    "sentiment",
    "compound",
    "votes",
    "demand",
    "identity_id",
    "dedupe_group_id",
)


class FeedEntry(BaseModel):
    event_id: int
    arrived_at: datetime
    item: ItemRead


class FeedPage(BaseModel):
    queue: str
    entries: list[FeedEntry]
    next_cursor: str
    """Pass as ``after`` next time; unchanged when nothing new has arrived."""


def _after(cursor: str | None) -> int:
    if cursor is None:
        return 0
    position = decode_cursor(cursor).get("after")
    if not isinstance(position, int) or position < 0:
        raise InvalidInput("invalid cursor: pass the next_cursor you were given")
    return position


@router.get("/{queue}", response_model=FeedPage, summary="What arrived in a queue since a cursor")
def read_feed(
    queue: QueueName,
    session: SessionDep,
    settings: SettingsDep,
    after: Annotated[str | None, Query(description="next_cursor of the previous pull")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> FeedPage:
    position = _after(after)
    settled = utcnow() - timedelta(seconds=settings.feed_settle_seconds)
    events = repository.events(
        session, queue=queue, after=position, settled_before=settled, limit=limit
    )
    ids = sorted({event.item_id for event in events})
    rows = {
        item.id: (item, verdict, entry)
        for item, verdict, entry in items_repository.listed(
            session, items_repository.ListFilter(ids=ids), limit=len(ids)
        )
    }
    entries = [
        FeedEntry(
            event_id=event.id, arrived_at=event.recorded_at, item=to_read(*rows[event.item_id])
        )
        for event in events
        if event.item_id in rows
    ]
    last = events[-1].id if events else position
    return FeedPage(queue=queue, entries=entries, next_cursor=encode_cursor({"after": last}))


@router.get(
    "/{queue}/export",
    summary="Items now in a queue created in a time range, as CSV or NDJSON",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}, "application/x-ndjson": {}}}},
)
def export(
    queue: QueueName,
    session: SessionDep,
    start: Annotated[datetime, Query(alias="from")],
    end: Annotated[datetime, Query(alias="to")],
    format: Literal["csv", "ndjson"] = "ndjson",
) -> StreamingResponse:
    start_at, end_at = as_utc(start), as_utc(end)
    if start_at >= end_at:
        raise InvalidInput("'from' must be before 'to'")
    records: list[dict[str, object]] = []
    after_id = 0
    while True:  # read inside the request's session; stream the rendered lines
        chunk = repository.export_rows(
            session, queue=queue, start=start_at, end=end_at, after_id=after_id, limit=EXPORT_CHUNK
        )
        for item, verdict, entry in chunk:
            share = contribution_of(item, entry, verdict)
            votes = item.metrics.get("votes")
            records.append(
                {
                    "id": item.id,
                    "created_at": item.created_at.isoformat(),
                    "channel": item.channel,
                    "kind": item.kind,
                    "external_id": item.external_id,
                    "title": item.title,
                    "text": item.text,
                    "author_handle": item.author_handle,
                    "author_name": item.author_name,
                    "url": item.url,
                    "queue": entry.queue,
                    "sentiment": verdict.sentiment if verdict else None,
                    "compound": verdict.compound if verdict else None,
                    "votes": votes if isinstance(votes, int | float) else None,
                    "demand": share.demand if share else None,
                    "identity_id": item.identity_id,
                    "dedupe_group_id": item.dedupe_group_id,
                }
            )
        if len(chunk) < EXPORT_CHUNK:
            break
        after_id = chunk[-1][0].id
    name = f"{queue}-{start_at:%Y%m%d}-{end_at:%Y%m%d}.{format}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if format == "csv":
        return StreamingResponse(_csv(records), media_type="text/csv", headers=headers)
    lines = (json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    return StreamingResponse(lines, media_type="application/x-ndjson", headers=headers)


def _csv(records: list[dict[str, object]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow(record)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.getvalue():
        yield buffer.getvalue()

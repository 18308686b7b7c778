from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.orm import Session, sessionmaker

from app.db import as_utc, unit_of_work, utcnow
from app.deps import RowId, SessionDep, run_unit
from app.errors import InvalidInput
from app.items.models import Item
from app.signal import repository, spikes
from app.signal.cache import SIGNAL_CACHE
from app.signal.models import Spike
from app.signal.schemas import (
    ExemplarRead,
    IdeaRank,
    QueueTotal,
    SignalPointRead,
    SignalRead,
    SpikeAcknowledge,
    SpikeClose,
    SpikeRead,
    ThemePoint,
    ThemeRead,
)
from app.signal.service import bucket_after, bucket_start, demand_weight, series

router = APIRouter(prefix="/signal", tags=["signal"])

QueueName = Literal["product", "marketing", "sales", "service", "triage"]


def _range(
    start: datetime | None, end: datetime | None, bucket: Literal["hour", "day", "week"]
) -> tuple[datetime, datetime]:
    end_at = as_utc(end) if end else utcnow()
    start_at = as_utc(start) if start else end_at - timedelta(days=30)
    if start_at >= end_at:
        raise InvalidInput("'from' must be before 'to'")
    if end_at - start_at > timedelta(days=3660):
        raise InvalidInput("the time range is limited to ten years")
    last = bucket_start(end_at, bucket)
    return bucket_start(start_at, bucket), last if last == end_at else bucket_after(last, bucket)


@router.get("", response_model=SignalRead, summary="Demand per queue over time")
async def get_signal(
    request: Request,
    bucket: Literal["hour", "day", "week"] = "day",
    start: Annotated[
        datetime | None, Query(alias="from", description="Default: 30 days before `to`")
    ] = None,
    end: Annotated[datetime | None, Query(alias="to", description="Default: now")] = None,
    queue: Annotated[list[str] | None, Query()] = None,
    channel: Annotated[list[str] | None, Query()] = None,
    group_by: Literal["queue", "channel"] = "queue",
) -> Response:
    """Answered from the hourly rollups and distinct-author tables, never from items.

    Buckets are whole: `from` is rounded down and `to` up to the bucket. `authors` is the
    number of distinct customers in a point; it is not summed into `totals`. Repeated
    queries are answered from a cache that is dropped whenever the rollups change (never
    a stale answer; `ANDON_SIGNAL_CACHE=false` turns it off).
    """
    start_at, end_at = _range(start, end, bucket)
    queues, channels = tuple(queue) if queue else None, tuple(channel) if channel else None
    query = SignalQuery(bucket, start_at, end_at, queues, channels, group_by)
    # The app's state rather than dependencies: each one costs a share of dependency
    # solving, the largest part of a cached answer's CPU. A cached answer costs a token
    # read shared with the requests that arrived with it (TokenReads) and no threadpool
    # hop of its own; the JSON is sent as it was stored.
    state = request.app.state
    token = await state.signal_tokens.current() if state.settings.signal_cache else None
    body = SIGNAL_CACHE.get(token, query)
    if body is None:
        body = await run_unit(state.read_sessionmaker, _answer, query, token)
    return Response(body, media_type="application/json")


@dataclass(frozen=True, slots=True)
class SignalQuery:
    """One ``GET /signal`` question, bucket-aligned: the cache key of its answer."""

    bucket: Literal["hour", "day", "week"]
    start: datetime
    end: datetime
    queues: tuple[str, ...] | None
    channels: tuple[str, ...] | None
    group_by: Literal["queue", "channel"]


def _answer(session: Session, query: SignalQuery, token: str | None) -> bytes:
    """Computed, and kept under the token read before it (None: not kept)."""
    body = signal_read(session, query).model_dump_json().encode()
    SIGNAL_CACHE.put(token, query, body)
    return body


def signal_token(factory: sessionmaker[Session]) -> Callable[[], str | None]:
    """The token read ``TokenReads`` shares between requests (autocommit on PostgreSQL)."""

    def read() -> str | None:
        with unit_of_work(factory) as session:
            return repository.signal_version(session)

    return read


def signal_read(session: Session, query: SignalQuery) -> SignalRead:
    points = series(
        session,
        start=query.start,
        end=query.end,
        bucket=query.bucket,
        queues=query.queues,
        channels=query.channels,
        by_channel=query.group_by == "channel",
    )
    sums: dict[str, list[float]] = {}
    for point in points:
        row = sums.setdefault(point.queue, [0, 0, 0, 0, 0.0, 0.0])
        row[0] += point.count
        row[1] += point.negative
        row[2] += point.neutral
        row[3] += point.positive
        row[4] += point.compound_sum
        row[5] += point.demand
    totals = {
        name: QueueTotal(
            count=int(row[0]),
            negative=int(row[1]),
            neutral=int(row[2]),
            positive=int(row[3]),
            mean_compound=round(row[4] / row[0], 4) if row[0] else 0.0,
            demand=round(row[5], 2),
        )
        for name, row in sorted(sums.items())
    }
    return SignalRead(
        bucket=query.bucket,
        start=query.start,
        end=query.end,
        totals=totals,
        series=[
            SignalPointRead(
                bucket_start=point.bucket_start,
                queue=point.queue,
                channel=point.channel,
                count=point.count,
                negative=point.negative,
                neutral=point.neutral,
                positive=point.positive,
                mean_compound=point.mean_compound,
                demand=round(point.demand, 2),
                authors=point.authors,
            )
            for point in points
        ],
    )


def _exemplar(item: Item) -> ExemplarRead:
    return ExemplarRead(
        item_id=item.id,
        channel=item.channel,
        title=item.title,
        text=item.text[:280],
        url=item.url,
        created_at=item.created_at,
    )


def _spike_read(spike: Spike, items: dict[int, Item]) -> SpikeRead:
    ids = spike.exemplars.get("item_ids", [])
    return SpikeRead(
        id=spike.id,
        scope=spike.scope,
        key=spike.key,
        metric=spike.metric,
        state=spike.state,
        bucket_start=spike.bucket_start,
        last_bucket_start=spike.last_bucket_start,
        value=spike.value,
        baseline=spike.baseline,
        scale=spike.scale,
        score=spike.score,
        count=spike.count,
        raised_at=spike.raised_at,
        acknowledged_at=spike.acknowledged_at,
        acknowledged_by=spike.acknowledged_by,
        closed_at=spike.closed_at,
        cause=spike.cause,
        notified_at=spike.notified_at,
        exemplars=[_exemplar(items[i]) for i in ids if i in items],
    )


@router.get("/spikes", response_model=list[SpikeRead], summary="Spikes (the andon), newest first")
def list_spikes(
    session: SessionDep,
    state: Annotated[
        list[Literal["open", "acknowledged", "closed"]] | None,
        Query(description="Default: open and acknowledged"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[SpikeRead]:
    rows = repository.spikes(session, states=state or ["open", "acknowledged"], limit=limit)
    ids = sorted({i for spike in rows for i in spike.exemplars.get("item_ids", [])})
    items = repository.items_by_id(session, ids)
    return [_spike_read(spike, items) for spike in rows]


@router.post("/spikes/{spike_id}/acknowledge", response_model=SpikeRead, summary="Someone is on it")
def acknowledge_spike(spike_id: RowId, body: SpikeAcknowledge, session: SessionDep) -> SpikeRead:
    spike = spikes.acknowledge(session, spike_id, body.by, utcnow())
    return _spike_read(spike, repository.items_by_id(session, spike.exemplars.get("item_ids", [])))


@router.post("/spikes/{spike_id}/close", response_model=SpikeRead, summary="Close with a cause")
def close_spike(spike_id: RowId, body: SpikeClose, session: SessionDep) -> SpikeRead:
    spike = spikes.close(session, spike_id, body.cause, utcnow())
    return _spike_read(spike, repository.items_by_id(session, spike.exemplars.get("item_ids", [])))


@router.get("/themes", response_model=list[ThemeRead], summary="Themes of each queue over time")
def list_themes(
    session: SessionDep,
    queue: QueueName | None = None,
    bucket: Literal["hour", "day", "week"] = "day",
    start: Annotated[datetime | None, Query(alias="from")] = None,
    end: Annotated[datetime | None, Query(alias="to")] = None,
) -> list[ThemeRead]:
    """Counts over time are the theme's members per bucket in [`from`, `to`)."""
    start_at, end_at = _range(start, end, bucket)
    themes = repository.themes(session, queue)
    counts: dict[int, dict[datetime, int]] = defaultdict(lambda: defaultdict(int))
    mix: dict[int, list[float]] = defaultdict(lambda: [0, 0, 0, 0.0, 0])
    for (
        theme_id,
        _item_id,
        created_at,
        _channel,
        sentiment,
        compound,
    ) in repository.theme_member_rows(session, [theme.id for theme in themes]):
        if sentiment is not None:
            row = mix[theme_id]
            row[("negative", "neutral", "positive").index(sentiment)] += 1
            row[3] += compound or 0.0
            row[4] += 1
        if start_at <= created_at < end_at:
            counts[theme_id][bucket_start(created_at, bucket)] += 1
    wanted = sorted({i for theme in themes for i in theme.terms.get("representatives", [])})
    items = repository.items_by_id(session, wanted)
    result = []
    for theme in themes:
        row = mix[theme.id]
        result.append(
            ThemeRead(
                id=theme.id,
                queue=theme.queue,
                label=theme.label,
                terms=list(theme.terms.get("terms", [])),
                size=theme.size,
                fitted_at=theme.fitted_at,
                negative=int(row[0]),
                neutral=int(row[1]),
                positive=int(row[2]),
                mean_compound=round(row[3] / row[4], 4) if row[4] else 0.0,
                series=[
                    ThemePoint(bucket_start=moment, count=count)
                    for moment, count in sorted(counts[theme.id].items())
                ],
                representatives=[
                    _exemplar(items[i])
                    for i in theme.terms.get("representatives", [])
                    if i in items
                ],
            )
        )
    return result


@router.get("/ideas", response_model=list[IdeaRank], summary="Ideas ranked by demand")
def ranked_ideas(
    session: SessionDep, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[IdeaRank]:
    """Score = the idea's weighted demand + mentions of its theme from other channels."""
    mentions = repository.theme_mentions(session)
    labels = {theme.id: theme.label for theme in repository.themes(session, None)}
    ranked = []
    for item, theme_id in repository.ideas(session, 10_000):
        demand = demand_weight(item.metrics, item.author_followers)
        votes = item.metrics.get("votes")
        heard = mentions.get(theme_id, 0) if theme_id is not None else 0
        ranked.append(
            IdeaRank(
                item_id=item.id,
                title=item.title,
                text=item.text[:280],
                channel=item.channel,
                url=item.url,
                votes=int(votes) if isinstance(votes, int | float) else 0,
                demand=demand,
                theme_id=theme_id,
                theme_label=labels.get(theme_id) if theme_id is not None else None,
                mentions=heard,
                score=round(demand + heard, 4),
            )
        )
    ranked.sort(key=lambda idea: (-idea.score, idea.item_id))
    return ranked[:limit]

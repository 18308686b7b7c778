from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from app.db import as_utc, utcnow
from app.deps import SessionDep
from app.errors import InvalidInput
from app.signal.schemas import QueueTotal, SignalPointRead, SignalRead
from app.signal.service import bucket_start, series

router = APIRouter(prefix="/signal", tags=["signal"])


@router.get("", response_model=SignalRead, summary="Demand per queue over time")
def get_signal(
    session: SessionDep,
    bucket: Literal["hour", "day", "week"] = "day",
    start: Annotated[
        datetime | None, Query(alias="from", description="Default: 30 days before `to`")
    ] = None,
    end: Annotated[datetime | None, Query(alias="to", description="Default: now")] = None,
    queue: Annotated[list[str] | None, Query()] = None,
    channel: Annotated[list[str] | None, Query()] = None,
    group_by: Literal["queue", "channel"] = "queue",
) -> SignalRead:
    end_at = as_utc(end) if end else utcnow()
    start_at = as_utc(start) if start else end_at - timedelta(days=30)
    if start_at >= end_at:
        raise InvalidInput("'from' must be before 'to'")
    if end_at - start_at > timedelta(days=3660):
        raise InvalidInput("the time range is limited to ten years")
    points = series(
        session,
        start=bucket_start(start_at, "hour"),
        end=end_at,
        bucket=bucket,
        queues=queue,
        channels=channel,
        by_channel=group_by == "channel",
    )
    totals: dict[str, QueueTotal] = {}
    sums: dict[str, list[float]] = {}
    for point in points:
        row = sums.setdefault(point.queue, [0, 0, 0, 0, 0.0, 0.0])
        row[0] += point.count
        row[1] += point.negative
        row[2] += point.neutral
        row[3] += point.positive
        row[4] += point.compound_sum
        row[5] += point.demand
    for name, row in sorted(sums.items()):
        totals[name] = QueueTotal(
            count=int(row[0]),
            negative=int(row[1]),
            neutral=int(row[2]),
            positive=int(row[3]),
            mean_compound=round(row[4] / row[0], 4) if row[0] else 0.0,
            demand=round(row[5], 2),
        )
    return SignalRead(
        bucket=bucket,
        start=start_at,
        end=end_at,
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
            )
            for point in points
        ],
    )

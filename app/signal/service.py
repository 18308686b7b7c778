"""The demand signal: rollups per hour × queue × channel, kept current as items move.

Every change to what an item contributes (stored, classified, re-routed, re-classified,
votes changed) is applied as a delta: the old contribution is subtracted and the new one
added, so the rollups always equal a from-scratch count without recomputing it.

Weighted demand of one item = 1 + votes + 0.2 × (likes + reposts): an idea with 40 votes
is demand from 41 customers; likes and reposts count as a weaker "me too".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy.orm import Session

from app.signal import repository

Bucket = Literal["hour", "day", "week"]
DEMAND_WEIGHTS: Mapping[str, float] = {"votes": 1.0, "likes": 0.2, "reposts": 0.2}


@dataclass(frozen=True, slots=True)
class Contribution:
    bucket_start: datetime
    queue: str
    channel: str
    sentiment: str
    compound: float
    demand: float


def hour_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def demand_weight(metrics: Mapping[str, Any]) -> float:
    weight = 1.0
    for name, factor in DEMAND_WEIGHTS.items():
        value = metrics.get(name)
        if isinstance(value, int | float) and value > 0:
            weight += factor * float(value)
    return round(weight, 4)


class RollupDeltas:
    """Collects contribution changes within a unit of work; ``flush`` writes them."""

    def __init__(self) -> None:
        self._rows: dict[tuple[datetime, str, str], list[float]] = defaultdict(
            lambda: [0, 0, 0, 0, 0.0, 0.0]
        )

    def add(self, contribution: Contribution | None, sign: int = 1) -> None:
        if contribution is None:
            return
        row = self._rows[(contribution.bucket_start, contribution.queue, contribution.channel)]
        row[0] += sign
        row[1 + ("negative", "neutral", "positive").index(contribution.sentiment)] += sign
        row[4] += sign * contribution.compound
        row[5] += sign * contribution.demand

    def move(self, old: Contribution | None, new: Contribution | None) -> None:
        if old == new:
            return
        self.add(old, -1)
        self.add(new, +1)

    def flush(self, session: Session) -> None:
        rows = [
            {
                "bucket_start": bucket,
                "queue": queue,
                "channel": channel,
                "count": int(values[0]),
                "negative": int(values[1]),
                "neutral": int(values[2]),
                "positive": int(values[3]),
                "compound_sum": float(values[4]),
                "demand": float(values[5]),
            }
            for (bucket, queue, channel), values in self._rows.items()
            if any(values)
        ]
        repository.upsert_deltas(session, rows)
        self._rows.clear()


def bucket_start(moment: datetime, bucket: Bucket) -> datetime:
    hour = hour_of(moment)
    if bucket == "hour":
        return hour
    day = hour.replace(hour=0)
    if bucket == "day":
        return day
    return day - timedelta(days=day.weekday())


@dataclass(slots=True)
class SignalPoint:
    bucket_start: datetime
    queue: str
    channel: str | None
    count: int = 0
    negative: int = 0
    neutral: int = 0
    positive: int = 0
    compound_sum: float = 0.0
    demand: float = 0.0

    @property
    def mean_compound(self) -> float:
        return round(self.compound_sum / self.count, 4) if self.count else 0.0


def series(
    session: Session,
    *,
    start: datetime,
    end: datetime,
    bucket: Bucket,
    queues: Sequence[str] | None = None,
    channels: Sequence[str] | None = None,
    by_channel: bool = False,
) -> list[SignalPoint]:
    """Counts and sentiment mix per bucket × queue (× channel), from the hourly rollups."""
    points: dict[tuple[datetime, str, str | None], SignalPoint] = {}
    for row in repository.rollups(session, start=start, end=end, queues=queues, channels=channels):
        if row.count == 0:
            continue
        key = (
            bucket_start(row.bucket_start, bucket),
            row.queue,
            row.channel if by_channel else None,
        )
        point = points.get(key)
        if point is None:
            point = points[key] = SignalPoint(bucket_start=key[0], queue=key[1], channel=key[2])
        point.count += row.count
        point.negative += row.negative
        point.neutral += row.neutral
        point.positive += row.positive
        point.compound_sum += row.compound_sum
        point.demand += row.demand
    return sorted(points.values(), key=lambda p: (p.bucket_start, p.queue, p.channel or ""))

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class SignalPointRead(BaseModel):
    bucket_start: datetime
    queue: str
    channel: str | None
    count: int
    negative: int
    neutral: int
    positive: int
    mean_compound: float
    demand: float


class QueueTotal(BaseModel):
    count: int
    negative: int
    neutral: int
    positive: int
    mean_compound: float
    demand: float


class SignalRead(BaseModel):
    bucket: str
    start: datetime
    end: datetime
    totals: dict[str, QueueTotal]
    series: list[SignalPointRead]

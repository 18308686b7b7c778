from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


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
    """Weighted demand; duplicates count zero (see the README, "Demand signal")."""
    authors: int
    """Distinct authors (customers) in this bucket; exact, not additive across buckets."""


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
    """The start of the first bucket (``from`` rounded down to the bucket)."""
    end: datetime
    """The end of the last bucket (``to`` rounded up to the bucket)."""
    totals: dict[str, QueueTotal]
    series: list[SignalPointRead]


class ExemplarRead(BaseModel):
    item_id: int
    channel: str
    title: str | None
    text: str
    url: str | None
    created_at: datetime


class SpikeRead(BaseModel):
    id: int
    scope: str
    """``queue`` or ``theme``."""
    key: str
    """The queue, or ``queue/theme label``."""
    metric: str
    """``volume`` or ``negative_share``."""
    state: str
    """``open``, ``acknowledged`` or ``closed``."""
    bucket_start: datetime
    last_bucket_start: datetime
    value: float
    baseline: float
    scale: float
    score: float
    count: int
    raised_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    closed_at: datetime | None
    cause: str | None
    notified_at: datetime | None
    exemplars: list[ExemplarRead]


class SpikeAcknowledge(BaseModel):
    by: str | None = Field(default=None, max_length=255)


class SpikeClose(BaseModel):
    cause: str = Field(min_length=1, max_length=2000)


class ThemePoint(BaseModel):
    bucket_start: datetime
    count: int


class ThemeRead(BaseModel):
    id: int
    queue: str
    label: str
    terms: list[str]
    size: int
    fitted_at: datetime
    negative: int
    neutral: int
    positive: int
    mean_compound: float
    series: list[ThemePoint]
    representatives: list[ExemplarRead]


class IdeaRank(BaseModel):
    item_id: int
    title: str | None
    text: str
    channel: str
    url: str | None
    votes: int
    demand: float
    """The idea's own weighted demand (1 + votes × weight ...)."""
    theme_id: int | None
    theme_label: str | None
    mentions: int
    """Posts, tickets and mail of the same theme (other channels' voices)."""
    score: float
    """demand + mentions: the ranking key."""

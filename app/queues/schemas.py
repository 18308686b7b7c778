from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from app.items.schemas import ItemDetail

QueueName = Literal["product", "marketing", "sales", "service", "triage"]
SentimentLabel = Literal["negative", "neutral", "positive"]


class PriorityBreakdown(BaseModel):
    """Each weighted term of the priority; they add up to ``priority``."""

    sentiment: float
    reach: float
    votes: float
    age: float
    channel: float


class EntryRead(BaseModel):
    id: int
    item_id: int
    queue: str
    state: str
    priority: float
    priority_breakdown: PriorityBreakdown
    claimed_by: str | None
    lease_expires_at: datetime | None
    created_at: datetime
    note: str | None
    routed_by: str


class EntryWithItem(BaseModel):
    entry: EntryRead
    item: ItemDetail


class ResolveBody(BaseModel):
    note: str = Field(min_length=1, max_length=10_000, description="What was done")


class DismissBody(BaseModel):
    reason: str = Field(min_length=1, max_length=2_000, description="Spam, noise, duplicate …")


class RerouteBody(BaseModel):
    queue: QueueName
    reason: str = Field(min_length=1, max_length=2_000)


class SentimentBody(BaseModel):
    label: SentimentLabel
    reason: str | None = Field(default=None, max_length=2_000)


class QueueLimits(BaseModel):
    agent: int
    """Entries one agent may hold at once (in all queues)."""
    queue: int | None
    """Entries this queue may have claimed at once (None: no limit)."""


class QueueRead(BaseModel):
    queue: str
    open: int
    """Waiting, including claims whose lease has lapsed."""
    claimed: int
    """Held under a live lease."""
    resolved: int
    dismissed: int
    oldest_open_at: datetime | None
    """When the longest-waiting entry started waiting."""
    depth: int
    oldest_waiting_seconds: float | None
    median_wait_seconds: float | None
    """From arrival in the queue to first claim, over entries first claimed in the window."""
    arrivals_per_hour: float
    resolutions_per_hour: float
    window_hours: int
    wip: dict[str, int]
    """Entries each agent holds in this queue."""
    limits: QueueLimits


class WeightsRead(BaseModel):
    sentiment: float
    reach: float
    votes: float
    channel: float
    age_per_hour: float
    channels: dict[str, float]
    formula: str = (
        "sentiment×s + reach×r + votes×v + channel×channels[channel] + age_per_hour×hours waiting"
    )


class WeightsUpdate(BaseModel):
    sentiment: float | None = Field(default=None, ge=0)
    reach: float | None = Field(default=None, ge=0)
    votes: float | None = Field(default=None, ge=0)
    channel: float | None = Field(default=None, ge=0)
    age_per_hour: float | None = Field(default=None, ge=0)
    channels: dict[str, float] | None = None

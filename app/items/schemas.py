from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class AuthorRead(BaseModel):
    id: str | None
    handle: str | None
    display_name: str | None
    followers: int | None


class SentimentRead(BaseModel):
    label: str
    compound: float


class RouteRead(BaseModel):
    queue: str
    """The model's best queue (even when the item waits in triage)."""
    confidence: float
    triage: bool
    reason: str
    scores: dict[str, float]
    model_version: str


class EntryRead(BaseModel):
    id: int
    queue: str
    state: str
    routed_by: str
    claimed_by: str | None
    lease_expires_at: datetime | None


class ItemRead(BaseModel):
    id: int
    source_id: int
    external_id: str
    channel: str
    kind: str
    title: str | None
    text: str
    author: AuthorRead
    created_at: datetime
    updated_at: datetime | None
    url: str | None
    metrics: dict[str, Any]
    lang: str | None
    thread_id: str | None
    deleted_at: datetime | None
    """Set when the source reported the record deleted upstream."""
    identity_id: int | None = None
    """The customer behind the author, linked across channels (``GET /identities/{id}``)."""
    dedupe_group_id: int | None = None
    """Set when the item is in a dedupe group: the id of the group's first item, which
    carries the group's demand (the others count as items with zero demand)."""
    dedupe_reason: str | None = None
    """How it was grouped: ``exact``, ``near`` or ``upstream`` (an ideas portal's merge)."""
    queue: str | None
    """Where the item is now (one of the four queues, or triage)."""
    sentiment: SentimentRead | None
    route: RouteRead | None
    entry: EntryRead | None


class ItemDetail(ItemRead):
    raw: dict[str, Any]


class ItemPage(BaseModel):
    items: list[ItemRead]
    next_cursor: str | None


class MetricSnapshotRead(BaseModel):
    observed_at: datetime
    metrics: dict[str, Any]
    delta: dict[str, Any]


class VotesPoint(BaseModel):
    bucket_start: datetime
    queue: str | None
    votes_gained: int
    likes_gained: int
    reposts_gained: int


class VotesRead(BaseModel):
    bucket: str
    start: datetime
    end: datetime
    series: list[VotesPoint]

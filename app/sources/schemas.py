from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from app.db import MAX_ID

MAX_RETENTION_DAYS = 36_500  # a century: more is a typo, and would overflow a date


class SourceCreate(BaseModel):
    name: str = Field(description="Unique: lower-case letters, digits, '-', '_', '.'")
    kind: str = Field(description="Connector kind, e.g. jsonl, twitter, mastodon")
    config: dict[str, Any] = Field(
        default_factory=dict,
        description="Connector settings. Secrets are never given here: name the "
        "environment variable that holds them with a '<name>_env' key.",
    )
    enabled: bool = True
    interval_seconds: int | None = Field(
        default=None, ge=10, le=MAX_ID, description="Sync schedule"
    )
    cron: str | None = Field(
        default=None,
        max_length=120,
        description="Crontab schedule in UTC (e.g. '*/15 * * * *'); wins over interval_seconds",
    )
    retention_days: int | None = Field(
        default=None,
        ge=1,
        le=MAX_RETENTION_DAYS,
        description="Delete items older than this many days",
    )


class SourceUpdate(BaseModel):
    config: dict[str, Any] | None = None
    enabled: bool | None = Field(
        default=None, description="true also clears a pause and the failure backoff"
    )
    interval_seconds: int | None = Field(default=None, ge=10, le=MAX_ID)
    cron: str | None = Field(default=None, max_length=120)
    retention_days: int | None = Field(default=None, ge=1, le=MAX_RETENTION_DAYS)


class SourceRead(BaseModel):
    name: str
    kind: str
    config: dict[str, Any]
    enabled: bool
    interval_seconds: int | None
    cron: str | None = None
    retention_days: int | None = None
    status: str = Field(description="ok, degraded (failing, backing off) or paused (credentials)")
    status_reason: str | None
    consecutive_failures: int = 0
    next_attempt_at: datetime | None = Field(
        default=None, description="Scheduled runs wait until then (backoff or rate limit)"
    )
    cursor: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime


class RunRead(BaseModel):
    id: int
    started_at: datetime
    finished_at: datetime | None
    status: str
    pages: int
    pulled: int
    new: int
    updated: int
    quarantined: int
    error: str | None


class CheckRead(BaseModel):
    ok: bool
    detail: str


class QuarantineRead(BaseModel):
    id: int
    run_id: int | None
    external_id: str | None
    location: str | None
    reason: str
    payload: str
    created_at: datetime

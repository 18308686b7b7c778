from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from app.queues.schemas import QueueName

RoleName = Literal["admin", "agent", "viewer"]


class WhoAmI(BaseModel):
    name: str
    role: str
    queues: list[str] | None


class KeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    role: RoleName
    queues: list[QueueName] | None = None


class KeyRead(BaseModel):
    name: str
    role: str
    queues: list[str] | None
    prefix: str
    """The key's first characters, to recognise it by."""
    created_at: datetime
    revoked_at: datetime | None


class KeyCreated(KeyRead):
    key: str
    """The key itself. Shown this once; only its hash is stored."""


class AuditRead(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    entity: str
    entity_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class AuditPage(BaseModel):
    events: list[AuditRead]
    next_cursor: str | None

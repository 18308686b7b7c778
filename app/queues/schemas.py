from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class QueueRead(BaseModel):
    queue: str
    open: int
    claimed: int
    resolved: int
    dismissed: int
    oldest_open_at: datetime | None

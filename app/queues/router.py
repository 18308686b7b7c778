from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter

from app.db import as_utc
from app.deps import SessionDep
from app.queues import repository
from app.queues.models import QUEUE_NAMES
from app.queues.schemas import QueueRead

router = APIRouter(prefix="/queues", tags=["queues"])


@router.get("", response_model=list[QueueRead], summary="Depth of every queue")
def list_queues(session: SessionDep) -> list[QueueRead]:
    counts: dict[str, dict[str, int]] = {name: {} for name in QUEUE_NAMES}
    oldest: dict[str, datetime] = {}
    for queue, state, count, first in repository.depth_by_state(session):
        counts.setdefault(queue, {})[state] = count
        if state == "open" and first is not None:
            oldest[queue] = as_utc(first)
    return [
        QueueRead(
            queue=name,
            open=states.get("open", 0),
            claimed=states.get("claimed", 0),
            resolved=states.get("resolved", 0),
            dismissed=states.get("dismissed", 0),
            oldest_open_at=oldest.get(name),
        )
        for name, states in counts.items()
    ]

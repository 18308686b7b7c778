"""Writing the audit log. Every state change goes through ``record``, in the same unit of
work as the change itself, so the log and the data never disagree."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from app.audit import repository
from app.db import utcnow

SYSTEM = "system"
"""The actor of changes nobody asked for: lapsed leases, records deleted upstream."""


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    entity: str,
    entity_id: str | int,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> None:
    repository.add_many(
        session,
        [
            {
                "at": utcnow(),
                "actor": actor,
                "action": action,
                "entity": entity,
                "entity_id": str(entity_id),
                "before": dict(before) if before is not None else None,
                "after": dict(after) if after is not None else None,
            }
        ],
    )

"""Retention per source: items older than the source's ``retention_days`` are deleted.

Deleting an item deletes what hangs off it (classification, queue entries, corrections,
metric history) by ``ON DELETE CASCADE``. The demand signal does not move: rollups are
separate tables keyed by hour, queue and channel, and keep their counts.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from app.db import unit_of_work
from app.ops import repository

log = logging.getLogger(__name__)

BATCH = 1000


def apply_retention(
    factory: sessionmaker[Session], now: datetime, *, batch: int = BATCH
) -> dict[str, int]:
    """Delete expired items, one committed batch at a time; returns deletions per source."""
    with factory() as session:
        policies = repository.sources_with_retention(session)
    deleted: dict[str, int] = {}
    for source_id, name, days in policies:
        cutoff = now - timedelta(days=days)
        total = 0
        while True:
            # A batch per transaction keeps locks short on a large backlog.
            with unit_of_work(factory) as session:
                ids = repository.expired_item_ids(session, source_id, cutoff, batch)
                total += repository.delete_items(session, ids)
            if len(ids) < batch:
                break
        deleted[name] = total
        if total:
            log.info(
                "retention: deleted %d items of source %s older than %d days", total, name, days
            )
    return deleted

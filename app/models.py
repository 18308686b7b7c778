"""Every ORM model, imported in one place so metadata is complete (Alembic, tests)."""

from app.db import Base
from app.items.models import Classification, Item, ItemMetricSnapshot
from app.queues.models import Correction, QueueEntry
from app.signal.models import SignalRollup
from app.sources.models import QuarantinedRecord, Source, SourceState, SyncRun

__all__ = [
    "Base",
    "Classification",
    "Correction",
    "Item",
    "ItemMetricSnapshot",
    "QuarantinedRecord",
    "QueueEntry",
    "SignalRollup",
    "Source",
    "SourceState",
    "SyncRun",
]

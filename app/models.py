"""Every ORM model, imported in one place so metadata is complete (Alembic, tests)."""

from app.audit.models import AuditEvent
from app.auth.models import ApiKey
from app.db import Base
from app.identity.models import AuthorIdentity, IdentityKey
from app.items.models import Classification, Item, ItemMetricSnapshot
from app.learning.models import RoutingRule, RuleSetVersion, TrainingRun
from app.queues.models import Correction, PriorityWeights, QueueEntry
from app.signal.models import (
    FeedEvent,
    SignalAuthor,
    SignalBucket,
    SignalRollup,
    Spike,
    Theme,
    ThemeMember,
)
from app.sources.models import QuarantinedRecord, Source, SourceState, SyncRun

__all__ = [
    "ApiKey",
    "AuditEvent",
    "AuthorIdentity",
    "Base",
    "Classification",
    "Correction",
    "FeedEvent",
    "IdentityKey",
    "Item",
    "ItemMetricSnapshot",
    "PriorityWeights",
    "QuarantinedRecord",
    "QueueEntry",
    "RoutingRule",
    "RuleSetVersion",
    "SignalAuthor",
    "SignalBucket",
    "SignalRollup",
    "Source",
    "SourceState",
    "Spike",
    "SyncRun",
    "Theme",
    "ThemeMember",
    "TrainingRun",
]

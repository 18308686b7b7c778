"""Retention per source: old items go with what hangs off them; the signal keeps its counts."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.db import unit_of_work
from app.items.models import Classification, Item
from app.learning.service import Classifier
from app.ops.retention import apply_retention
from app.queues.models import QueueEntry
from app.signal.models import SignalRollup
from app.sources.models import Source
from app.sources.runner import run_sync
from tests.support import BASE_TIME, ListConnector, factory_for, make_item


def test_items_older_than_the_sources_retention_are_deleted_rollups_keep_counts(
    factory: sessionmaker[Session], classifier: Classifier
) -> None:
    with unit_of_work(factory) as session:
        session.add(Source(name="short", kind="list", config={}, retention_days=30))
        session.add(Source(name="forever", kind="list", config={}))
    now = BASE_TIME + timedelta(days=100)
    for name, topic in (("short", "invoice"), ("forever", "login")):
        # Distinct words per source and item: nothing here is a duplicate of anything.
        old = [
            make_item(
                n, f"{topic} problem {n}: case {name}-{n}", created_at=now - timedelta(days=31 + n)
            )
            for n in range(5)
        ]
        recent = [
            make_item(
                10 + n,
                f"{topic} question {n}: case {name}-{10 + n}",
                created_at=now - timedelta(days=29),
            )
            for n in range(3)
        ]
        connector = ListConnector([*old, *recent], page_size=50)
        run_sync(factory, name, classifier, connector_factory=factory_for(connector))
    with factory() as session:
        rollup_before = session.scalar(select(func.sum(SignalRollup.count)))
    assert rollup_before == 16

    deleted = apply_retention(factory, now, batch=2)  # several batches

    assert deleted == {"short": 5}
    with factory() as session:
        kept = session.execute(
            select(Source.name, Item.external_id).join(Source, Source.id == Item.source_id)
        ).all()
        assert sorted(e for n, e in kept if n == "short") == ["ext-10", "ext-11", "ext-12"]
        assert len([e for n, e in kept if n == "forever"]) == 8
        assert session.scalar(select(func.count()).select_from(Classification)) == 11
        assert session.scalar(select(func.count()).select_from(QueueEntry)) == 11
        assert session.scalar(select(func.sum(SignalRollup.count))) == rollup_before

    assert apply_retention(factory, now) == {"short": 0}  # nothing left to delete

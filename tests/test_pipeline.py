"""The walking skeleton end to end on both databases: pull → store → classify → route → signal."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.db import unit_of_work
from app.items.models import Classification, Item
from app.learning.service import Classifier
from app.queues.models import QueueEntry
from app.signal.models import SignalRollup
from app.sources import service
from app.sources.models import QuarantinedRecord, SyncRun
from app.sources.runner import run_sync

QUEUES = {"product", "marketing", "sales", "service"}


def add_source(factory: sessionmaker[Session], name: str, kind: str, config: dict) -> None:  # type: ignore[type-arg]
    with unit_of_work(factory) as session:
        service.create(session, name=name, kind=kind, config=config)


def count(session: Session, model: type) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_demo_sync_stores_routes_and_rolls_up(
    factory: sessionmaker[Session], classifier: Classifier
) -> None:
    add_source(factory, "demo", "demo", {"anchor": "2026-11-20T00:00:00Z"})

    first = run_sync(factory, "demo", classifier)

    assert first.status == "ok", first.error
    assert first.new >= 300
    assert first.quarantined == 0
    with factory() as session:
        items = count(session, Item)
        assert items == first.new
        assert count(session, Classification) == items
        assert count(session, QueueEntry) == items
        queues = set(session.scalars(select(QueueEntry.queue).distinct()))
        assert queues >= QUEUES, f"demo items should reach every queue, got {queues}"
        rolled = session.scalar(select(func.sum(SignalRollup.count)))
        assert rolled == items
        verdicts = session.scalars(select(Classification)).all()
        assert all(v.model_version == classifier.model_version for v in verdicts)
        assert all(v.reason for v in verdicts)
        assert all(0.0 <= v.confidence <= 1.0 for v in verdicts)


def test_rerunning_a_sync_stores_nothing_twice(
    factory: sessionmaker[Session], classifier: Classifier
) -> None:
    add_source(factory, "demo", "demo", {"anchor": "2026-11-20T00:00:00Z"})
    first = run_sync(factory, "demo", classifier)
    second = run_sync(factory, "demo", classifier)

    assert second.status == "ok"
    assert second.new == 0
    assert second.updated == 0
    with factory() as session:
        assert count(session, Item) == first.new
        assert count(session, QueueEntry) == first.new
        assert session.scalar(select(func.sum(SignalRollup.count))) == first.new
        assert count(session, SyncRun) == 2


def test_jsonl_source_quarantines_bad_lines_with_line_numbers(
    factory: sessionmaker[Session], classifier: Classifier, tmp_path: Path
) -> None:
    export = tmp_path / "export.jsonl"
    lines = [
        json.dumps({"id": "a1", "text": "Please add an export to CSV for reports"}),
        "{not json",
        json.dumps({"id": "a2", "text": "I was charged twice this month, refund please"}),
        json.dumps({"text": "no id here"}),
        json.dumps({"id": "a3", "text": "How much is the enterprise plan for 300 seats?"}),
    ]
    export.write_text("\n".join(lines) + "\n")
    add_source(factory, "export", "jsonl", {"path": str(export)})

    summary = run_sync(factory, "export", classifier)

    assert summary.status == "ok", summary.error
    assert (summary.new, summary.quarantined) == (3, 2)
    with factory() as session:
        records = session.scalars(
            select(QuarantinedRecord).order_by(QuarantinedRecord.location)
        ).all()
        assert [r.location for r in records] == ["line 2", "line 4"]
        assert records[0].payload == "{not json"
        assert all(r.reason for r in records)
        external_ids = set(session.scalars(select(Item.external_id)))
        assert external_ids == {"a1", "a2", "a3"}

    # Lines appended later are picked up; nothing is stored or quarantined twice.
    with export.open("a") as handle:
        handle.write(json.dumps({"id": "a4", "text": "Love the new dashboard design!"}) + "\n")
    again = run_sync(factory, "export", classifier)
    assert (again.new, again.quarantined) == (1, 0)
    with factory() as session:
        assert count(session, Item) == 4
        assert count(session, QuarantinedRecord) == 2

"""Ideas as demand: votes change upstream, the item is updated in place with its history."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.audit.models import AuditEvent
from app.db import unit_of_work
from app.items.models import Classification, Item, ItemMetricSnapshot
from app.learning.service import Classifier
from app.queues.models import QueueEntry
from app.signal.models import SignalRollup
from app.sources.models import Source
from app.sources.runner import run_sync
from connectors.canny import CannyConnector
from tests.connectors.fakes.canny_api import API_KEY, API_KEY_ENV, BASE_URL, START, FakeCannyApi
from tests.support import ListConnector, factory_for, make_item

CONFIG = {"api_key_env": API_KEY_ENV, "base_url": BASE_URL, "page_size": 10}


class Clock:
    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


def canny_factory(api: FakeCannyApi, clock: Clock) -> Any:
    return lambda _source: CannyConnector(
        CONFIG, env={API_KEY_ENV: API_KEY}, transport=api.transport(), now=clock
    )


def sync(factory: sessionmaker[Session], classifier: Classifier, connector_factory: Any) -> Any:
    summary = run_sync(factory, "ideas", classifier, connector_factory=connector_factory)
    assert summary.status == "ok", summary.error
    return summary


def by_external_id(session: Session) -> dict[str, Item]:
    return {item.external_id: item for item in session.scalars(select(Item))}


def test_vote_changes_update_in_place_keep_history_and_skip_reclassification(
    factory: sessionmaker[Session], classifier: Classifier, client: TestClient
) -> None:
    with unit_of_work(factory) as session:
        session.add(Source(name="ideas", kind="canny", config=CONFIG))
    api = FakeCannyApi()
    dark = api.add_post("Dark mode for the web app", "My eyes hurt at night", score=5)
    export = api.add_post("Export boards to CSV", "We need this for audits", score=40)
    clock = Clock(START + timedelta(days=1))

    first = sync(factory, classifier, canny_factory(api, clock))
    assert first.new == 2
    with factory() as session:
        items = by_external_id(session)
        verdict_before = session.get_one(Classification, items[dark["id"]].id).classified_at

    api.set_votes(dark["id"], 20)
    api.set_status(export["id"], "planned")
    export["details"] = "We need this for audits, and our accountant asks every month"
    clock.moment += timedelta(hours=25)  # a full refresh is due
    second = sync(factory, classifier, canny_factory(api, clock))

    assert second.new == 0
    assert second.updated >= 2
    with factory() as session:
        items = by_external_id(session)
        assert len(items) == 2
        assert items[dark["id"]].metrics["votes"] == 20
        assert items[export["id"]].raw["andon"]["status"] == "planned"
        dark_verdict = session.get_one(Classification, items[dark["id"]].id)
        assert dark_verdict.classified_at == verdict_before, "votes alone never reclassify"
        export_verdict = session.get_one(Classification, items[export["id"]].id)
        assert export_verdict.classified_at > verdict_before, "edited text is reclassified"
        assert export_verdict.content_hash == items[export["id"]].content_hash
        snapshots = session.scalars(
            select(ItemMetricSnapshot)
            .where(ItemMetricSnapshot.item_id == items[dark["id"]].id)
            .order_by(ItemMetricSnapshot.id)
        ).all()
        assert [s.metrics["votes"] for s in snapshots] == [5, 20]
        assert [s.delta.get("votes") for s in snapshots] == [None, 15]
        assert session.scalar(select(func.count()).select_from(QueueEntry)) == 2
        assert session.scalar(select(func.sum(SignalRollup.count))) == 2
        # demand = 1 + votes for each idea: (1 + 20) + (1 + 40)
        assert session.scalar(select(func.sum(SignalRollup.demand))) == 62.0
        dark_id = items[dark["id"]].id

    history = client.get(f"/items/{dark_id}/history").json()
    assert [row["metrics"]["votes"] for row in history] == [5, 20]
    now = datetime.now(tz=START.tzinfo)
    votes = client.get(
        "/signal/votes",
        params={
            "from": (now - timedelta(days=1)).isoformat(),
            "to": (now + timedelta(hours=1)).isoformat(),
        },
    ).json()
    assert sum(point["votes_gained"] for point in votes["series"]) == 15
    assert client.get("/items/999999/history").status_code == 404


def test_a_record_deleted_upstream_is_kept_and_its_open_work_dismissed(
    factory: sessionmaker[Session], classifier: Classifier
) -> None:
    with unit_of_work(factory) as session:
        session.add(Source(name="ideas", kind="list", config={}))
    ticket = make_item(1, "My invoice is wrong", channel="zendesk", kind="ticket")
    sync(factory, classifier, factory_for(ListConnector([ticket])))

    gone = replace(ticket, raw={"andon": {"deleted": True}})
    summary = sync(factory, classifier, factory_for(ListConnector([ticket, gone])))

    assert summary.updated == 1
    with factory() as session:
        item = session.scalar(select(Item))
        assert item is not None
        assert item.deleted_at is not None
        entry = session.scalar(select(QueueEntry))
        assert entry is not None
        assert (entry.state, entry.note) == ("dismissed", "deleted upstream")
        assert session.scalar(select(func.sum(SignalRollup.count))) == 1
        logged = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "entry.dismiss")
        ).all()
        assert [(row.actor, row.entity_id, row.before, row.after) for row in logged] == [
            (
                "system",
                str(entry.id),
                {"queue": entry.queue, "state": "open"},
                {"queue": entry.queue, "state": "dismissed", "note": "deleted upstream"},
            )
        ]


def test_rejected_ideas_do_not_block_the_rest(
    factory: sessionmaker[Session], classifier: Classifier
) -> None:
    with unit_of_work(factory) as session:
        session.add(Source(name="ideas", kind="canny", config=CONFIG))
    api = FakeCannyApi()
    good = api.add_post("Bulk edit tasks", score=3)
    bad = api.add_post("Broken idea", score=1)
    api.corrupt(bad["id"], created="yesterday")

    summary = sync(factory, classifier, canny_factory(api, Clock(START + timedelta(days=1))))

    assert (summary.new, summary.quarantined) == (1, 1)
    with factory() as session:
        assert set(by_external_id(session)) == {good["id"]}

"""The scheduler follows the sources; failing sources back off; one runner per source."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from app import jobs
from app.config import Settings
from app.db import unit_of_work, utcnow
from app.learning.service import Classifier
from app.main import create_app
from app.ops import locks
from app.ops.backoff import Backoff
from app.scheduler import SourceScheduler
from app.sources import service
from app.sources.models import Source, SyncRun
from app.sources.runner import SourceBusy, lock_name, run_sync
from connectors.errors import AuthFailed, UpstreamError
from tests.conftest import api_key
from tests.support import ListConnector, factory_for, make_item


def add_source(factory: sessionmaker[Session], name: str = "src", **fields: object) -> int:
    with unit_of_work(factory) as session:
        source = Source(name=name, kind="list", config={}, **fields)
        session.add(source)
        session.flush()
        return source.id


@pytest.fixture
def scheduler(
    factory: sessionmaker[Session], classifier: Classifier, settings: Settings
) -> Iterator[SourceScheduler]:
    """A started but paused scheduler: jobs are scheduled and inspectable, none runs."""
    scheduler = SourceScheduler(factory, classifier, settings)
    scheduler.start(paused=True)
    yield scheduler
    scheduler.shutdown(wait=False)


def test_jobs_follow_the_sources_schedules(
    factory: sessionmaker[Session], scheduler: SourceScheduler
) -> None:
    add_source(factory, "every-minute", interval_seconds=60)
    add_source(factory, "nightly", cron="0 3 * * *", interval_seconds=60)
    add_source(factory, "off", interval_seconds=60, enabled=False)
    add_source(factory, "stuck", interval_seconds=60, status="paused")
    add_source(factory, "manual")

    scheduler.reconcile()

    triggers = scheduler.sync_jobs()
    assert set(triggers) == {"every-minute", "nightly"}
    minute = triggers["every-minute"]
    assert isinstance(minute, IntervalTrigger)
    assert minute.interval == timedelta(seconds=60)
    assert isinstance(triggers["nightly"], CronTrigger)  # cron wins over the interval

    with unit_of_work(factory) as session:
        service.update(session, "every-minute", {"interval_seconds": 300})
        service.update(session, "nightly", {"enabled": False})
        service.update(session, "stuck", {"enabled": True})  # an admin re-enables it
        service.delete(session, "off")
    scheduler.reconcile()

    triggers = scheduler.sync_jobs()
    assert set(triggers) == {"every-minute", "stuck"}
    minute = triggers["every-minute"]
    assert isinstance(minute, IntervalTrigger)
    assert minute.interval == timedelta(seconds=300)


def test_the_periodic_jobs_are_scheduled(scheduler: SourceScheduler) -> None:
    ids = {job.id for job in scheduler.scheduler.get_jobs()}
    assert {"ops:reconcile", "ops:retention", "queues:lease-expiry"} <= ids


def test_schedule_changes_through_the_api_apply_without_a_restart(
    settings: Settings, classifier: Classifier, engine: Engine, tmp_path: Path
) -> None:
    export = tmp_path / "export.jsonl"
    export.write_text('{"id": "1", "text": "the app crashes on login"}\n')
    app = create_app(settings, classifier=classifier, start_scheduler=True)
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {api_key(engine, 'ops-admin', 'admin')}"
        scheduler: SourceScheduler = app.state.scheduler

        created = client.post(
            "/sources",
            json={
                "name": "export",
                "kind": "jsonl",
                "config": {"path": str(export)},
                "interval_seconds": 3600,
            },
        )
        assert created.status_code == 201, created.text
        trigger = scheduler.sync_jobs()["export"]
        assert isinstance(trigger, IntervalTrigger)
        assert trigger.interval == timedelta(hours=1)

        changed = client.patch("/sources/export", json={"cron": "*/5 * * * *"})
        assert changed.status_code == 200, changed.text
        assert changed.json()["cron"] == "*/5 * * * *"
        assert isinstance(scheduler.sync_jobs()["export"], CronTrigger)

        refused = client.patch("/sources/export", json={"cron": "every five minutes"})
        assert refused.status_code == 422
        assert "crontab" in refused.json()["detail"]

        assert client.patch("/sources/export", json={"enabled": False}).status_code == 200
        assert "export" not in scheduler.sync_jobs()


def test_a_failing_source_backs_off_with_growing_delays_and_shows_degraded(
    factory: sessionmaker[Session], classifier: Classifier
) -> None:
    add_source(factory)
    backoff = Backoff(base_seconds=60, max_seconds=200, jitter=0.0)
    waits = []
    for _ in range(4):
        broken = ListConnector([make_item(1)], fail_on_call=1, error=UpstreamError("503"))
        started = utcnow()
        summary = run_sync(
            factory, "src", classifier, connector_factory=factory_for(broken), backoff=backoff
        )
        assert summary.status == "failed"
        with factory() as session:
            source = session.scalars(select(Source)).one()
            assert source.status == "degraded"
            assert source.next_attempt_at is not None
            waits.append(round((source.next_attempt_at - started).total_seconds() / 10) * 10)
    assert source.consecutive_failures == 4
    assert "4 failed run(s) in a row" in (source.status_reason or "")
    assert waits == [60, 120, 200, 200]  # doubling, then the cap

    healthy = ListConnector([make_item(1)])
    assert run_sync(factory, "src", classifier, connector_factory=factory_for(healthy)).new == 1
    with factory() as session:
        source = session.scalars(select(Source)).one()
        assert (source.status, source.consecutive_failures, source.next_attempt_at) == (
            "ok",
            0,
            None,
        )


def test_jitter_keeps_the_delay_within_the_cap() -> None:
    low = Backoff(base_seconds=10, max_seconds=100, jitter=0.5, uniform=lambda: 1.0)
    high = Backoff(base_seconds=10, max_seconds=100, jitter=0.5, uniform=lambda: 0.0)
    assert [low.delay(n) for n in (1, 2, 3, 10)] == [5.0, 10.0, 20.0, 50.0]
    assert [high.delay(n) for n in (1, 2, 3, 10)] == [10.0, 20.0, 40.0, 100.0]


def test_a_scheduled_run_waits_out_the_backoff_and_skips_a_paused_source(
    factory: sessionmaker[Session], classifier: Classifier
) -> None:
    add_source(factory, "waiting", next_attempt_at=utcnow() + timedelta(minutes=5))
    add_source(factory, "paused", status="paused", status_reason="401 invalid token")

    assert jobs.sync_source(factory, "waiting", classifier) is None
    assert jobs.sync_source(factory, "paused", classifier) is None

    with factory() as session:
        assert session.scalars(select(SyncRun)).all() == []


def test_refused_credentials_pause_until_an_admin_re_enables(
    factory: sessionmaker[Session], classifier: Classifier, scheduler: SourceScheduler
) -> None:
    add_source(factory, interval_seconds=60)
    refused = ListConnector([], fail_on_call=1, error=AuthFailed("401 invalid token"))
    run_sync(factory, "src", classifier, connector_factory=factory_for(refused))
    scheduler.reconcile()
    assert "src" not in scheduler.sync_jobs()

    with unit_of_work(factory) as session:
        source = service.update(session, "src", {"enabled": True})
        assert (source.status, source.status_reason, source.consecutive_failures) == (
            "ok",
            None,
            0,
        )
    scheduler.reconcile()
    assert "src" in scheduler.sync_jobs()


def test_a_second_runner_skips_without_a_run_row_or_touching_the_holders_run(
    engine: Engine, factory: sessionmaker[Session], classifier: Classifier
) -> None:
    """On PostgreSQL the lock is held on another connection: what another process does."""
    source_id = add_source(factory)
    with unit_of_work(factory) as session:
        session.add(SyncRun(source_id=source_id, status="running"))  # the holder's run

    with locks.exclusive(engine, lock_name(source_id)) as held:
        assert held
        with pytest.raises(SourceBusy, match="another runner holds the source"):
            run_sync(factory, "src", classifier, connector_factory=factory_for(ListConnector([])))
        assert jobs.sync_source(factory, "src", classifier) is None

    with factory() as session:
        assert list(session.scalars(select(SyncRun.status))) == ["running"]
    run_sync(factory, "src", classifier, connector_factory=factory_for(ListConnector([])))
    with factory() as session:
        assert sorted(session.scalars(select(SyncRun.status))) == ["interrupted", "ok"]


def test_the_api_answers_409_while_another_runner_syncs(
    client: TestClient, engine: Engine, factory: sessionmaker[Session], tmp_path: Path
) -> None:
    export = tmp_path / "export.jsonl"
    export.write_text('{"id": "1", "text": "love the new dashboard"}\n')
    created = client.post(
        "/sources", json={"name": "export", "kind": "jsonl", "config": {"path": str(export)}}
    )
    assert created.status_code == 201, created.text
    with factory() as session:
        source_id = service.get(session, "export").id

    with locks.exclusive(engine, lock_name(source_id)):
        busy = client.post("/sources/export/sync")
    assert busy.status_code == 409
    assert busy.headers["content-type"] == "application/problem+json"
    assert "another runner holds the source" in busy.json()["detail"]
    assert client.post("/sources/export/sync").json()["new"] == 1


def test_a_periodic_job_runs_once_at_a_time_across_workers(
    engine: Engine, factory: sessionmaker[Session]
) -> None:
    ran: list[str] = []
    with locks.exclusive(engine, "andon.job:retention"):
        assert jobs.exclusive_job(factory, "retention", lambda: ran.append("x")) is False
    assert ran == []
    assert jobs.exclusive_job(factory, "retention", lambda: ran.append("x")) is True
    assert ran == ["x"]

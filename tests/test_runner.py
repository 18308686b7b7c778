"""The sync runner's guarantees: per-page commits, no loss, no repeats, honest run records."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.db import unit_of_work
from app.items.models import Item
from app.learning.service import Classifier
from app.signal.models import SignalRollup
from app.sources.models import QuarantinedRecord, Source, SourceState, SyncRun
from app.sources.runner import run_sync
from connectors.base import Rejected
from connectors.errors import AuthFailed, RateLimited, UpstreamError
from tests.support import ListConnector, factory_for, make_item


def add_source(factory: sessionmaker[Session], name: str = "src") -> None:
    with unit_of_work(factory) as session:
        session.add(Source(name=name, kind="list", config={}))


def stored_ids(factory: sessionmaker[Session]) -> list[str]:
    with factory() as session:
        return sorted(session.scalars(select(Item.external_id)))


def test_failure_between_pages_keeps_committed_pages_and_resumes_without_duplicates(
    factory: sessionmaker[Session], classifier: Classifier
) -> None:
    add_source(factory)
    items = [make_item(n) for n in range(35)]
    broken = ListConnector(items, page_size=10, fail_on_call=3, error=UpstreamError("502"))

    first = run_sync(factory, "src", classifier, connector_factory=factory_for(broken))

    assert first.status == "failed"
    assert "502" in (first.error or "")
    assert first.pages == 2
    assert len(stored_ids(factory)) == 20
    with factory() as session:
        state = session.get_one(SourceState, session.scalar(select(Source.id)))
        assert state.cursor == {"offset": 20}
        source = session.scalar(select(Source))
        assert source is not None
        assert source.status == "degraded"

    healthy = ListConnector(items, page_size=10)
    second = run_sync(factory, "src", classifier, connector_factory=factory_for(healthy))

    assert second.status == "ok"
    assert second.new == 15
    assert stored_ids(factory) == sorted(f"ext-{n}" for n in range(35))
    with factory() as session:
        assert session.scalar(select(func.sum(SignalRollup.count))) == 35


def test_a_repeated_cursor_is_refused(
    factory: sessionmaker[Session], classifier: Classifier
) -> None:
    add_source(factory)
    looping = ListConnector([make_item(n) for n in range(30)], repeat_cursor=True)

    summary = run_sync(factory, "src", classifier, connector_factory=factory_for(looping))

    assert summary.status == "failed"
    assert "repeated cursor" in (summary.error or "")
    # The first page moved from "no cursor" to offset 0; the second repeated it.
    assert looping.calls == 2
    assert len(stored_ids(factory)) == 10


def test_short_rate_limit_is_waited_out_long_one_ends_the_run(
    factory: sessionmaker[Session], classifier: Classifier
) -> None:
    add_source(factory)
    slept: list[float] = []
    items = [make_item(n) for n in range(20)]
    short = ListConnector(items, fail_on_call=2, error=RateLimited("429", retry_after=2.0))

    summary = run_sync(
        factory, "src", classifier, connector_factory=factory_for(short), sleep=slept.append
    )
    assert summary.status == "ok"
    assert slept == [2.0]
    assert len(stored_ids(factory)) == 20

    add_source(factory, "other")
    long = ListConnector(items, fail_on_call=1, error=RateLimited("429", retry_after=900.0))
    summary = run_sync(
        factory, "other", classifier, connector_factory=factory_for(long), sleep=slept.append
    )
    assert summary.status == "rate_limited"
    assert "900" in (summary.error or "")
    assert slept == [2.0]


def test_auth_failure_pauses_the_source(
    factory: sessionmaker[Session], classifier: Classifier
) -> None:
    add_source(factory)
    refused = ListConnector([], fail_on_call=1, error=AuthFailed("401 invalid token"))

    summary = run_sync(factory, "src", classifier, connector_factory=factory_for(refused))

    assert summary.status == "auth_failed"
    with factory() as session:
        source = session.scalar(select(Source))
        assert source is not None
        assert (source.status, source.status_reason) == ("paused", "401 invalid token")


def test_rejects_are_quarantined_and_the_rest_of_the_page_stored(
    factory: sessionmaker[Session], classifier: Classifier
) -> None:
    add_source(factory)
    reject = Rejected(reason="missing created_at", payload='{"id": "x"}', external_id="x")
    connector = ListConnector([make_item(n) for n in range(5)], rejects_on_first_page=[reject])

    summary = run_sync(factory, "src", classifier, connector_factory=factory_for(connector))

    assert (summary.new, summary.quarantined, summary.pulled) == (5, 1, 6)
    with factory() as session:
        record = session.scalar(select(QuarantinedRecord))
        assert record is not None
        assert (record.external_id, record.reason, record.payload) == (
            "x",
            "missing created_at",
            '{"id": "x"}',
        )
        assert record.run_id == summary.run_id


def test_changed_metrics_update_in_place_and_move_demand(
    factory: sessionmaker[Session], classifier: Classifier
) -> None:
    add_source(factory)
    idea = make_item(
        1, "Please add a dark mode", kind="idea", channel="canny", metrics={"votes": 3}
    )
    run_sync(factory, "src", classifier, connector_factory=factory_for(ListConnector([idea])))
    voted = make_item(
        1, "Please add a dark mode", kind="idea", channel="canny", metrics={"votes": 10}
    )

    # Upstream re-delivers the idea with more votes after the stored cursor (offset 1).
    summary = run_sync(
        factory, "src", classifier, connector_factory=factory_for(ListConnector([idea, voted]))
    )

    assert (summary.new, summary.updated) == (0, 1)
    with factory() as session:
        assert session.scalar(select(func.sum(SignalRollup.count))) == 1
        assert session.scalar(select(func.sum(SignalRollup.demand))) == 11.0


def test_an_interrupted_run_is_marked_on_the_next_run(
    factory: sessionmaker[Session], classifier: Classifier
) -> None:
    add_source(factory)
    with unit_of_work(factory) as session:
        source_id = session.scalar(select(Source.id))
        assert source_id is not None
        session.add(SyncRun(source_id=source_id, status="running"))

    run_sync(factory, "src", classifier, connector_factory=factory_for(ListConnector([])))

    with factory() as session:
        statuses = sorted(session.scalars(select(SyncRun.status)))
        assert statuses == ["interrupted", "ok"]

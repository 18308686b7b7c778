"""The database goes away mid-run and comes back: the API answers 503 meanwhile, jobs
resume, and nothing is lost or stored twice."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from app import migrate
from app.config import Settings
from app.db import make_engine, make_sessionmaker, unit_of_work
from app.items.models import Item
from app.learning.service import Classifier
from app.main import create_app
from app.queues.models import QueueEntry
from app.sources.models import Source, SyncRun
from app.sources.runner import run_sync
from connectors.base import Cursor, Page
from tests.conftest import require
from tests.private_postgres import PrivateCluster, server_bin
from tests.support import ListConnector, make_item


@pytest.fixture
def cluster() -> Iterator[PrivateCluster]:
    bindir = server_bin()
    if bindir is None:
        require("PostgreSQL server binaries not found (apt-get install postgresql)")
    assert bindir is not None
    cluster = PrivateCluster(bindir)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


class StopsTheDatabase(ListConnector):
    """Serves pages; on the given call, once ``committed`` items are stored, it stops the
    database before answering.

    The runner stores a page while it pulls the next one, so "mid-sync" is pinned down
    by waiting for the earlier pages' commit (which a slow page never holds back).
    """

    def __init__(
        self, cluster: PrivateCluster, on_call: int, committed: int, **kwargs: object
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.cluster = cluster
        self.on_call = on_call
        self.committed = committed

    def pull(self, cursor: Cursor | None) -> Page:
        page = super().pull(cursor)
        if self.calls == self.on_call:
            probe = make_engine(self.cluster.url)
            deadline = time.monotonic() + 60
            with probe.connect() as connection:
                while time.monotonic() < deadline:
                    count = connection.scalar(select(func.count()).select_from(Item))
                    connection.rollback()
                    if count is not None and count >= self.committed:
                        break
                    time.sleep(0.05)
            probe.dispose()
            self.cluster.stop()
        return page


def test_database_outage_mid_sync_and_during_requests(
    cluster: PrivateCluster, classifier: Classifier
) -> None:
    engine = make_engine(cluster.url)
    migrate.upgrade(engine)
    factory = make_sessionmaker(engine)
    with unit_of_work(factory) as session:
        session.add(Source(name="src", kind="list", config={}))
    items = [make_item(n) for n in range(50)]

    # The database stops while the third page is being pulled: two pages are committed.
    breaker = StopsTheDatabase(cluster, on_call=3, committed=20, items=items, page_size=10)
    with pytest.raises(OperationalError):
        run_sync(factory, "src", classifier, connector_factory=lambda _s: breaker)

    settings = Settings(database_url=cluster.url, scheduler=False, demo=False, public_read=True)
    app = create_app(settings, classifier=classifier, start_scheduler=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        down = client.get("/items")
        assert down.status_code == 503
        assert down.headers["content-type"] == "application/problem+json"
        assert down.json()["detail"] == "the database is not reachable"
        assert client.get("/healthz").status_code == 200, "the process itself is fine"
        not_ready = client.get("/readyz")
        assert not_ready.status_code == 503
        assert not_ready.headers["content-type"] == "application/problem+json"

        cluster.start()

        assert client.get("/readyz").status_code == 200
        assert len(client.get("/items", params={"limit": 500}).json()["items"]) == 20

    healthy = ListConnector(items, page_size=10)
    summary = run_sync(factory, "src", classifier, connector_factory=lambda _s: healthy)
    assert summary.status == "ok"
    with factory() as session:
        stored = list(session.scalars(select(Item.external_id)))
        assert sorted(stored) == sorted(item.external_id for item in items)
        assert session.scalar(select(func.count()).select_from(Item)) == 50
        runs = list(session.scalars(select(SyncRun.status).order_by(SyncRun.id)))
        assert runs == ["interrupted", "ok"]
    engine.dispose()


def test_claims_and_closes_answer_503_while_the_database_is_down_then_work_again(
    cluster: PrivateCluster, classifier: Classifier
) -> None:
    # On PostgreSQL claims and closes run over async connections of their own
    # (app.queues.fast): an outage is 503 problem+json there too, and they recover.
    from tests.conftest import api_key
    from tests.test_queues import Spec, seed

    engine = make_engine(cluster.url)
    migrate.upgrade(engine)
    factory = make_sessionmaker(engine)
    seed(factory, [Spec(), Spec(), Spec()])
    agent = {"Authorization": f"Bearer {api_key(engine, 'ann', 'agent')}"}
    settings = Settings(database_url=cluster.url, scheduler=False, demo=False)
    app = create_app(settings, classifier=classifier, start_scheduler=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        first = client.post("/queues/service/claim", headers=agent)  # the key is now cached
        assert first.status_code == 200, first.text
        entry_id = first.json()["entry"]["id"]

        cluster.stop()
        for down in (
            client.post("/queues/service/claim", headers=agent),
            client.post(f"/entries/{entry_id}/resolve", json={"note": "x"}, headers=agent),
        ):
            assert down.status_code == 503, down.text
            assert down.headers["content-type"] == "application/problem+json"
            assert down.json()["detail"] == "the database is not reachable"

        cluster.start()
        deadline = time.monotonic() + 30
        resolved = client.post(f"/entries/{entry_id}/resolve", json={"note": "ok"}, headers=agent)
        while resolved.status_code == 503 and time.monotonic() < deadline:
            time.sleep(0.5)
            resolved = client.post(
                f"/entries/{entry_id}/resolve", json={"note": "ok"}, headers=agent
            )
        assert resolved.status_code == 200, resolved.text
        assert resolved.json()["state"] == "resolved"
        assert client.post("/queues/service/claim", headers=agent).status_code == 200
    with factory() as session:
        states = sorted(session.scalars(select(QueueEntry.state)))
        assert states == ["claimed", "open", "resolved"], "nothing lost, nothing twice"
    engine.dispose()

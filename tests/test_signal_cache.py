"""``GET /signal`` answers from a cache, and never a stale one: on both databases.

The cache is keyed by the rollups' change token, which every rollup write changes in its
own transaction (``mark_signal_changed``, called by ``RollupDeltas.flush``). So a commit
that changes the rollups — from this process or another one — is seen by the next request.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.db import unit_of_work
from app.learning.service import Classifier
from app.main import create_app
from app.signal import router as signal_router
from app.signal.cache import SIGNAL_CACHE, SignalCache, TokenReads
from app.signal.service import Contribution, RollupDeltas
from tests.test_signal import sync_demo

WINDOW = {"from": "2026-10-01T00:00:00Z", "to": "2026-11-21T00:00:00Z", "bucket": "day"}
HOUR = datetime(2026, 11, 19, 10, tzinfo=UTC)
T = TypeVar("T")


@pytest.fixture
def computed(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Every answer the endpoint actually computes (a cached answer is not computed)."""
    calls: list[Any] = []
    original = signal_router.signal_read

    def counting(session: Session, query: Any) -> Any:
        calls.append(query)
        return original(session, query)

    monkeypatch.setattr(signal_router, "signal_read", counting)
    SIGNAL_CACHE.clear()
    yield calls
    SIGNAL_CACHE.clear()


def totals(client: TestClient, **params: str) -> dict[str, int]:
    response = client.get("/signal", params={**WINDOW, **params})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return {queue: row["count"] for queue, row in response.json()["totals"].items()}


def add_elsewhere(factory: sessionmaker[Session], queue: str, items: int) -> None:
    """Rollups written by another unit of work (the worker's ingest, another replica)."""
    with unit_of_work(factory) as session:
        deltas = RollupDeltas()
        for n in range(items):
            share = Contribution(HOUR, queue, "twitter", "negative", -0.5, 1.0, f"x:{n}")
            deltas.add(share)
        deltas.flush(session)


def test_a_repeated_query_is_answered_from_the_cache_until_the_rollups_change(
    client: TestClient, factory: sessionmaker[Session], computed: list[Any]
) -> None:
    sync_demo(client)
    first = totals(client)
    assert totals(client) == first
    assert len(computed) == 1  # the second answer was the cached one
    assert totals(client, group_by="channel") is not None
    assert len(computed) == 2  # another question, another answer

    add_elsewhere(factory, "product", 3)
    after = totals(client)
    assert after["product"] == first.get("product", 0) + 3  # at once, not after a TTL
    assert len(computed) == 3

    claimed = client.post("/queues/product/claim")
    assert claimed.status_code == 200, claimed.text
    entry_id = claimed.json()["entry"]["id"]
    moved = client.post(
        f"/entries/{entry_id}/reroute", json={"queue": "sales", "reason": "pricing"}
    )
    assert moved.status_code == 200, moved.text
    rerouted = totals(client)
    assert rerouted["product"] == after["product"] - 1
    assert rerouted["sales"] == after.get("sales", 0) + 1


def test_the_cache_can_be_turned_off(
    settings: Settings,
    classifier: Classifier,
    engine: Engine,
    factory: sessionmaker[Session],
    computed: list[Any],
) -> None:
    add_elsewhere(factory, "service", 2)
    app = create_app(settings.model_copy(update={"signal_cache": False, "public_read": True}))
    with TestClient(app) as client:
        assert totals(client) == {"service": 2}
        assert totals(client) == {"service": 2}
    assert len(computed) == 2
    assert len(SIGNAL_CACHE) == 0


def test_answers_of_an_old_token_are_dropped_and_the_cache_is_bounded() -> None:
    cache = SignalCache(max_entries=2)
    cache.put(None, "q", b"never")  # no token: rollups not written through the hook
    assert cache.get(None, "q") is None
    cache.put("t1", "a", b"1")
    cache.put("t1", "b", b"2")
    cache.put("t1", "c", b"3")
    assert (cache.get("t1", "a"), cache.get("t1", "c"), len(cache)) == (None, b"3", 2)
    assert cache.get("t2", "c") is None  # the rollups changed: the token did too
    cache.put("t2", "a", b"new")
    assert (cache.get("t1", "c"), cache.get("t2", "a"), len(cache)) == (None, b"new", 1)


def test_an_invalid_query_is_still_a_clear_error(client: TestClient) -> None:
    late = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    response = client.get("/signal", params={"from": late, "to": "2026-01-01T00:00:00Z"})
    assert response.status_code == 422
    assert "before" in response.json()["detail"]


def run_alone(work: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` in a thread of its own: other tests (Playwright's browser) leave an
    event loop running in the main thread, where ``asyncio.run`` refuses to start."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work).result()


def test_concurrent_requests_share_token_reads_and_never_get_an_older_one() -> None:
    """Requests that arrive during a read wait for the next one, which starts after them."""
    started, release = threading.Event(), threading.Event()
    tokens = iter(["before", "after", "later"])

    def read() -> str | None:
        started.set()
        release.wait(5)
        return next(tokens)

    reads = TokenReads(read)

    async def scenario() -> tuple[str | None, list[str | None], str | None]:
        first = asyncio.ensure_future(reads.current())
        await asyncio.to_thread(started.wait, 5)
        started.clear()
        # "after" is committed now: everyone who arrives from here on must see it.
        waiting = [asyncio.ensure_future(reads.current()) for _ in range(10)]
        await asyncio.sleep(0)
        release.set()
        return await first, list(await asyncio.gather(*waiting)), await reads.current()

    first, waiting, last = run_alone(scenario())
    assert first == "before"
    assert waiting == ["after"] * 10  # one read for all ten, begun after they arrived
    assert last == "later"  # nothing in flight: a read of its own
    assert reads.reads == 3


def test_a_failed_token_read_fails_the_requests_that_waited_for_it() -> None:
    outcomes = iter([RuntimeError("database gone"), "t1"])

    def read() -> str | None:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    reads = TokenReads(read)

    async def scenario() -> str | None:
        with pytest.raises(RuntimeError, match="database gone"):
            await reads.current()
        return await reads.current()  # the next request reads again

    assert run_alone(scenario()) == "t1"

"""Upstream faults cost nothing: a chaotic source converges to exactly its upstream set.

The fake Mastodon instance is wrapped in a seeded chaos layer that answers 429 (with
Mastodon's headers), 500, 503, timeouts, truncated JSON, an HTML maintenance page with a
200, stale duplicated pages and pages in shuffled order. The scheduler's behaviour is
simulated by running the sync again after each failed run. In the end every upstream
status is stored exactly once and only the genuinely malformed ones are quarantined.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.db import unit_of_work
from app.items.models import Item
from app.learning.service import Classifier
from app.queues.models import QueueEntry
from app.signal.models import SignalRollup
from app.sources.models import QuarantinedRecord, Source, SyncRun
from app.sources.runner import run_sync
from connectors.mastodon import MastodonConnector
from tests.connectors.fakes.mastodon_api import BASE_URL, FakeMastodonApi, masto_time

CONFIG = {"base_url": BASE_URL, "mode": "hashtag", "hashtag": "acme", "limit": 5}


class Chaos:
    """Seeded faults in front of a fake's handler."""

    FAULTS = ("429", "500", "503", "timeout", "truncated", "html", "duplicate", "shuffle")

    def __init__(self, api: FakeMastodonApi, seed: int, every: int = 2) -> None:
        self.api = api
        self.rng = random.Random(seed)
        self.every = every
        self.calls = 0
        self.plan: list[str] = []
        self.last: httpx.Response | None = None
        self.injected: dict[str, int] = dict.fromkeys(self.FAULTS, 0)

    def next_fault(self) -> str:
        """Every kind of fault in turn, each round in a seeded order."""
        if not self.plan:
            self.plan = list(self.FAULTS)
            self.rng.shuffle(self.plan)
        return self.plan.pop()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.calls % self.every:
            response = self.api.handle(request)
            self.last = response
            return response
        fault = self.next_fault()
        self.injected[fault] += 1
        if fault == "429":
            reset = masto_time(datetime.now(UTC) + timedelta(seconds=3))
            return httpx.Response(
                429,
                json={"error": "Too many requests"},
                headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset},
            )
        if fault in ("500", "503"):
            return httpx.Response(int(fault), json={"error": "Remote data could not be fetched"})
        if fault == "timeout":
            raise httpx.ReadTimeout("chaos: timed out", request=request)
        if fault == "truncated":
            body = self.api.handle(request).content
            return httpx.Response(
                200, content=body[: len(body) // 2], headers={"content-type": "application/json"}
            )
        if fault == "html":
            return httpx.Response(
                200,
                content=b"<html>Down for maintenance</html>",
                headers={"content-type": "text/html"},
            )
        if fault == "duplicate" and self.last is not None:
            return httpx.Response(
                self.last.status_code, content=self.last.content, headers=self.last.headers
            )
        response = self.api.handle(request)  # shuffle: the right page, in the wrong order
        rows = json.loads(response.content)
        if isinstance(rows, list):
            self.rng.shuffle(rows)
        return httpx.Response(
            response.status_code, content=json.dumps(rows).encode(), headers=response.headers
        )


def chaotic_factory(chaos: Chaos) -> Any:
    return lambda _source: MastodonConnector(
        CONFIG, env={}, transport=httpx.MockTransport(chaos), sleep=lambda _seconds: None
    )


def sync_until_quiet(
    factory: sessionmaker[Session], classifier: Classifier, chaos: Chaos, max_runs: int = 300
) -> int:
    """Run the sync like the scheduler would, until one run ends cleanly."""
    for run in range(1, max_runs + 1):
        summary = run_sync(
            factory,
            "chaos",
            classifier,
            connector_factory=chaotic_factory(chaos),
            sleep=lambda _seconds: None,
        )
        if summary.status == "ok":
            return run
    raise AssertionError(f"the sync never converged in {max_runs} runs")


@pytest.mark.parametrize("seed", [7, 2026])
def test_a_chaotic_source_converges_to_exactly_its_upstream_set(
    factory: sessionmaker[Session], classifier: Classifier, seed: int
) -> None:
    with unit_of_work(factory) as session:
        session.add(Source(name="chaos", kind="mastodon", config=CONFIG))
    api = FakeMastodonApi()
    api.known_tags.add("acme")
    people = [api.add_account(f"person{n}", followers=n * 5) for n in range(6)]
    upstream: set[str] = set()
    malformed: set[str] = set()

    def post(n: int) -> None:
        status = api.add_status(f"#acme report {n}: sync keeps failing", account=people[n % 6])
        upstream.add(status["id"])

    post(0)
    chaos = Chaos(api, seed=seed)
    sync_until_quiet(factory, classifier, chaos)  # the first pull anchors on the newest page

    for n in range(1, 80):
        post(n)
    for n in (80, 81):
        bad = api.add_status(
            f"#acme broken {n}",
            account=people[0],
            wire_edit=lambda wire: wire.update(created_at="not a date"),
        )
        malformed.add(bad["id"])
    sync_until_quiet(factory, classifier, chaos)
    for n in range(82, 110):  # more arrive while upstream is still misbehaving
        post(n)
    sync_until_quiet(factory, classifier, chaos)

    assert all(count >= 2 for count in chaos.injected.values()), chaos.injected
    with factory() as session:
        stored = list(session.scalars(select(Item.external_id)))
        assert len(stored) == len(set(stored)), "nothing stored twice"
        assert set(stored) == upstream
        quarantined = [r.external_id for r in session.scalars(select(QuarantinedRecord))]
        assert sorted(quarantined) == sorted(malformed), "each bad record quarantined once"
        assert session.scalar(select(func.count()).select_from(QueueEntry)) == len(upstream)
        assert session.scalar(select(func.sum(SignalRollup.count))) == len(upstream)
        statuses = set(session.scalars(select(SyncRun.status)))
        assert "ok" in statuses
        assert statuses <= {"ok", "failed", "rate_limited"}

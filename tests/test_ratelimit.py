"""Rate limits over HTTP: a token bucket per API key, per address for anonymous reads.

Time is a fake clock handed to the app's limiter, never a sleep.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.learning.service import Classifier
from app.main import create_app
from app.ops.ratelimit import RateLimiter, TokenBuckets
from tests.conftest import api_key
from tests.test_queues import Spec, bearer, seed

PROBLEM = "application/problem+json"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def limited(
    settings: Settings, classifier: Classifier, engine: Engine, clock: Clock
) -> Iterator[TestClient]:
    """An app allowing 60 requests a minute per key (one a second), bursts of 3."""
    strict = settings.model_copy(
        update={
            "rate_limit_per_minute": 60,
            "rate_limit_burst": 3,
            "rate_limit_anonymous_per_minute": 30,
            "rate_limit_anonymous_burst": 2,
            "auth_failures_per_minute": 6,
            "auth_failures_burst": 2,
            "public_read": True,
        }
    )
    app = create_app(strict, classifier=classifier, start_scheduler=False)
    with TestClient(app) as client:
        app.state.rate_limiter = RateLimiter(strict, clock=clock)
        yield client


def test_a_key_gets_its_burst_then_429_with_retry_after_until_tokens_come_back(
    limited: TestClient, engine: Engine, clock: Clock
) -> None:
    alice = api_key(engine, "alice", "viewer")
    bob = bearer(api_key(engine, "bob", "viewer"))

    remaining = []
    for _ in range(3):
        response = limited.get("/items", headers=bearer(alice))
        assert response.status_code == 200
        assert response.headers["RateLimit-Policy"] == "60;w=60;burst=3"
        assert response.headers["RateLimit-Limit"] == "3"
        remaining.append(response.headers["RateLimit-Remaining"])
    assert remaining == ["2", "1", "0"]

    refused = limited.get("/items", headers=bearer(alice))
    assert refused.status_code == 429
    assert refused.headers["content-type"] == PROBLEM
    assert refused.headers["Retry-After"] == "1"
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert refused.headers["RateLimit-Reset"] == "3"
    body = refused.json()
    assert body["status"] == 429
    assert body["limit"] == "rate"
    assert body["retry_after"] == 1
    assert "key 'alice'" in body["detail"]
    assert alice not in refused.text, "the key itself is never echoed"

    assert limited.get("/items", headers=bob).status_code == 200, "buckets are per key"

    clock.now += 1.0  # one token back
    assert limited.get("/items", headers=bearer(alice)).status_code == 200
    assert limited.get("/items", headers=bearer(alice)).status_code == 429
    clock.now += 60.0  # idle: the bucket is full again, never fuller than its burst
    statuses = [limited.get("/items", headers=bearer(alice)).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_writes_claims_and_handler_built_responses_are_limited_and_carry_headers(
    limited: TestClient, engine: Engine
) -> None:
    agent = bearer(api_key(engine, "ann", "agent"))
    empty = limited.post("/queues/product/claim", headers=agent)
    assert empty.status_code == 204, "an empty queue answers 204 …"
    assert empty.headers["RateLimit-Remaining"] == "2", "… with the headers all the same"
    forbidden = limited.put("/priority", json={}, headers=agent)
    assert forbidden.status_code == 403
    assert forbidden.headers["RateLimit-Remaining"] == "1", "a refused request costs a token"
    assert limited.get("/auth/whoami", headers=agent).status_code == 200
    assert limited.post("/queues/product/claim", headers=agent).status_code == 429


def test_claim_resolve_and_dismiss_charge_the_same_bucket(
    limited: TestClient, engine: Engine, factory: sessionmaker[Session]
) -> None:
    # The agents' hot routes charge the limit in their own dependency, not the router's.
    agent = bearer(api_key(engine, "ann", "agent"))
    seed(factory, [Spec(queue="service")])
    entry = limited.post("/queues/service/claim", headers=agent).json()["entry"]["id"]
    dismissed = limited.post(f"/entries/{entry}/dismiss", json={"reason": "spam"}, headers=agent)
    assert dismissed.status_code == 200
    assert dismissed.headers["RateLimit-Remaining"] == "1"
    again = limited.post(f"/entries/{entry}/resolve", json={"note": "x"}, headers=agent)
    assert again.status_code == 409, "the entry is closed; a refused request costs a token"
    assert again.headers["RateLimit-Remaining"] == "0"
    spent = limited.post(f"/entries/{entry}/resolve", json={"note": "x"}, headers=agent)
    assert spent.status_code == 429
    assert spent.headers["content-type"] == PROBLEM


def test_anonymous_reads_share_a_bucket_per_address(limited: TestClient, engine: Engine) -> None:
    assert [limited.get("/signal").status_code for _ in range(3)] == [200, 200, 429]
    refused = limited.get("/queues")
    assert refused.status_code == 429
    assert "address testclient" in refused.json()["detail"]
    assert refused.headers["Retry-After"] == "2", "30 a minute: a token every 2 s"
    viewer = bearer(api_key(engine, "vic", "viewer"))
    assert limited.get("/signal", headers=viewer).status_code == 200, "a key has its own"

    app = limited.app
    with TestClient(app, client=("192.0.2.7", 4000)) as elsewhere:  # type: ignore[arg-type]
        assert elsewhere.get("/signal").status_code == 200, "another address, another bucket"


def test_guessed_or_revoked_keys_are_slowed_per_address(
    limited: TestClient, engine: Engine, clock: Clock
) -> None:
    wrong = {"Authorization": "Bearer andon_not-a-key"}
    statuses = [limited.get("/queues", headers=wrong).status_code for _ in range(3)]
    assert statuses == [401, 401, 429], "a burst of 2 failures, then refused"
    refused = limited.get("/queues", headers=wrong)
    assert (
        "too many unknown or revoked API keys from address testclient" in refused.json()["detail"]
    )
    assert refused.headers["Retry-After"] == "10", "6 a minute: a token every 10 s"
    assert "andon_not-a-key" not in refused.text
    viewer = bearer(api_key(engine, "vic", "viewer"))
    assert limited.get("/queues", headers=viewer).status_code == 200, "a real key still works"
    clock.now += 10.0
    assert limited.get("/queues", headers=wrong).status_code == 401, "a token came back"


def test_probes_metrics_docs_and_pages_are_never_limited(limited: TestClient) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/console"):
        for _ in range(5):
            response = limited.get(path)
            assert response.status_code == 200, path
            assert "RateLimit-Limit" not in response.headers, path


def test_zero_turns_the_limit_off(
    settings: Settings, classifier: Classifier, engine: Engine, factory: sessionmaker[Session]
) -> None:
    off = settings.model_copy(update={"rate_limit_per_minute": 0, "rate_limit_burst": 1})
    seed(factory, [Spec()])
    app = create_app(off, classifier=classifier, start_scheduler=False)
    viewer = bearer(api_key(engine, "vera", "viewer"))
    with TestClient(app) as client:
        responses = [client.get("/queues", headers=viewer) for _ in range(20)]
    assert {r.status_code for r in responses} == {200}
    assert all("RateLimit-Limit" not in r.headers for r in responses)


def test_the_defaults_are_generous_and_idle_buckets_are_forgotten() -> None:
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    assert defaults.rate_limit_per_minute == 6000
    assert defaults.rate_limit_burst == 600
    assert defaults.rate_limit_anonymous_per_minute == 12000
    assert (defaults.auth_failures_per_minute, defaults.auth_failures_burst) == (60, 120)

    clock = Clock()
    buckets = TokenBuckets(60, 2, clock=clock, max_buckets=3)
    for name in ("a", "b", "c"):
        assert buckets.take(name)[0]
    clock.now += 10.0  # all three refilled
    assert buckets.take("d")[0]
    assert len(buckets) == 1, "full buckets are dropped when the table is at its size"

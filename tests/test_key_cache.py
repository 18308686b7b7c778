"""The authenticated-key cache: fast, and a revocation still takes effect when it must.

- the process that revokes forgets the key at once (and again once the revocation commits);
- claims refuse a revoked key at once wherever it was revoked (the claim locks the key row);
- any other request in another process sees the revocation once the cache entry is older
  than ``ANDON_KEY_CACHE_SECONDS`` (time is moved by the cache's clock, never slept).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session, sessionmaker

from app.auth import service
from app.auth.models import ApiKey
from app.auth.service import KEY_CACHE, KeyCache, Principal, hash_key
from app.config import Settings
from app.db import unit_of_work, utcnow
from app.learning.service import Classifier
from app.main import create_app
from tests.conftest import api_key
from tests.test_queues import Spec, bearer, seed


@pytest.fixture
def make_client(settings: Settings, classifier: Classifier, engine: Engine) -> Iterator[Any]:
    """Start the app with changed settings: ``make_client(key_cache_seconds=0)``."""
    clients: list[TestClient] = []

    def start(**changes: Any) -> TestClient:
        client = TestClient(create_app(settings.model_copy(update=changes), classifier=classifier))
        client.__enter__()
        clients.append(client)
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    fake = Clock()
    monkeypatch.setattr(KEY_CACHE, "clock", fake)
    KEY_CACHE.clear()
    yield fake
    KEY_CACHE.clear()


def revoke_elsewhere(engine: Engine, name: str) -> None:
    """What another process's ``andon keys revoke`` leaves behind: only the database row."""
    with engine.begin() as connection:
        connection.execute(update(ApiKey).where(ApiKey.name == name).values(revoked_at=utcnow()))


def test_a_key_revoked_by_another_process_is_refused_within_the_cache_lifetime(
    make_client: Any, engine: Engine, factory: sessionmaker[Session], clock: Clock
) -> None:
    client = make_client(key_cache_seconds=5.0)
    seed(factory, [Spec(), Spec()])
    agent = bearer(api_key(engine, "ann", "agent"))
    assert client.get("/auth/whoami", headers=agent).status_code == 200
    assert len(KEY_CACHE) == 1  # remembered: the next request needs no lookup

    revoke_elsewhere(engine, "ann")
    clock.now += 4.0
    assert client.get("/auth/whoami", headers=agent).status_code == 200  # still cached
    claim = client.post("/queues/service/claim", headers=agent)  # claims check the row
    assert claim.status_code == 401
    assert "revoked" in claim.json()["detail"]

    clock.now += 1.0  # the cache lifetime is over
    refused = client.get("/auth/whoami", headers=agent)
    assert refused.status_code == 401
    assert refused.json()["detail"] == "unknown or revoked API key"


def test_without_the_cache_every_request_looks_the_key_up(
    make_client: Any, engine: Engine, clock: Clock
) -> None:
    client = make_client(key_cache_seconds=0)
    viewer = bearer(api_key(engine, "vera", "viewer"))
    assert client.get("/auth/whoami", headers=viewer).status_code == 200
    assert len(KEY_CACHE) == 0
    revoke_elsewhere(engine, "vera")
    assert client.get("/auth/whoami", headers=viewer).status_code == 401


def test_revoking_in_this_process_takes_effect_at_once_even_with_a_long_cache(
    make_client: Any, engine: Engine, clock: Clock
) -> None:
    client = make_client(key_cache_seconds=3600)
    admin = bearer(api_key(engine, "root", "admin"))
    viewer = bearer(api_key(engine, "vera", "viewer"))
    assert client.get("/auth/whoami", headers=viewer).status_code == 200
    assert client.delete("/keys/vera", headers=admin).status_code == 200
    assert client.get("/auth/whoami", headers=viewer).status_code == 401
    assert client.get("/auth/whoami", headers=admin).status_code == 200


def test_a_lookup_during_an_uncommitted_revocation_does_not_outlive_the_commit(
    engine: Engine, factory: sessionmaker[Session], clock: Clock
) -> None:
    plain = api_key(engine, "kim", "agent")
    with unit_of_work(factory) as session:
        service.revoke_key(session, "kim", actor="test")
        # A request in another thread authenticates before the revocation commits: it still
        # sees the key as valid and caches it ...
        with factory() as other:
            found = service.authenticate(other, plain, cache_seconds=60)
        assert found is not None
        assert found.name == "kim"
        assert KEY_CACHE.get(hash_key(plain), 60) is not None
    # ... and the commit forgets it again.
    assert KEY_CACHE.get(hash_key(plain), 60) is None
    with factory() as session:
        assert service.authenticate(session, plain, cache_seconds=60) is None


def test_wrong_keys_are_not_cached_and_the_cache_is_bounded(
    factory: sessionmaker[Session], clock: Clock
) -> None:
    with factory() as session:
        assert service.authenticate(session, "andon_wrong", cache_seconds=60) is None
        assert service.authenticate(session, "not-a-key", cache_seconds=60) is None
    assert len(KEY_CACHE) == 0
    cache = KeyCache(max_entries=4, clock=clock)
    for n in range(10):
        cache.put(f"h{n}", Principal(name=f"k{n}", role="viewer"))
        assert len(cache) <= 4
    assert cache.get("h9", 5) == Principal(name="k9", role="viewer")
    assert cache.get("h0", 5) is None

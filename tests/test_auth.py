"""API keys, roles, queue scopes and the audit log, over HTTP and the CLI."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from app.auth.models import ApiKey
from app.config import Settings
from app.learning.service import Classifier
from app.main import create_app
from tests.conftest import api_key
from tests.test_cli import andon
from tests.test_queues import Spec, bearer, seed

PROBLEM = "application/problem+json"


def test_no_key_or_a_wrong_key_is_401_problem_json(anonymous_client: TestClient) -> None:
    for headers in ({}, bearer("andon_not-a-real-key"), {"X-API-Key": "nope"}):
        response = anonymous_client.get("/items", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["content-type"] == PROBLEM
    malformed = anonymous_client.get("/queues", headers={"Authorization": "Basic abc"})
    assert malformed.status_code == 401
    assert "Bearer" in malformed.json()["detail"]
    assert anonymous_client.get("/healthz").status_code == 200
    assert anonymous_client.get("/openapi.json").status_code == 200


def test_roles_decide_what_a_key_may_do(
    anonymous_client: TestClient, engine: Engine, factory: sessionmaker[Session]
) -> None:
    viewer = bearer(api_key(engine, "vera", "viewer"))
    agent = {"X-API-Key": api_key(engine, "alan", "agent")}
    seed(factory, [Spec()])

    for path in ("/items", "/queues", "/queues/service", "/signal", "/sources", "/priority"):
        assert anonymous_client.get(path, headers=viewer).status_code == 200, path
    assert anonymous_client.get("/auth/whoami", headers=viewer).json() == {
        "name": "vera",
        "role": "viewer",
        "queues": None,
    }
    forbidden = anonymous_client.post("/queues/service/claim", headers=viewer)
    assert forbidden.status_code == 403
    assert forbidden.headers["content-type"] == PROBLEM
    assert "agent role" in forbidden.json()["detail"]

    source = {"name": "x", "kind": "demo", "config": {}}
    assert anonymous_client.post("/sources", json=source, headers=agent).status_code == 403
    assert anonymous_client.get("/audit", headers=agent).status_code == 403
    assert anonymous_client.get("/keys", headers=agent).status_code == 403
    assert anonymous_client.post("/queues/service/claim", headers=agent).status_code == 200


def test_queue_scopes_keep_an_agent_in_its_queues(
    anonymous_client: TestClient, engine: Engine, factory: sessionmaker[Session]
) -> None:
    service_only = bearer(api_key(engine, "sid", "agent", ["service"]))
    seed(factory, [Spec(queue="sales"), Spec(queue="service")])

    refused = anonymous_client.post("/queues/sales/claim", headers=service_only)
    assert refused.status_code == 403
    assert "scoped to service" in refused.json()["detail"]
    assert anonymous_client.post("/queues/service/claim", headers=service_only).status_code == 200
    assert anonymous_client.get("/auth/whoami", headers=service_only).json()["queues"] == [
        "service"
    ]


def test_public_read_lets_anonymous_callers_read_but_not_write(
    settings: Settings, classifier: Classifier, engine: Engine
) -> None:
    app = create_app(settings.model_copy(update={"public_read": True}), classifier=classifier)
    with TestClient(app) as client:
        assert client.get("/signal").status_code == 200
        assert client.get("/queues").status_code == 200
        assert client.get("/auth/whoami").json()["name"] == "anonymous"
        assert client.post("/queues/service/claim").status_code == 401
        assert client.post("/sources", json={"name": "x", "kind": "demo"}).status_code == 401
        assert client.get("/signal", headers=bearer("andon_wrong")).status_code == 401


def test_keys_are_shown_once_hashed_at_rest_and_revocable(
    client: TestClient, anonymous_client: TestClient, factory: sessionmaker[Session]
) -> None:
    created = client.post("/keys", json={"name": "kim", "role": "agent", "queues": ["sales"]})
    assert created.status_code == 201, created.text
    plain = created.json()["key"]
    assert re.fullmatch(r"andon_[A-Za-z0-9_-]{43}", plain)
    assert created.json()["prefix"] == plain[:12]

    listed = {row["name"]: row for row in client.get("/keys").json()}
    assert "key" not in listed["kim"]
    assert plain not in str(listed)
    with factory() as session:
        row = session.scalars(select(ApiKey).where(ApiKey.name == "kim")).one()
        assert plain not in (row.key_hash, row.prefix)
        assert len(row.key_hash) == 64
    duplicate = client.post("/keys", json={"name": "kim", "role": "viewer"})
    assert duplicate.status_code == 409

    assert anonymous_client.get("/auth/whoami", headers=bearer(plain)).json()["role"] == "agent"
    revoked = client.delete("/keys/kim")
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    assert anonymous_client.get("/auth/whoami", headers=bearer(plain)).status_code == 401
    assert client.delete("/keys/kim").status_code == 409
    assert client.delete("/keys/nobody").status_code == 404

    events = client.get("/audit").json()["events"]
    assert [e["action"] for e in events[:2]] == ["key.revoke", "key.create"]
    assert plain not in str(events)


def test_audit_log_pages_with_a_cursor(client: TestClient) -> None:
    for n in range(5):
        client.post("/keys", json={"name": f"k{n}", "role": "viewer"})
    first = client.get("/audit", params={"limit": 3}).json()
    assert len(first["events"]) == 3
    second = client.get("/audit", params={"limit": 3, "cursor": first["next_cursor"]}).json()
    ids = [e["id"] for e in first["events"] + second["events"]]
    assert ids == sorted(ids, reverse=True)
    assert len(set(ids)) == len(ids) >= 5
    assert client.get("/audit", params={"cursor": "!!"}).status_code == 422


def test_demo_start_creates_one_admin_key_and_logs_it_once(
    settings: Settings,
    classifier: Classifier,
    engine: Engine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    demo = settings.model_copy(update={"demo": True})
    caplog.set_level(logging.INFO)
    with TestClient(create_app(demo, classifier=classifier, start_scheduler=False)) as client:
        logged = re.findall(r"andon_[A-Za-z0-9_-]{43}", caplog.text)
        assert len(logged) == 1
        whoami = client.get("/auth/whoami", headers=bearer(logged[0])).json()
        assert whoami == {"name": "demo-admin", "role": "admin", "queues": None}
    caplog.clear()
    with TestClient(create_app(demo, classifier=classifier, start_scheduler=False)):
        assert "andon_" not in caplog.text


def test_cli_keys_create_list_revoke(tmp_path: Path, model_dir: Path) -> None:
    env = {
        "ANDON_DATABASE_URL": f"sqlite:///{tmp_path / 'keys.db'}",
        "ANDON_MODEL_DIR": str(model_dir),
    }
    assert andon("migrate", env=env).returncode == 0
    created = andon("keys", "create", "ana", "--role", "agent", "--queue", "service", env=env)
    assert created.returncode == 0, created.stderr
    plain = created.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"andon_[A-Za-z0-9_-]{43}", plain)

    listed = andon("keys", "list", env=env)
    assert "ana" in listed.stdout
    assert "service" in listed.stdout
    assert plain not in listed.stdout + listed.stderr

    bad: Any = andon("keys", "create", "bo", "--role", "root", env=env)
    assert bad.returncode != 0
    assert bad.stderr.strip() == "andon: unknown role 'root'; roles: admin, agent, viewer"
    assert andon("keys", "revoke", "ana", env=env).returncode == 0
    again = andon("keys", "revoke", "ana", env=env)
    assert again.returncode != 0
    assert "revoked" in again.stderr

"""Access control: every route of the live app × every kind of caller, against one table.

The routes are enumerated from the running app (``app.routes``, including the pages and
docs that are not in the OpenAPI schema) and cross-checked with ``/openapi.json``: a route
missing from ``TABLE`` fails the test, so a new endpoint cannot escape it. Each row says the
role a route needs, whether an agent's queue scope applies, and how to call it so that an
allowed caller really gets through (fresh data is prepared for every call).

Callers: no key, a revoked (admin) key, a viewer, an agent scoped to ``service`` (the
queue the scoped calls touch), an agent scoped to ``sales``, an admin; and, with
``ANDON_PUBLIC_READ=true``, anonymous readers. Denied is exactly 401 (who are you?) or
403 (not you); allowed is the route's success status.

While the matrix runs, every log record is captured; afterwards neither the logs nor any
response contain a key, the database holds only the keys' SHA-256, and a source token
given through the environment never comes back from the API — not even when the upstream
echoes the credentials in its error page.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import logging
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import routing
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from app.auth.models import ApiKey
from app.auth.service import create_key, revoke_key
from app.config import Settings
from app.db import unit_of_work, utcnow
from app.identity.models import AuthorIdentity, IdentityKey
from app.items.models import Item
from app.learning.service import Classifier, create_rule, load_classifier
from app.main import create_app
from app.models import Base
from app.queues.models import QueueEntry
from app.signal.models import Spike
from app.sources import service as sources
from classifiers.artifacts import ModelStore
from tests.http_bridge import HttpBridge
from tests.test_queues import Spec, seed

PRINCIPALS = ("none", "revoked", "viewer", "agent_in", "agent_out", "admin")
ROLE_OF = {"viewer": "viewer", "agent_in": "agent", "agent_out": "agent", "admin": "admin"}
RANK = {"viewer": 0, "agent": 1, "admin": 2}


@dataclass
class Call:
    path: str
    json: Any = None
    params: dict[str, Any] | None = None


Builder = Callable[["World", str], Call]


@dataclass(frozen=True)
class Rule:
    """What a route needs: ``role`` (public, viewer, agent, admin) and queue scope."""

    role: str
    call: Builder
    scoped: bool = False
    ok: frozenset[int] = frozenset({200})
    """The statuses an allowed caller gets with the prepared call."""


def fixed(path: str, params: dict[str, Any] | None = None, body: Any = None) -> Builder:
    return lambda _world, _who: Call(path, body, params)


@dataclass
class World:
    """The app and its data; builders prepare fresh rows for each call."""

    client: TestClient
    factory: sessionmaker[Session]
    tmp: Path
    headers: dict[str, dict[str, str]]
    names: dict[str, str]
    plain_keys: list[str]
    item_id: int = 0
    identity_id: int = 0
    model_version: str = ""
    counter: itertools.count[int] = field(default_factory=itertools.count)

    def unique(self, stem: str) -> str:
        return f"{stem}-{next(self.counter)}"

    def open_entry(self) -> int:
        return seed(self.factory, [Spec(queue="service")])[0]

    def entry_held_by(self, who: str) -> int:
        entry_id = self.open_entry()
        with unit_of_work(self.factory) as session:
            session.execute(
                update(QueueEntry)
                .where(QueueEntry.id == entry_id)
                .values(
                    state="claimed",
                    claimed_by=self.names.get(who, who),
                    lease_expires_at=utcnow() + timedelta(minutes=15),
                )
            )
        return entry_id

    def spike(self) -> int:
        now = utcnow()
        with unit_of_work(self.factory) as session:
            spike = Spike(
                scope="queue",
                key="service",
                metric="volume",
                bucket_start=now,
                last_bucket_start=now,
                value=40.0,
                baseline=3.0,
                scale=1.0,
                score=9.0,
                count=40,
            )
            session.add(spike)
            session.flush()
            return spike.id

    def identity(self, keys: int = 1) -> tuple[int, list[int]]:
        with unit_of_work(self.factory) as session:
            identity = AuthorIdentity(display_name="Dana")
            session.add(identity)
            session.flush()
            rows = [
                IdentityKey(identity_id=identity.id, kind="handle", value=self.unique("dana"))
                for _ in range(keys)
            ]
            session.add_all(rows)
            session.flush()
            return identity.id, [row.id for row in rows]

    def rule(self) -> int:
        with unit_of_work(self.factory) as session:
            return create_rule(
                session, pattern_type="keyword", pattern=self.unique("invoice"), queue="sales"
            ).id

    def source(self) -> str:
        name = self.unique("src")
        with unit_of_work(self.factory) as session:
            sources.create(session, name=name, kind="jsonl", config={"path": str(self.feed)})
        return name

    @property
    def feed(self) -> Path:
        return self.tmp / "feed.jsonl"

    def grouped_item(self) -> int:
        leader, member = self.open_item_pair()[0], self.open_item_pair()[0]
        with unit_of_work(self.factory) as session:
            session.execute(
                update(Item)
                .where(Item.id.in_([leader, member]))
                .values(dedupe_group_id=leader, dedupe_reason="text")
            )
        return member

    def open_item_pair(self) -> tuple[int, int]:
        entry_id = self.open_entry()
        with self.factory() as session:
            item_id = session.get_one(QueueEntry, entry_id).item_id
        return item_id, entry_id

    def key_to_revoke(self) -> str:
        name = self.unique("spare")
        with unit_of_work(self.factory) as session:
            create_key(session, name=name, role="viewer", actor="test")
        return name


def entry_call(action: str, body: Any = None) -> Builder:
    def build(world: World, who: str) -> Call:
        return Call(f"/entries/{world.entry_held_by(who)}/{action}", body)

    return build


TABLE: dict[tuple[str, str], Rule] = {
    # probes, metrics, docs and pages: no key needed
    ("GET", "/healthz"): Rule("public", fixed("/healthz")),
    ("GET", "/readyz"): Rule("public", fixed("/readyz")),
    ("GET", "/metrics"): Rule("public", fixed("/metrics")),
    ("GET", "/openapi.json"): Rule("public", fixed("/openapi.json")),
    ("GET", "/docs"): Rule("public", fixed("/docs")),
    ("GET", "/docs/oauth2-redirect"): Rule("public", fixed("/docs/oauth2-redirect")),
    ("GET", "/redoc"): Rule("public", fixed("/redoc")),
    ("GET", "/"): Rule("public", fixed("/")),
    ("GET", "/console"): Rule("public", fixed("/console")),
    ("GET", "/dashboard"): Rule("public", fixed("/dashboard")),
    ("GET", "/static/{path}"): Rule("public", fixed("/static/andon.css")),
    # keys and the audit log
    ("GET", "/auth/whoami"): Rule("viewer", fixed("/auth/whoami")),
    ("GET", "/keys"): Rule("admin", fixed("/keys")),
    ("POST", "/keys"): Rule(
        "admin",
        lambda w, _who: Call("/keys", {"name": w.unique("new"), "role": "viewer"}),
        ok=frozenset({201}),
    ),
    ("DELETE", "/keys/{name}"): Rule("admin", lambda w, _who: Call(f"/keys/{w.key_to_revoke()}")),
    ("GET", "/audit"): Rule("admin", fixed("/audit")),
    # sources: reads for viewers, the rest for admins
    ("GET", "/sources"): Rule("viewer", fixed("/sources")),
    ("POST", "/sources"): Rule(
        "admin",
        lambda w, _who: Call(
            "/sources", {"name": w.unique("new"), "kind": "jsonl", "config": {"path": str(w.feed)}}
        ),
        ok=frozenset({201}),
    ),
    ("GET", "/sources/{name}"): Rule("viewer", fixed("/sources/matrix")),
    ("PATCH", "/sources/{name}"): Rule(
        "admin", fixed("/sources/matrix", body={"interval_seconds": 600})
    ),
    ("DELETE", "/sources/{name}"): Rule(
        "admin", lambda w, _who: Call(f"/sources/{w.source()}"), ok=frozenset({204})
    ),
    ("POST", "/sources/{name}/sync"): Rule(
        "admin", lambda w, _who: Call(f"/sources/{w.source()}/sync")
    ),
    ("GET", "/sources/{name}/runs"): Rule("viewer", fixed("/sources/matrix/runs")),
    ("POST", "/sources/{name}/check"): Rule("admin", fixed("/sources/matrix/check")),
    ("GET", "/sources/{name}/quarantine"): Rule("viewer", fixed("/sources/matrix/quarantine")),
    # items
    ("GET", "/items"): Rule("viewer", fixed("/items")),
    ("GET", "/items/{item_id}"): Rule("viewer", lambda w, _who: Call(f"/items/{w.item_id}")),
    ("GET", "/items/{item_id}/history"): Rule(
        "viewer", lambda w, _who: Call(f"/items/{w.item_id}/history")
    ),
    # queues and entries: agents act in their queues only
    ("GET", "/queues"): Rule("viewer", fixed("/queues")),
    ("GET", "/queues/{queue}"): Rule("viewer", fixed("/queues/service")),
    ("POST", "/queues/{queue}/claim"): Rule(
        "agent",
        lambda w, _who: (w.open_entry(), Call("/queues/service/claim"))[1],
        scoped=True,
    ),
    ("GET", "/entries/{entry_id}"): Rule(
        "viewer", lambda w, _who: Call(f"/entries/{w.open_entry()}")
    ),
    ("POST", "/entries/{entry_id}/heartbeat"): Rule("agent", entry_call("heartbeat"), scoped=True),
    ("POST", "/entries/{entry_id}/resolve"): Rule(
        "agent", entry_call("resolve", {"note": "refund sent"}), scoped=True
    ),
    ("POST", "/entries/{entry_id}/release"): Rule("agent", entry_call("release"), scoped=True),
    ("POST", "/entries/{entry_id}/dismiss"): Rule(
        "agent", entry_call("dismiss", {"reason": "spam"}), scoped=True
    ),
    ("POST", "/entries/{entry_id}/reroute"): Rule(
        "agent", entry_call("reroute", {"queue": "product", "reason": "a feature"}), scoped=True
    ),
    ("POST", "/entries/{entry_id}/sentiment"): Rule(
        "agent", entry_call("sentiment", {"label": "positive"}), scoped=True
    ),
    ("GET", "/priority"): Rule("viewer", fixed("/priority")),
    ("PUT", "/priority"): Rule("admin", fixed("/priority", body={"age_per_hour": 0.5})),
    # the demand signal
    ("GET", "/signal"): Rule("viewer", fixed("/signal")),
    ("GET", "/signal/votes"): Rule("viewer", fixed("/signal/votes")),
    ("GET", "/signal/spikes"): Rule("viewer", fixed("/signal/spikes")),
    ("POST", "/signal/spikes/{spike_id}/acknowledge"): Rule(
        "admin", lambda w, _who: Call(f"/signal/spikes/{w.spike()}/acknowledge", {"by": "ops"})
    ),
    ("POST", "/signal/spikes/{spike_id}/close"): Rule(
        "admin", lambda w, _who: Call(f"/signal/spikes/{w.spike()}/close", {"cause": "outage"})
    ),
    ("GET", "/signal/themes"): Rule("viewer", fixed("/signal/themes")),
    ("GET", "/signal/ideas"): Rule("viewer", fixed("/signal/ideas")),
    ("GET", "/feed/{queue}"): Rule("viewer", fixed("/feed/service")),
    ("GET", "/feed/{queue}/export"): Rule(
        "viewer",
        fixed(
            "/feed/service/export", {"from": "2020-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"}
        ),
    ),
    # identities and duplicates: reads for viewers, corrections for admins
    ("GET", "/identities/{identity_id}"): Rule(
        "viewer", lambda w, _who: Call(f"/identities/{w.identity_id}")
    ),
    ("POST", "/identities/{identity_id}/merge"): Rule(
        "admin",
        lambda w, _who: Call(f"/identities/{w.identity()[0]}/merge", {"other": w.identity()[0]}),
    ),
    ("POST", "/identities/keys/{key_id}/detach"): Rule(
        "admin", lambda w, _who: Call(f"/identities/keys/{w.identity(keys=2)[1][0]}/detach")
    ),
    ("POST", "/dedupe/{item_id}/detach"): Rule(
        "admin", lambda w, _who: Call(f"/dedupe/{w.grouped_item()}/detach")
    ),
    # rules and models
    ("GET", "/rules"): Rule("viewer", fixed("/rules")),
    ("POST", "/rules"): Rule(
        "admin",
        lambda w, _who: Call(
            "/rules", {"pattern_type": "keyword", "pattern": w.unique("refund"), "queue": "service"}
        ),
        ok=frozenset({201}),
    ),
    ("GET", "/rules/{rule_id}"): Rule("viewer", lambda w, _who: Call(f"/rules/{w.rule()}")),
    ("PATCH", "/rules/{rule_id}"): Rule(
        "admin", lambda w, _who: Call(f"/rules/{w.rule()}", {"enabled": False})
    ),
    ("DELETE", "/rules/{rule_id}"): Rule("admin", lambda w, _who: Call(f"/rules/{w.rule()}")),
    ("GET", "/models"): Rule("viewer", fixed("/models")),
    ("GET", "/models/{version}"): Rule(
        "viewer", lambda w, _who: Call(f"/models/{w.model_version}")
    ),
    ("GET", "/models/{old}/diff/{new}"): Rule(
        "viewer", lambda w, _who: Call(f"/models/{w.model_version}/diff/{w.model_version}")
    ),
    ("POST", "/models/{version}/activate"): Rule(
        "admin", lambda w, _who: Call(f"/models/{w.model_version}/activate")
    ),
    # Training takes minutes: an invalid body is refused (422) only after the key and role
    # were accepted, which is what this row is about.
    ("POST", "/models/train"): Rule(
        "admin", fixed("/models/train", body={"force": "not a boolean"}), ok=frozenset({422})
    ),
}


def expected_denial(rule: Rule, who: str) -> int | None:
    """401, 403, or None when ``who`` may call the route."""
    if rule.role == "public":
        return None
    if who in ("none", "revoked"):
        return 401
    if RANK[ROLE_OF[who]] < RANK[rule.role]:
        return 403
    if rule.scoped and who == "agent_out":
        return 403
    return None


def live_routes(app: Any) -> set[tuple[str, str]]:
    found = set()
    for context in routing.iter_route_contexts(app.routes):
        path = context.path
        if context.methods is None:  # a mount (the static assets)
            found.add(("GET", f"{path}/{{path}}"))
            continue
        found.update((method, path) for method in context.methods if method != "HEAD")
    return found


@pytest.fixture
def world(
    settings: Settings,
    engine: Engine,
    factory: sessionmaker[Session],
    model_dir: Path,
    classifier: Classifier,  # trains the session's model once; this test copies it
    tmp_path: Path,
) -> Iterator[World]:
    models = tmp_path / "models"
    shutil.copytree(model_dir, models)  # activation writes ACTIVE: not the session's copy
    configured = settings.model_copy(update={"model_dir": models, "wip_per_agent": 10_000})
    own = load_classifier(models, configured.triage_threshold)
    (tmp_path / "feed.jsonl").write_text(
        "".join(
            json.dumps({"id": f"m{n}", "text": f"the export fails again, case {n}"}) + "\n"
            for n in range(3)
        )
    )
    names = {"revoked": "rex", "viewer": "vera", "agent_in": "sid", "agent_out": "sal"}
    names["admin"] = "ada"
    scopes = {"agent_in": ["service"], "agent_out": ["sales"]}
    plain: dict[str, str] = {}
    with unit_of_work(factory) as session:
        for who, name in names.items():
            role = "admin" if who == "revoked" else ROLE_OF[who]
            plain[who] = create_key(
                session, name=name, role=role, queues=scopes.get(who), actor="test"
            )[1]
        revoke_key(session, "rex", actor="test")
        sources.create(
            session, name="matrix", kind="jsonl", config={"path": str(tmp_path / "feed.jsonl")}
        )
    headers = {who: {"Authorization": f"Bearer {key}"} for who, key in plain.items()}
    headers["none"] = {}
    app = create_app(configured, classifier=own, start_scheduler=False)
    try:
        with TestClient(app) as client:
            world = World(
                client=client,
                factory=factory,
                tmp=tmp_path,
                headers=headers,
                names=names,
                plain_keys=list(plain.values()),
            )
            world.item_id, _ = world.open_item_pair()
            world.identity_id, _ = world.identity()
            world.model_version = ModelStore(models).active_version() or ""
            yield world
    finally:
        own.close()


def test_every_route_is_in_the_table(world: World) -> None:
    routes = live_routes(world.client.app)
    schema = world.client.get("/openapi.json").json()
    documented = {(method.upper(), path) for path, ops in schema["paths"].items() for method in ops}
    assert documented <= routes
    missing = sorted(routes - TABLE.keys())
    assert not missing, f"routes without a row in TABLE (add one): {missing}"
    stale = sorted(TABLE.keys() - routes)
    assert not stale, f"rows in TABLE for routes that no longer exist: {stale}"


def test_access_matrix_every_route_times_every_caller(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    failures: list[str] = []
    bodies: list[str] = []
    for (method, template), rule in sorted(TABLE.items()):
        # Callers that must be refused go first: a refused call must change nothing.
        order = sorted(PRINCIPALS, key=lambda who: expected_denial(rule, who) is None)
        for who in order:
            call = rule.call(world, who)
            response = world.client.request(
                method, call.path, json=call.json, params=call.params, headers=world.headers[who]
            )
            denial = expected_denial(rule, who)
            wanted = {denial} if denial is not None else set(rule.ok)
            if response.status_code not in wanted:
                failures.append(
                    f"{method} {template} as {who}: {response.status_code}, expected "
                    f"{sorted(wanted)}: {response.text[:200]}"
                )
            if denial is not None and response.headers.get("content-type") != (
                "application/problem+json"
            ):
                failures.append(f"{method} {template} as {who}: not problem+json")
            limited = "RateLimit-Limit" in response.headers
            if denial is None and (rule.role != "public") != limited:
                failures.append(f"{method} {template} as {who}: rate limited is {limited}")
            if not (method == "POST" and template == "/keys"):  # the one answer with a key
                bodies.append(response.text + json.dumps(dict(response.headers)))
    assert not failures, "\n".join(failures)

    leaked = [key for key in world.plain_keys if any(key in body for body in bodies)]
    assert not leaked, "an API key came back in a response"
    logs = "\n".join([record.getMessage() for record in caplog.records] + [caplog.text])
    assert "/keys" in logs, "the access log was captured"
    assert not [key for key in world.plain_keys if key in logs], "an API key was logged"


def test_anonymous_callers_with_public_read_only_read(settings: Settings, world: World) -> None:
    public = settings.model_copy(update={"public_read": True, "model_dir": world.tmp / "models"})
    app = create_app(public, classifier=world.client.app.state.classifier, start_scheduler=False)
    failures = []
    with TestClient(app) as client:
        for (method, template), rule in sorted(TABLE.items()):
            if rule.role == "public":
                continue
            call = rule.call(world, "none")
            response = client.request(method, call.path, json=call.json, params=call.params)
            if method != "GET":
                wanted = {401}
            elif rule.role == "viewer":
                wanted = set(rule.ok)
            else:
                wanted = {403}  # an anonymous reader is a viewer: too low for the rest
            if response.status_code not in wanted:
                failures.append(f"{method} {template}: {response.status_code} not {wanted}")
    assert not failures, "\n".join(failures)


def test_keys_are_stored_only_as_their_sha256(world: World, engine: Engine) -> None:
    with world.factory() as session:
        stored = {key.name: key for key in session.scalars(select(ApiKey))}
    for who, name in world.names.items():
        plain = world.headers[who]["Authorization"].removeprefix("Bearer ")
        key = stored[name]
        assert key.key_hash == hashlib.sha256(plain.encode()).hexdigest()
        assert plain.startswith(key.prefix)
        assert len(key.prefix) < len(plain) // 3, "the prefix shown is a small part of it"
    # No column of any table holds a key: dump every row as text and look.
    with engine.connect() as connection:
        dump = "\n".join(
            repr(tuple(row))
            for table in Base.metadata.sorted_tables
            for row in connection.execute(text(f"SELECT * FROM {table.name}"))
        )
    assert not [key for key in world.plain_keys if key in dump]
    assert all(key.key_hash in dump for key in stored.values())


ZENDESK_TOKEN = "zd-Secret-Token-4f1e9c2b7a"


def test_a_source_token_from_the_environment_never_comes_back(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Even an upstream that echoes the request's credentials in its error page."""
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("ANDON_MATRIX_ZENDESK_TOKEN", ZENDESK_TOKEN)
    basic = base64.b64encode(f"ops@acme.test/token:{ZENDESK_TOKEN}".encode()).decode()
    echoed: list[str] = []

    def reflecting(request: httpx.Request) -> httpx.Response:
        echoed.append(request.headers.get("authorization", ""))
        page = f"<html>bad gateway; you sent {request.headers.get('authorization')}</html>"
        status = 401 if request.url.path.endswith("/me.json") else 502
        return httpx.Response(status, text=page, headers={"content-type": "text/html"})

    with HttpBridge(reflecting, "https://acme.zendesk.test") as upstream:
        config = {
            "base_url": upstream.url,
            "email": "ops@acme.test",
            "token_env": "ANDON_MATRIX_ZENDESK_TOKEN",
        }
        created = client.post("/sources", json={"name": "zd", "kind": "zendesk", "config": config})
        assert created.status_code == 201, created.text
        responses = [
            created,
            client.post("/sources/zd/check"),
            client.post("/sources/zd/sync"),
            client.get("/sources/zd/runs"),
            client.get("/sources/zd"),
            client.get("/sources"),
        ]
    assert echoed, "the upstream was called"
    assert echoed[0] == f"Basic {basic}", "and it did get the credentials"
    assert responses[1].json()["ok"] is False
    assert responses[2].json()["status"] in ("auth_failed", "failed")
    assert "bad gateway" in responses[3].text or "401" in responses[3].text
    everything = "\n".join(r.text for r in responses) + caplog.text
    for secret in (ZENDESK_TOKEN, basic):
        assert secret not in everything

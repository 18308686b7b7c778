"""Request ids, structured logs, liveness and readiness."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from app.config import Settings
from app.db import make_engine
from app.learning.service import Classifier
from app.main import create_app
from app.ops import health, logs


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """What the app's loggers write, as JSON lines (the handler `andon serve` installs)."""
    stream = io.StringIO()
    handler = logs.make_handler("json", stream=stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def parsed(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_every_response_carries_a_request_id_that_the_logs_share(
    client: TestClient, log_lines: io.StringIO
) -> None:
    first = client.get("/sources")
    second = client.get("/sources/nope")

    ids = [first.headers["X-Request-ID"], second.headers["X-Request-ID"]]
    assert len(set(ids)) == 2
    access = [line for line in parsed(log_lines) if line["logger"] == "andon.access"]
    assert [(line["request_id"], line["status"], line["path"]) for line in access] == [
        (ids[0], 200, "/sources"),
        (ids[1], 404, "/sources/nope"),
    ]
    assert all(set(line) >= {"time", "level", "logger", "message"} for line in access)


def test_a_callers_request_id_is_kept_and_a_bad_one_replaced(client: TestClient) -> None:
    kept = client.get("/healthz", headers={"X-Request-ID": "lb-7f3a.42"})
    assert kept.headers["X-Request-ID"] == "lb-7f3a.42"
    replaced = client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert replaced.headers["X-Request-ID"] != "bad id\twith spaces"
    assert len(replaced.headers["X-Request-ID"]) == 32


def test_json_logs_carry_extras_and_exceptions() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("test.ops.json")
    logger.addHandler(logs.make_handler("json", stream=stream))
    logger.propagate = False
    token = logs.request_id.set("req-1")
    try:
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("sync failed", extra={"source": "masto", "pages": 3})
    finally:
        logs.request_id.reset(token)

    (line,) = parsed(stream)
    assert line["message"] == "sync failed"
    assert (line["level"], line["logger"], line["request_id"]) == (
        "ERROR",
        "test.ops.json",
        "req-1",
    )
    assert (line["source"], line["pages"]) == ("masto", 3)
    assert "ValueError: boom" in str(line["exception"])


def test_healthz_and_readyz_when_all_is_well(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready"
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "database": True,
        "migrations": True,
        "model": True,
    }


def test_readyz_fails_on_an_unmigrated_database_but_healthz_answers(
    tmp_path: Path, model_dir: Path, classifier: Classifier
) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'empty.db'}", model_dir=model_dir, scheduler=False
    )
    app = create_app(settings, classifier=classifier, start_scheduler=False)
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.headers["content-type"] == "application/problem+json"
    assert "run `andon migrate`" in ready.json()["detail"]
    assert ready.json()["checks"]["database"]["ok"] is True


def test_readiness_names_an_unreachable_database(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'missing' / 'dir' / 'andon.db'}")
    try:
        checks = {check.name: check for check in health.readiness(engine, "0005", None)}
    finally:
        engine.dispose()
    assert not checks["database"].ok
    assert "not reachable" in checks["database"].detail
    assert not checks["model"].ok


def test_readiness_is_current_against_the_test_schema(engine: Engine) -> None:
    checks = health.readiness(engine, health.migrations_head(), "v1")
    assert all(check.ok for check in checks), checks

"""Shared fixtures.

Database tests run on SQLite and, when ``ANDON_TEST_DATABASE_URL`` is set, on PostgreSQL:
each test run creates its own schema there and drops it at the end. Every test starts
from empty tables. A missing system component skips its tests with the reason — except
under ``CI=true``, where the skip becomes a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from app import migrate
from app.config import Settings
from app.db import make_engine, make_sessionmaker
from app.learning.service import Classifier, load_classifier
from app.main import create_app
from app.models import Base


def require(reason: str) -> None:
    """Skip with ``reason``; under CI a missing component is a failure, not a skip."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def classifier(model_dir: Path) -> Classifier:
    """The seed-trained router and the sentiment scorer, trained once per test run."""
    return load_classifier(model_dir, 0.45)


def _postgres_url(schema: str) -> str:
    base = os.environ["ANDON_TEST_DATABASE_URL"]
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'andon.db'}"
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url
        return
    if not os.environ.get("ANDON_TEST_DATABASE_URL"):
        require("PostgreSQL tests need ANDON_TEST_DATABASE_URL (see .ci/run)")
    schema = f"andon_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(os.environ["ANDON_TEST_DATABASE_URL"])
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # an unreachable server is a missing component
        admin.dispose()
        require(f"PostgreSQL at ANDON_TEST_DATABASE_URL is not reachable: {exc}")
    url = _postgres_url(schema)
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        engine.dispose()
        yield url
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())
    engine.dispose()


@pytest.fixture
def factory(engine: Engine) -> sessionmaker[Session]:
    return make_sessionmaker(engine)


@pytest.fixture
def settings(database_url: str, model_dir: Path) -> Settings:
    return Settings(database_url=database_url, model_dir=model_dir, scheduler=False, demo=False)


@pytest.fixture
def client(settings: Settings, classifier: Classifier, engine: Engine) -> Iterator[TestClient]:
    """A client signed in with an admin key (``anonymous_client`` has none)."""
    app = create_app(settings, classifier=classifier, start_scheduler=False)
    with TestClient(app) as test_client:
        test_client.headers["Authorization"] = f"Bearer {api_key(engine, 'test-admin', 'admin')}"
        yield test_client


@pytest.fixture
def anonymous_client(
    settings: Settings, classifier: Classifier, engine: Engine
) -> Iterator[TestClient]:
    app = create_app(settings, classifier=classifier, start_scheduler=False)
    with TestClient(app) as test_client:
        yield test_client


def api_key(engine: Engine, name: str, role: str, queues: list[str] | None = None) -> str:
    """A new API key (its plain text) stored straight in the database."""
    from app.auth.service import create_key
    from app.db import unit_of_work

    with unit_of_work(make_sessionmaker(engine)) as session:
        _key, plain = create_key(session, name=name, role=role, queues=queues, actor="test")
    return plain

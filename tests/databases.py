"""A database of a test's own, migrated to head: for tests whose data outlives one test
function (a module's fuzzing run) or that other processes write to (crash tests).

SQLite is a file under the given directory; PostgreSQL is a schema of its own on
``ANDON_TEST_DATABASE_URL``, dropped afterwards (a missing server is ``require``'s call).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import create_engine, text

from app import migrate
from app.db import make_engine
from tests.conftest import require


@contextmanager
def fresh_database(kind: str, directory: Path) -> Iterator[str]:
    """The URL of an empty, migrated database of ``kind`` (sqlite or postgresql)."""
    if kind == "sqlite":
        url = f"sqlite:///{directory / f'own-{uuid.uuid4().hex[:8]}.db'}"
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url
        return
    base = os.environ.get("ANDON_TEST_DATABASE_URL", "")
    if not base.startswith("postgresql"):
        require("PostgreSQL tests need ANDON_TEST_DATABASE_URL (see .ci/run)")
    schema = f"andon_own_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # an unreachable server is a missing component
        admin.dispose()
        require(f"PostgreSQL at ANDON_TEST_DATABASE_URL is not reachable: {exc}")
    separator = "&" if "?" in base else "?"
    url = f"{base}{separator}options={quote(f'-csearch_path={schema}')}"
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

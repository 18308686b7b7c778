"""The pool pings a connection only after it sat idle, and replaces one that died meanwhile.

PostgreSQL only (SQLite has no server to lose): a pooled connection's backend is killed
from another session while the connection is idle in the pool; the next checkout finds it
dead at the ping and hands out a fresh connection instead of failing the request.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from app import db


def test_an_idle_connection_killed_server_side_is_replaced_at_checkout(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("a server-side disconnect needs PostgreSQL")
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.2)
    engine = db.make_engine(database_url, pool_size=1, max_overflow=0)
    killer = db.make_engine(database_url)
    try:
        with engine.connect() as connection:
            first = connection.scalar(text("SELECT pg_backend_pid()"))
        with killer.connect() as other:
            assert other.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        time.sleep(0.5)  # idle past the threshold: the next checkout pings
        with engine.connect() as connection:
            second = connection.scalar(text("SELECT pg_backend_pid()"))
        assert second != first
    finally:
        engine.dispose()
        killer.dispose()

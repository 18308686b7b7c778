"""One holder at a time for a named piece of work, across every process sharing a database.

On PostgreSQL a session-level advisory lock (``pg_try_advisory_lock``) is taken on a
dedicated connection and held for the whole piece of work; it is released at the end, or
by the server when the process dies and its connection drops. The key is two 32-bit
integers: a hash of the database and schema (installations sharing one server in
separate schemas never block each other) and a hash of the work's name.

SQLite is the single-node layout: a process-local lock per database and name, plus the
``FOR UPDATE`` on the source's cursor row that every page commit takes.
"""

from __future__ import annotations

import logging
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)

_local_guard = threading.Lock()
_local_locks: dict[tuple[str, str], threading.Lock] = {}

TRY_LOCK = text(
    "SELECT pg_try_advisory_lock(hashtext(current_database() || '.' || current_schema()), :key)"
)
UNLOCK = text(
    "SELECT pg_advisory_unlock(hashtext(current_database() || '.' || current_schema()), :key)"
)


def key_of(name: str) -> int:
    """A stable signed 32-bit integer for ``name``."""
    value = zlib.crc32(name.encode())
    return value - 2**32 if value >= 2**31 else value


@contextmanager
def exclusive(engine: Engine, name: str) -> Iterator[bool]:
    """Yield True while holding the lock called ``name``, False if someone else holds it."""
    if engine.dialect.name == "postgresql":
        with _advisory(engine, name) as held:
            yield held
        return
    with _local(str(engine.url), name) as held:
        yield held


@contextmanager
def _advisory(engine: Engine, name: str) -> Iterator[bool]:
    key = key_of(name)
    connection = engine.connect()
    try:
        held = bool(connection.execute(TRY_LOCK, {"key": key}).scalar())
        connection.commit()  # the lock is session-level: do not sit idle in a transaction
    except BaseException:
        connection.close()
        raise
    try:
        yield held
    finally:
        if held:
            _release(connection, key, name)
        connection.close()


def _release(connection: Connection, key: int, name: str) -> None:
    try:
        connection.execute(UNLOCK, {"key": key})
        connection.commit()
    except Exception:
        # Never return a connection that may still hold the lock to the pool: closing
        # the underlying connection makes the server release it.
        log.warning("could not release lock %s; discarding its connection", name, exc_info=True)
        connection.invalidate()


@contextmanager
def _local(database: str, name: str) -> Iterator[bool]:
    with _local_guard:
        lock = _local_locks.setdefault((database, name), threading.Lock())
    held = lock.acquire(blocking=False)
    try:
        yield held
    finally:
        if held:
            lock.release()

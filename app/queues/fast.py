"""Claims and closes on the event loop: PostgreSQL's hot path for agents.

An agent's every entry is one claim and one close (resolve or dismiss). Through the general
path (``app.queues.service``) each is a threadpool call around a SQLAlchemy unit of work:
every request hands off from the event loop to a thread and back, and every round trip in
the thread gives up the GIL and must take it back from a loop busy with the other agents.
Under 16 agents that wait, not the CPU, bounded the throughput (bench/README.md, "claims").

On PostgreSQL the router runs the usual case here instead: one statement per claim and one
per close, from a pool of psycopg async connections in autocommit (``open_pool``), awaited
on the event loop. No threadpool hop, no SQLAlchemy execution, and no BEGIN and COMMIT round
trips: each statement is its own transaction.

- claim: ``andon_claim`` (migration 0010), a PL/pgSQL function: the agent's lock, the check
  for lapsed leases, the claim ``UPDATE … FOR UPDATE SKIP LOCKED`` with the WIP count
  inside (read in a snapshot taken after the lock is held: every statement of a VOLATILE
  function takes its own), its audit row, and the item with its verdict for the answer.
- close (resolve, dismiss): one statement locks the entry, closes it if the caller holds
  its lease in a queue its key may work in, and writes the audit row.

The fast path covers the usual case only and declines the rest (returns None, nothing
written): a revoked key, a lapsed lease in the queue (expiring it writes the previous
holder's audit rows), a miss (the queue is empty or the agent is at its limit), a close the
caller may not make (no such entry, not its lease, not its queue). The router then runs the
general path, which handles each case and answers the right error. A queue with a WIP limit
(an advisory lock and a count) never comes here. The answers and audit rows are the general
path's, field for field (``tests/test_queues.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb, set_json_loads
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Engine

from app.auth.service import Principal
from app.config import Settings
from app.db import json_dumps, json_loads, utcnow
from app.items.repository import ItemRow, VerdictRow
from app.queues import service
from app.queues.repository import ENTRY_FIELDS, EntryState


async def _configure(connection: AsyncConnection[Any]) -> None:
    set_json_loads(json_loads, connection)  # orjson, as the engine's JSON columns


POOL_TIMEOUT_SECONDS = 5.0
"""How long a claim or close waits for a connection before it answers 503 (the database is
not reachable, or every connection is busy for that long)."""


def open_pool(engine: Engine, max_size: int) -> AsyncConnectionPool[Any] | None:
    """A pool of async connections to ``engine``'s PostgreSQL database; None elsewhere.

    Connection parameters are the engine's own (``create_connect_args``), so both reach
    the same database the same way. Not yet open: ``await pool.open()`` on the loop that
    serves the requests (the app's lifespan), ``await pool.close()`` at shutdown.
    """
    if engine.dialect.name != "postgresql":
        return None
    _, params = engine.dialect.create_connect_args(engine.url)
    params.pop("context", None)  # SQLAlchemy's adapters map: ours are set in _configure
    return AsyncConnectionPool(
        kwargs={**params, "autocommit": True},  # one statement, one transaction
        min_size=1,
        max_size=max_size,
        open=False,
        timeout=POOL_TIMEOUT_SECONDS,
        configure=_configure,
        name="andon-claims",
    )


def applies(queue: str, settings: Settings) -> bool:
    """Claims in ``queue`` may take the fast path: it has no WIP limit of its own."""
    return queue not in settings.wip_per_queue


# -- the statements ------------------------------------------------------------------------
# psycopg prepares a statement after its fifth use on a connection, so these become
# server-side prepared statements on every pooled connection. Their rows come back in the
# binary format: parsing 46 columns of text (times, numbers, JSON) cost psycopg more than
# the rest of the call (client CPU per claim + close 0.69 -> 0.54 ms in process); the
# values are the same (tests/test_queues.py compares the answers with GET /entries/{id}).

_ENTRY_SQL_COLUMNS = ", ".join(ENTRY_FIELDS)


@dataclass(frozen=True, slots=True)
class Claimed:
    """The entry claimed, its item (the columns an item's answer shows, then its payload) and
    its verdict."""

    entry: EntryState
    item: ItemRow
    verdict: VerdictRow | None
    raw: dict[str, Any]


ITEM_FIELDS = (*ItemRow._fields, "raw")
VERDICT_FIELDS = VerdictRow._fields
_ENTRY_TIMES = [
    ENTRY_FIELDS.index(name) for name in ENTRY_FIELDS if name.endswith(("_at", "_since"))
]
_ITEM_TIMES = [ITEM_FIELDS.index(name) for name in ITEM_FIELDS if name.endswith("_at")]

# ``andon_claim`` returns the entry, the item and the verdict as whole rows; the columns the
# answer shows are taken from them. ``v_present`` tells a missing verdict from one with NULLs.
CLAIM_SQL = f"""
SELECT {", ".join(f"(c.claimed_entry).{name}" for name in ENTRY_FIELDS)},
       {", ".join(f"(c.claimed_item).{name}" for name in ITEM_FIELDS)},
       (c.claimed_verdict).item_id IS NOT NULL AS v_present,
       {", ".join(f"(c.claimed_verdict).{name}" for name in VERDICT_FIELDS)}
FROM andon_claim(%(key_id)s::integer, %(queue)s::varchar, %(agent)s::varchar,
                 %(lease_until)s, %(now)s, %(agent_limit)s::integer, %(audit_at)s,
                 %(before)s::jsonb, %(after)s::jsonb) AS c
"""


def _iso(column: str) -> str:
    """SQL for ``column`` (timestamptz) as Python's ``isoformat()`` of it in UTC, as the
    general path writes times into audit rows (no fraction when it is zero)."""
    utc = f"({column} AT TIME ZONE 'UTC')"
    return (
        f"to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN "
        f"mod(date_part('microseconds', {column})::integer, 1000000) = 0 THEN '' "
        f"ELSE to_char({utc}, '.US') END || '+00:00'"
    )


def _snapshot(row: str, state: str, lease: str, note: str) -> str:
    """SQL for ``service.snapshot`` of an entry: the audit row's before or after."""
    return (
        f"jsonb_build_object('queue', {row}.queue, 'state', {state}, 'claimed_by', "
        f"{row}.claimed_by, 'lease_expires_at', {lease}, 'note', {note})"
    )


# Lock the entry; close it if the caller holds its lease in a queue it may work in (scope
# NULL: every queue); the audit row. Returns the entry as it is now and whether it closed.
CLOSE_SQL = f"""
WITH old AS (
    SELECT id, queue, state, claimed_by, lease_expires_at, note
    FROM queue_entry WHERE id = %(entry_id)s::integer FOR UPDATE
), closed AS (
    UPDATE queue_entry SET state = %(new_state)s::varchar, lease_expires_at = NULL,
           note = %(new_note)s::varchar, updated_at = %(now)s, closed_at = %(now)s
    FROM old
    WHERE queue_entry.id = old.id AND old.state = 'claimed'
      AND old.claimed_by = %(actor)s::varchar
      AND (%(scope)s::varchar[] IS NULL OR old.queue = ANY(%(scope)s::varchar[]))
    RETURNING {", ".join(f"queue_entry.{name}" for name in ENTRY_FIELDS)}
), audit AS (
    INSERT INTO audit_event (at, actor, action, entity, entity_id, before, after)
    SELECT %(audit_at)s, %(actor)s::varchar, %(action)s::varchar, 'queue_entry',
           CAST(closed.id AS VARCHAR),
           {_snapshot("old", "old.state", _iso("old.lease_expires_at"), "old.note")},
           {_snapshot("old", "%(new_state)s::varchar", "NULL", "%(new_note)s::varchar")}
    FROM closed, old
)
SELECT {_ENTRY_SQL_COLUMNS} FROM closed
"""


def _utc(moment: datetime | None) -> datetime | None:
    """As ``UTCDateTime`` returns it: aware UTC (psycopg gives the session's time zone)."""
    return moment.astimezone(UTC) if moment is not None else None


def _entry_state(values: Sequence[Any]) -> EntryState:
    fields = list(values)
    for index in _ENTRY_TIMES:
        fields[index] = _utc(fields[index])
    return EntryState(*fields)


def _claimed(row: Sequence[Any]) -> Claimed:
    entries, items = len(ENTRY_FIELDS), len(ENTRY_FIELDS) + len(ITEM_FIELDS)
    item_values = list(row[entries : items - 1])  # the payload comes last
    for index in _ITEM_TIMES:
        item_values[index] = _utc(item_values[index])
    verdict = VerdictRow._make(row[items + 1 :]) if row[items] else None
    return Claimed(_entry_state(row[:entries]), ItemRow._make(item_values), verdict, row[items - 1])


# -- claim and close -----------------------------------------------------------------------


async def claim(
    pool: AsyncConnectionPool[Any],
    principal: Principal,
    queue: str,
    settings: Settings,
    now: datetime,
) -> Claimed | None:
    """Claim the next entry of ``queue`` (``applies``); None: take the general path.

    The caller has checked the queue and the principal (``service.check_claim``).
    """
    lease_until = now + timedelta(seconds=settings.lease_seconds)
    before, after = service.claim_audit(queue, principal.name, lease_until)
    values = {
        "key_id": principal.key_id,
        "queue": queue,
        "agent": principal.name,
        "lease_until": lease_until,
        "now": now,
        "agent_limit": settings.wip_per_agent,
        "audit_at": utcnow(),
        "before": Jsonb(before, dumps=json_dumps),
        "after": Jsonb(after, dumps=json_dumps),
    }
    async with pool.connection() as connection:
        row = await (await connection.execute(CLAIM_SQL, values, binary=True)).fetchone()
    return _claimed(row) if row is not None else None


async def close(
    pool: AsyncConnectionPool[Any],
    principal: Principal,
    entry_id: int,
    now: datetime,
    *,
    state: str,
    note: str,
    action: str,
) -> EntryState | None:
    """Resolve or dismiss an entry the principal holds (as ``service.close``); None: the
    caller may not (or there is no such entry), take the general path to answer why."""
    scope = principal.scope
    values = {
        "entry_id": entry_id,
        "new_state": state,
        "new_note": note,
        "now": now,
        "audit_at": utcnow(),
        "actor": principal.name,
        "action": action,
        "scope": list(scope) if scope is not None else None,
    }
    async with pool.connection() as connection:
        row = await (await connection.execute(CLOSE_SQL, values, binary=True)).fetchone()
    return _entry_state(row) if row is not None else None

"""A claim reads the entries it takes, not the queue: the query plans of the claim's
statements, on a queue thousands deep with thousands of entries already worked.

Before migration 0011 the pull index (queue, state, rank, id) did not give the pull order
(rank DESC, id ASC), so every claim sorted every open entry of its queue; and the agent's WIP
count read every version of every entry ever claimed. These tests read the plans the
databases choose (EXPLAIN, after ANALYZE) for the statements of ``app.queues.repository``
(``andon_claim`` runs the same three, with the same predicates), and fail on a sort, a scan of
the whole table or a bitmap scan.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, insert, text

from app.items.models import Item
from app.queues import repository
from app.queues.models import QueueEntry
from app.sources.models import Source

OPEN, WORKED = 3000, 3000


def _seed(engine: Engine) -> datetime:
    """A service queue with OPEN open entries and WORKED resolved ones that were claimed."""
    now = datetime.now(UTC)
    with engine.begin() as connection:
        source_id = connection.execute(
            insert(Source).values(name="plans", kind="demo", config={}).returning(Source.id)
        ).scalar_one()
        rows = [
            {
                "source_id": source_id,
                "external_id": f"p{n}",
                "channel": "zendesk",
                "kind": "ticket",
                "text": f"order {n} is late",
                "created_at": now,
                "metrics": {},
                "raw": {},
                "content_hash": f"h{n}",
            }
            for n in range(OPEN + WORKED)
        ]
        ids = list(
            connection.execute(
                insert(Item).returning(Item.id, sort_by_parameter_order=True), rows
            ).scalars()
        )
        connection.execute(
            insert(QueueEntry),
            [
                {
                    "item_id": item_id,
                    "queue": "service",
                    "state": "open" if n < OPEN else "resolved",
                    "claimed_by": None if n < OPEN else f"agent{n % 16}",
                    "routed_by": "model",
                    "priority": float(n % 7),
                    "priority_breakdown": {},
                    "rank": float(n % 7) - n * 1e-6,
                    "waiting_since": now,
                    "created_at": now,
                    "updated_at": now,
                }
                for n, item_id in enumerate(ids)
            ],
        )
        # Claimed now, by the agent whose WIP is counted: a handful, as under a WIP limit.
        connection.execute(
            text(
                "UPDATE queue_entry SET state = 'claimed', claimed_by = 'agent0', "
                "lease_expires_at = :until WHERE id IN "
                "(SELECT id FROM queue_entry WHERE state = 'open' ORDER BY id LIMIT 3)"
            ),
            {"until": (now + timedelta(minutes=15)).isoformat()},
        )
        connection.execute(text("ANALYZE"))
    return now


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)


def _pg_plan(connection: Connection, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    raw = connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {sql}", params).scalar_one()
    document = raw if isinstance(raw, list) else json.loads(raw)
    return list(_nodes(document[0]["Plan"]))


def _compiled(connection: Connection, statement: Any, values: dict[str, Any]) -> tuple[str, Any]:
    compiled = statement.compile(dialect=connection.dialect)
    params = compiled.construct_params(values)
    processors = compiled._bind_processors  # the values as the dialect binds them
    params = {k: processors[k](v) if k in processors else v for k, v in params.items()}
    if compiled.positiontup is not None:  # SQLite: qmark
        return compiled.string, tuple(params[name] for name in compiled.positiontup)
    return compiled.string, params


def _statements(now: datetime) -> list[tuple[str, Any, dict[str, Any]]]:
    values = {
        "in_queue": "service",
        "agent": "agent0",
        "lease_until": now + timedelta(minutes=15),
        "now": now,
        "agent_limit": 10,
        "queue": "service",
    }
    return [
        ("take", repository._TAKE, values),
        ("lapsed", repository._LAPSED[(False, True)], values),
        ("agent wip", repository.select(repository._HELD_BY_AGENT), values),
    ]


def test_claim_statements_read_no_more_than_they_take(engine: Engine) -> None:
    now = _seed(engine)
    with engine.connect() as connection:
        postgres = connection.dialect.name == "postgresql"
        for name, statement, values in _statements(now):
            if isinstance(statement, dict):
                statement = statement[postgres]
            sql, params = _compiled(connection, statement, values)
            if postgres:
                nodes = _pg_plan(connection, sql, params)
                kinds = [node["Node Type"] for node in nodes]
                assert "Sort" not in kinds, (name, kinds)
                assert "Incremental Sort" not in kinds, (name, kinds)
                assert "Seq Scan" not in kinds, (name, kinds)
                assert "Bitmap Heap Scan" not in kinds, (name, kinds)
            else:
                plan = [
                    row[3]
                    for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params)
                ]
                assert not any("TEMP B-TREE" in step for step in plan), (name, plan)
                assert not any(step.startswith("SCAN queue_entry") for step in plan), (name, plan)
            indexes = (
                {node.get("Index Name") for node in nodes}
                if postgres
                else {word for step in plan for word in step.split()}
            )
            # The lapsed-lease check may read either index that leads with the queue: both
            # hold claimed entries only as index entries a plain scan skips once dead.
            expected = {
                "take": [{"ix_queue_entry_pull", "ix_queue_entry_holder"}],
                "lapsed": [{"ix_queue_entry_lease"}, {"ix_queue_entry_pull"}],
                "agent wip": [{"ix_queue_entry_holder"}],
            }[name]
            assert any(choice <= indexes for choice in expected), (name, indexes)

"""Claims per second: 16 agents through the HTTP API against a raw SQL loop, on PostgreSQL.

``python -m bench --only claims`` (or ``python -m bench.claims [--entries N] [--workers W]``).

Both sides drain the same number of seeded entries with 16 concurrent agents, each agent
looping claim → resolve until the queue is empty:

- **API**: ``POST /queues/service/claim`` then ``POST /entries/{id}/resolve`` against
  ``andon serve --workers W --no-scheduler`` (default one HTTP process per core), driven
  by 16 ``bench.load`` clients with agent keys; the rate limit is raised so it cannot
  throttle them (any answer but 200/204 fails the run).
- **raw SQL**: 16 threads, one psycopg connection each, running the statements a claim and a
  resolve need — ``UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED LIMIT 1)`` plus its
  audit row, commit; the resolve ``UPDATE`` plus its audit row, commit — and nothing else (no
  HTTP, no key check, no item read).

Before any figure is printed every drain is verified: every entry resolved, each claimed once.
Both sides drain three times, interleaved; the figures are the medians (each round's ratio is in
the note). Target: the API reaches at least half the raw loop's claims per second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import httpx
from sqlalchemy import Engine, func, insert, select, text

from bench import Row, database, postgres_available, verify
from bench.load import Http

ROOT = Path(__file__).resolve().parent.parent
AGENTS = 16
TARGET = 0.5
# A drain takes seconds and the two sides swing with the machine (the raw loop by ±20 % run
# to run): the figures are medians of interleaved rounds.
ROUNDS = 3


def seed(engine: Engine, entries: int) -> None:
    """``entries`` items with verdicts and open entries in the service queue, in bulk."""
    from app.items.models import Classification, Item
    from app.queues.models import QueueEntry
    from app.sources.models import Source

    now = datetime.now(UTC)
    with engine.begin() as connection:
        source_id = connection.execute(
            insert(Source).values(name="bench", kind="demo", config={}).returning(Source.id)
        ).scalar_one()
        item_ids = connection.execute(
            insert(Item).returning(Item.id, sort_by_parameter_order=True),
            [
                {
                    "source_id": source_id,
                    "external_id": f"b{n}",
                    "channel": "zendesk",
                    "kind": "ticket",
                    "text": f"order {n} has not arrived",
                    "created_at": now - timedelta(seconds=n),
                    "metrics": {},
                    "raw": {},
                    "content_hash": f"h{n}",
                }
                for n in range(entries)
            ],
        ).scalars()
        item_ids = list(item_ids)
        connection.execute(
            insert(Classification),
            [
                {
                    "item_id": item_id,
                    "sentiment": "negative",
                    "compound": -0.5,
                    "queue": "service",
                    "confidence": 0.9,
                    "triage": False,
                    "reason": "bench",
                    "scores": {},
                    "model_version": "bench",
                    "sentiment_version": "bench",
                    "content_hash": "h",
                }
                for item_id in item_ids
            ],
        )
        connection.execute(
            insert(QueueEntry),
            [
                {
                    "item_id": item_id,
                    "queue": "service",
                    "state": "open",
                    "routed_by": "model",
                    "priority": float(n % 7),
                    "priority_breakdown": {},
                    "rank": float(n % 7) - n * 1e-6,
                    "waiting_since": now,
                    "created_at": now,
                    "updated_at": now,
                }
                for n, item_id in enumerate(item_ids)
            ],
        )


def reset(engine: Engine) -> None:
    with engine.begin() as connection:
        for table in ("audit_event", "api_key", "queue_entry", "classification", "item", "source"):
            connection.execute(text(f"DELETE FROM {table}"))


def check_drained(engine: Engine, entries: int) -> None:
    from app.audit.models import AuditEvent
    from app.queues.models import QueueEntry

    with engine.connect() as connection:
        resolved = connection.scalar(
            select(func.count()).where(QueueEntry.state == "resolved").select_from(QueueEntry)
        )
        claims = connection.execute(
            select(AuditEvent.entity_id, func.count())
            .where(AuditEvent.action == "entry.claim")
            .group_by(AuditEvent.entity_id)
        ).all()
    verify(resolved == entries, f"{resolved} of {entries} entries resolved")
    verify(len(claims) == entries, f"{len(claims)} distinct entries claimed of {entries}")
    verify(all(count == 1 for _, count in claims), "an entry was claimed twice")


# -- through the API -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve(url: str, port: int, workers: int, log: IO[bytes]) -> subprocess.Popen[bytes]:
    """The API in its own processes; its stderr goes to ``log`` (a pipe nobody reads fills)."""
    env = {
        **os.environ,
        "ANDON_DATABASE_URL": url,
        "ANDON_SCHEDULER": "false",
        "ANDON_LOG_LEVEL": "WARNING",
        "ANDON_MODEL_DIR": os.environ.get("ANDON_MODEL_DIR", str(ROOT / "models")),
        # 16 agents drain thousands of entries as fast as they can: far beyond the default
        # 6,000 a minute per key (bursts of 600). The limiter still runs on every request;
        # a 429 (like any answer but 200/204) would fail the benchmark, not be counted.
        "ANDON_RATE_LIMIT_PER_MINUTE": "10000000",
        "ANDON_RATE_LIMIT_BURST": "1000000",
    }
    command = [sys.executable, "-m", "app", "serve", "--no-scheduler", "--no-migrate"]
    command += ["--port", str(port), "--workers", str(workers)]
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the API server exited: {tail(log)}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    process.terminate()
    raise RuntimeError("the API server did not answer /healthz within 180 s")


def tail(log: IO[bytes]) -> str:
    log.flush()
    log.seek(0)
    return log.read().decode(errors="replace")[-2000:]


async def api_agents(base: str, keys: list[str]) -> tuple[int, float, list[str]]:
    errors: list[str] = []
    claimed = 0

    async def agent(key: str) -> None:
        nonlocal claimed
        async with Http(base, {"Authorization": f"Bearer {key}"}) as http:
            while True:
                status, body = await http.post("/queues/service/claim")
                if status == 204:
                    return
                if status != 200:
                    errors.append(f"claim {status} {body[:200]!r}")
                    return
                claimed += 1
                entry_id = json.loads(body)["entry"]["id"]
                status, body = await http.post(f"/entries/{entry_id}/resolve", {"note": "ok"})
                if status != 200:
                    errors.append(f"resolve {status} {body[:200]!r}")
                    return

    started = time.perf_counter()
    await asyncio.gather(*(agent(key) for key in keys))
    return claimed, time.perf_counter() - started, errors


def through_api(url: str, engine: Engine, entries: int, workers: int) -> float:
    from app.auth.service import create_key
    from app.db import make_sessionmaker, unit_of_work

    with unit_of_work(make_sessionmaker(engine)) as session:
        keys = [
            create_key(session, name=f"bench{n}", role="agent", actor="bench")[1]
            for n in range(AGENTS)
        ]
    port = free_port()
    with tempfile.TemporaryFile() as log:
        server = serve(url, port, workers, log)
        try:
            claimed, seconds, errors = asyncio.run(api_agents(f"http://127.0.0.1:{port}", keys))
        except OSError as exc:
            raise RuntimeError(f"{exc}; the server said: {tail(log)}") from exc
        finally:
            server.terminate()
            server.wait(30)
    verify(not errors, f"API errors: {errors[:3]}")
    verify(claimed == entries, f"API agents claimed {claimed} of {entries}")
    check_drained(engine, entries)
    return claimed / seconds


# -- raw SQL -------------------------------------------------------------------------------

CLAIM = """
UPDATE queue_entry SET state = 'claimed', claimed_by = %(agent)s,
       lease_expires_at = now() + interval '15 minutes', updated_at = now()
WHERE id = (SELECT id FROM queue_entry WHERE queue = 'service' AND state = 'open'
            ORDER BY rank DESC, id LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING id
"""
RESOLVE = """
UPDATE queue_entry SET state = 'resolved', note = 'ok', closed_at = now(),
       lease_expires_at = NULL, updated_at = now()
WHERE id = %(id)s AND claimed_by = %(agent)s
"""
AUDIT = """
INSERT INTO audit_event (at, actor, action, entity, entity_id, before, after)
VALUES (now(), %(agent)s, %(action)s, 'queue_entry', %(id)s, '{}', '{}')
"""


def raw_agent(dsn: str, agent: str, counts: list[int], errors: list[str]) -> None:
    import psycopg

    try:
        with psycopg.connect(dsn) as connection:
            while True:
                with connection.transaction():
                    row = connection.execute(CLAIM, {"agent": agent}).fetchone()
                    if row is None:
                        return
                    entry = {"agent": agent, "id": str(row[0]), "action": "entry.claim"}
                    connection.execute(AUDIT, entry)
                with connection.transaction():
                    connection.execute(RESOLVE, {"agent": agent, "id": row[0]})
                    connection.execute(AUDIT, {**entry, "action": "entry.resolve"})
                counts.append(1)
    except Exception as exc:  # reported by the caller, which refuses to print a figure
        errors.append(f"{type(exc).__name__}: {exc}")


def raw_sql(url: str, engine: Engine, entries: int) -> float:
    dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    counts: list[int] = []
    errors: list[str] = []
    threads = [
        threading.Thread(target=raw_agent, args=(dsn, f"raw{n}", counts, errors))
        for n in range(AGENTS)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    verify(not errors, f"raw loop errors: {errors[:3]}")
    verify(len(counts) == entries, f"raw loop claimed {len(counts)} of {entries}")
    check_drained(engine, entries)
    return len(counts) / seconds


def measure(entries: int, workers: int, rounds: int = ROUNDS) -> tuple[list[float], list[float]]:
    """``rounds`` drains each way, interleaved (raw, API, raw, API, …): the rates of each."""
    from app import migrate
    from app.db import make_engine

    api: list[float] = []
    raw: list[float] = []
    with database("postgresql") as url:
        engine = make_engine(url)
        try:
            migrate.upgrade(engine)
            for _ in range(rounds):
                reset(engine)
                seed(engine, entries)
                raw.append(raw_sql(url, engine, entries))
                reset(engine)
                seed(engine, entries)
                api.append(through_api(url, engine, entries, workers))
        finally:
            engine.dispose()
    return api, raw


def rows(api: list[float], raw: list[float], entries: int, workers: int) -> list[Row]:
    """The medians, and the ratio of the medians; every round's ratio in the note."""
    note = f"{AGENTS} agents, {entries} entries, claim+resolve each, {workers} API workers"
    api_rate, raw_rate = statistics.median(api), statistics.median(raw)
    each = ", ".join(f"{a / r:.2f}" for a, r in zip(api, raw, strict=True))
    return [
        Row("claims", "raw SQL SKIP LOCKED loop", raw_rate, "claims/s", note=note),
        Row(
            "claims",
            "through the HTTP API",
            api_rate,
            "claims/s",
            reference="raw SQL loop",
            ratio=api_rate / raw_rate,
            target=f"≥ {TARGET:.1f}× raw",
            ok=api_rate / raw_rate >= TARGET,
            note=f"median of {len(api)} interleaved rounds (ratios {each}); {note}",
        ),
    ]


def run(args: argparse.Namespace) -> list[Row]:
    reason = postgres_available()
    if reason is not None:
        return [Row("claims", "skipped", float("nan"), "", note=reason)]
    entries = 1000 if args.quick else 4000
    workers = os.cpu_count() or 1
    api, raw = measure(entries, workers, 1 if args.quick else ROUNDS)
    return rows(api, raw, entries, workers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=4000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="drains each way, interleaved")
    args = parser.parse_args()
    reason = postgres_available()
    if reason is not None:
        sys.exit(f"claims: {reason}")
    api, raw = measure(args.entries, args.workers, args.rounds)
    for row in rows(api, raw, args.entries, args.workers):
        ratio = f"  ({row.ratio:.2f}× raw, target {row.target})" if row.ratio else ""
        print(f"{row.measure:28} {row.value:9.1f} {row.unit}{ratio}")
        if row.ratio:
            print(f"  {row.note}")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()

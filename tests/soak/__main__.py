"""Soak: ingest continuously while agents claim and resolve through the HTTP API, then check.

``python -m tests.soak`` (``make soak``). Settings (environment):

- ``SOAK_SECONDS`` (600): how long ingest and agents run;
- ``SOAK_AGENTS`` (16): concurrent agents, each with its own API key;
- ``SOAK_RATE`` (20): feedback lines appended to the source per second;
- ``SOAK_DATABASE`` (``postgresql`` when reachable, else ``sqlite``); PostgreSQL is
  ``ANDON_BENCH_DATABASE_URL`` (default the local test server), in a schema of its own
  that is dropped afterwards.

One ``andon serve`` process, with its embedded scheduler, syncs a local JSON Lines file
(the fake source) every 10 seconds while this process appends to it at ``SOAK_RATE``.
The agents (async httpx) pull from every queue: most entries are resolved, some released
back, re-routed, dismissed or heartbeated first; an empty queue is polled again after a
short pause. A reader polls ``/signal`` and ``/queues`` like a dashboard.

At the end ingest stops, the last lines are synced, the agents drain the queues and stop.
Then: every line is stored once and classified once; every entry is in a valid state and
its audit log replays to it (``tests.invariants``); the rollups equal a from-scratch
recomputation; the agents' own tallies equal the audit log's; and the server's RSS,
sampled every 5 s, did not keep growing (the median of the last quarter of the run is
within 25 % + 32 MiB of the median of the second quarter, after warm-up). A summary is
printed; the exit status is 1 when any check fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench import database, percentile, postgres_available
from bench.texts import text_for

ROOT = Path(__file__).resolve().parents[2]
QUEUES = ("product", "marketing", "sales", "service", "triage")
SYNC_INTERVAL = 10


@dataclass
class Tally:
    """What the agents did, as they saw it."""

    actions: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    claim_seconds: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Feed:
    """The fake source: a JSON Lines file that grows at ``rate`` lines a second."""

    def __init__(self, path: Path, rate: float) -> None:
        self.path = path
        self.rate = rate
        self.written = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        path.write_text("")

    def _run(self) -> None:
        started = time.monotonic()
        with self.path.open("a", encoding="utf-8") as sink:
            while not self._stop.is_set():
                due = int((time.monotonic() - started) * self.rate)
                while self.written < due:
                    subject, body = text_for(self.written)
                    customer = self.written % 997
                    record = {
                        "id": f"soak-{self.written}",
                        "title": subject,
                        "text": body,
                        "author": {"id": f"c{customer}", "handle": f"cust{customer}"},
                        "channel": ("zendesk", "twitter", "canny")[self.written % 3],
                    }
                    sink.write(json.dumps(record) + "\n")
                    self.written += 1
                sink.flush()
                self._stop.wait(0.2)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


async def agent(base: str, key: str, stop: asyncio.Event, tally: Tally, rng: random.Random) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as http:
        while not stop.is_set():
            queue = rng.choice(QUEUES)
            started = time.perf_counter()
            claimed = await http.post(f"/queues/{queue}/claim")
            tally.claim_seconds.append(time.perf_counter() - started)
            tally.statuses[f"claim {claimed.status_code}"] += 1
            if claimed.status_code == 204:
                await asyncio.sleep(0.5)
                continue
            if claimed.status_code != 200:
                tally.errors.append(f"claim {claimed.status_code}: {claimed.text[:200]}")
                await asyncio.sleep(1)
                continue
            tally.actions["claim"] += 1
            entry_id = claimed.json()["entry"]["id"]
            roll = rng.random()
            if roll < 0.05:
                await act(http, tally, "heartbeat", f"/entries/{entry_id}/heartbeat", None)
            if roll < 0.10:
                await act(http, tally, "release", f"/entries/{entry_id}/release", None)
            elif roll < 0.15:
                target = rng.choice([q for q in QUEUES if q not in (queue, "triage")])
                body = {"queue": target, "reason": "belongs elsewhere"}
                await act(http, tally, "reroute", f"/entries/{entry_id}/reroute", body)
            elif roll < 0.20:
                await act(
                    http, tally, "dismiss", f"/entries/{entry_id}/dismiss", {"reason": "spam"}
                )
            else:
                body = {"note": "answered the customer"}
                await act(http, tally, "resolve", f"/entries/{entry_id}/resolve", body)


async def act(http: httpx.AsyncClient, tally: Tally, action: str, path: str, body: Any) -> None:
    response = await http.post(path, json=body)
    tally.statuses[f"{action} {response.status_code}"] += 1
    if response.status_code == 200:
        tally.actions[action] += 1
    else:
        tally.errors.append(f"{action} {response.status_code}: {response.text[:200]}")


async def reader(base: str, key: str, stop: asyncio.Event, tally: Tally) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as http:
        while not stop.is_set():
            for path in ("/signal", "/queues"):
                response = await http.get(path)
                tally.statuses[f"read {response.status_code}"] += 1
                if response.status_code != 200:
                    tally.errors.append(f"GET {path} {response.status_code}")
            await asyncio.sleep(1)


async def drive(
    base: str, keys: list[str], viewer: str, seconds: float, tally: Tally, done: threading.Event
) -> None:
    stop = asyncio.Event()
    rng = random.Random(12)
    tasks = [
        asyncio.create_task(agent(base, key, stop, tally, random.Random(rng.random())))
        for key in keys
    ]
    tasks.append(asyncio.create_task(reader(base, viewer, stop, tally)))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline or not done.is_set():
        await asyncio.sleep(0.5)
    stop.set()
    await asyncio.gather(*tasks)


def open_work(url: str) -> int:
    from sqlalchemy import func, select

    from app.db import make_engine
    from app.queues.models import QueueEntry

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return int(
                connection.scalar(
                    select(func.count())
                    .select_from(QueueEntry)
                    .where(QueueEntry.state.in_(("open", "claimed")))
                )
                or 0
            )
    finally:
        engine.dispose()


def stored_items(url: str) -> int:
    from sqlalchemy import func, select

    from app.db import make_engine
    from app.items.models import Item

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.scalar(select(func.count()).select_from(Item)) or 0)
    finally:
        engine.dispose()


def main() -> int:
    seconds = float(os.environ.get("SOAK_SECONDS", "600"))
    agents = int(os.environ.get("SOAK_AGENTS", "16"))
    rate = float(os.environ.get("SOAK_RATE", "20"))
    kind = os.environ.get("SOAK_DATABASE") or (
        "postgresql" if postgres_available() is None else "sqlite"
    )
    work = Path(tempfile.mkdtemp(prefix="andon-soak-"))
    try:
        with database(kind) as url:
            return soak(url, kind, work, seconds, agents, rate)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def soak(url: str, kind: str, work: Path, seconds: float, agents: int, rate: float) -> int:
    from app import migrate
    from app.auth.service import create_key
    from app.db import make_engine, make_sessionmaker, unit_of_work
    from app.learning.service import load_classifier
    from app.sources import service as sources
    from tests.invariants import check

    models = Path(os.environ.get("ANDON_MODEL_DIR", ROOT / "models"))
    print(f"soak: {seconds:.0f} s, {agents} agents, {rate:g} lines/s, {kind}", flush=True)
    load_classifier(models, 0.45).close()  # trains the seed model once if there is none
    engine = make_engine(url)
    migrate.upgrade(engine)
    factory = make_sessionmaker(engine)
    feed = Feed(work / "feed.jsonl", rate)
    with unit_of_work(factory) as session:
        config = {"path": str(feed.path), "page_size": 500}
        sources.create(
            session, name="soak", kind="jsonl", config=config, interval_seconds=SYNC_INTERVAL
        )
        keys = [
            create_key(session, name=f"agent{n}", role="agent", actor="soak")[1]
            for n in range(agents)
        ]
        viewer = create_key(session, name="dashboard", role="viewer", actor="soak")[1]

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANDON_")}
    env.update(
        {
            "ANDON_DATABASE_URL": url,
            "ANDON_MODEL_DIR": str(models),
            "ANDON_LOG_LEVEL": "WARNING",
            "ANDON_SCHEDULER_REFRESH_SECONDS": "2",
            "ANDON_WIP_PER_AGENT": "5",
        }
    )
    log = (work / "serve.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--no-migrate", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    tally = Tally()
    samples: list[tuple[float, float]] = []
    problems: list[str] = []
    try:
        wait_ready(base, server)
        started = time.monotonic()
        feed.start()
        ingest_over = threading.Event()

        def sampler() -> None:
            while server.poll() is None and not ingest_over.wait(0):
                samples.append((time.monotonic() - started, rss_mib(server.pid)))
                time.sleep(5)

        threading.Thread(target=sampler, daemon=True).start()

        def finish_ingest() -> None:
            time.sleep(seconds)
            feed.stop()
            deadline = time.monotonic() + 300
            while stored_items(url) < feed.written and time.monotonic() < deadline:
                time.sleep(1)
            while open_work(url) and time.monotonic() < deadline:
                time.sleep(1)
            ingest_over.set()

        threading.Thread(target=finish_ingest, daemon=True).start()
        asyncio.run(drive(base, keys, viewer, seconds, tally, ingest_over))
        elapsed = time.monotonic() - started
        if server.poll() is not None:
            problems.append(f"the server exited ({server.returncode})")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        log.close()

    with factory() as session:
        report = check(session)
    problems += report.problems
    if report.items != feed.written:
        problems.append(f"{feed.written} lines written, {report.items} items stored")
    if open_work(url):
        problems.append(f"{open_work(url)} entries still open or claimed after the drain")
    audit = audit_counts(factory)
    for action in ("claim", "resolve", "release", "reroute", "dismiss", "heartbeat"):
        if audit.get(f"entry.{action}", 0) != tally.actions[action]:
            problems.append(
                f"agents counted {tally.actions[action]} {action}s, "
                f"the audit log {audit.get(f'entry.{action}', 0)}"
            )
    if tally.errors:
        problems.append(f"{len(tally.errors)} unexpected answers, e.g. {tally.errors[:3]}")
    growth = memory_growth(samples)
    if growth is not None and not growth[2]:
        problems.append(f"server RSS kept growing: {growth[0]:.0f} → {growth[1]:.0f} MiB")
    engine.dispose()

    print_summary(kind, elapsed, feed.written, report, tally, samples, growth, audit)
    if problems:
        print("FAILED:\n  " + "\n  ".join(problems))
        print(f"server log: {(work / 'serve.log').read_text()[-3000:]}")
        return 1
    print("soak: all checks passed")
    return 0


def wait_ready(base: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"andon serve exited ({server.returncode})")
        try:
            if httpx.get(f"{base}/readyz", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise SystemExit("andon serve was not ready within 180 s")


def audit_counts(factory: Any) -> dict[str, int]:
    from sqlalchemy import func, select

    from app.audit.models import AuditEvent

    with factory() as session:
        rows = session.execute(
            select(AuditEvent.action, func.count())
            .where(AuditEvent.entity == "queue_entry", AuditEvent.actor != "system")
            .group_by(AuditEvent.action)
        ).all()
    return {action: int(count) for action, count in rows}


def memory_growth(samples: list[tuple[float, float]]) -> tuple[float, float, bool] | None:
    """(median RSS of the second quarter, of the last quarter, bounded?) or None if too short."""
    if len(samples) < 8:
        return None
    quarter = len(samples) // 4
    early = statistics.median(rss for _, rss in samples[quarter : 2 * quarter])
    late = statistics.median(rss for _, rss in samples[-quarter:])
    return early, late, late <= early * 1.25 + 32


def print_summary(
    kind: str,
    elapsed: float,
    written: int,
    report: Any,
    tally: Tally,
    samples: list[tuple[float, float]],
    growth: tuple[float, float, bool] | None,
    audit: dict[str, int],
) -> None:
    rss = [value for _, value in samples]
    rows = [
        ("database", kind),
        ("run", f"{elapsed:.0f} s (ingest, then the last sync and the drain)"),
        ("items", f"{written} written, {report.items} stored, {report.classified} classified"),
        ("ingest", f"{written / elapsed:.1f} items/s over the run"),
        ("entries", str(dict(sorted(report.states.items())))),
        ("agent actions", str(dict(sorted(tally.actions.items())))),
        ("audit (agents)", str(dict(sorted(audit.items())))),
        ("answers", str(dict(sorted(tally.statuses.items())))),
        ("rollups", f"{report.rollup_rows} rows, {report.rollup_total} items counted"),
    ]
    if tally.claim_seconds:
        p50 = percentile(tally.claim_seconds, 0.5) * 1000
        p99 = percentile(tally.claim_seconds, 0.99) * 1000
        count = len(tally.claim_seconds)
        rows.append(("claim latency", f"p50 {p50:.0f} ms, p99 {p99:.0f} ms ({count} claims)"))
    if rss:
        first, peak, last = rss[0], max(rss), rss[-1]
        rows.append(("server RSS", f"first {first:.0f}, peak {peak:.0f}, last {last:.0f} MiB"))
    if growth is not None:
        verdict = "bounded" if growth[2] else "GROWING"
        rows.append(("RSS 2nd → 4th qtr", f"{growth[0]:.0f} → {growth[1]:.0f} MiB ({verdict})"))
    rows.append(("load average", f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"))
    for label, value in rows:
        print(f"{label:<20}{value}")


if __name__ == "__main__":
    raise SystemExit(main())

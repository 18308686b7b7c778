"""Kill -9 during claims and resolves: no entry is lost, held twice, or held past its lease.

Two ways, each on SQLite and PostgreSQL:

- **mid-transaction**: an agent process runs the queue service functions
  (``python -m tests.test_crash_claims``) and stops inside a claim's — then a resolve's —
  transaction, after the change is flushed and before it commits; it is SIGKILLed there.
  The half-done claim and resolve vanish, the work it had committed stays, another agent
  claims at once (no lock is left behind), and once the dead agent's leases lapse another
  agent gets its entries. Lapsing is simulated with a later ``now``, never a sleep.
- **a live server**: agents claim and resolve through ``andon serve`` over HTTP while the
  server is SIGKILLed under them; one agent had walked away holding entries. After a
  restart nobody else gets a held entry until its (10 s) lease lapses, then another agent
  drains the queue.

Afterwards every entry is resolved exactly once and its audit log replays to its state
(``tests.invariants``).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.audit.models import AuditEvent
from app.auth import repository as keys
from app.auth.service import Principal, create_key, principal_of
from app.config import Settings
from app.db import as_utc, make_engine, make_sessionmaker, unit_of_work, utcnow
from app.learning.service import Classifier
from app.queues import service
from app.queues.models import QueueEntry
from app.signal.service import rebuild
from tests.databases import fresh_database
from tests.invariants import check
from tests.test_queues import Spec, seed

LEASE = 10  # seconds: the shortest ANDON_LEASE_SECONDS allows, for the live server
ENTRIES = 24
KINDS = ["sqlite", "postgresql"]


def lease_settings(url: str) -> Settings:
    """The default 15-minute lease: lapsing is simulated by claiming with a later ``now``."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=url,
        wip_per_agent=1000,
        scheduler=False,
    )


def seeded(factory: sessionmaker[Session], count: int) -> None:
    """Open entries in the service queue (bulk-inserted), and the rollups that count them."""
    seed(factory, [Spec(waited_minutes=n) for n in range(count)])
    with unit_of_work(factory) as session:
        rebuild(session)


def agent(factory: sessionmaker[Session], name: str) -> Principal:
    with factory() as session:
        key = keys.by_name(session, name)
        assert key is not None
        return principal_of(key)


def held_by(factory: sessionmaker[Session], name: str) -> list[int]:
    with factory() as session:
        return list(
            session.scalars(
                select(QueueEntry.id)
                .where(QueueEntry.state == "claimed", QueueEntry.claimed_by == name)
                .order_by(QueueEntry.id)
            )
        )


def actions(factory: sessionmaker[Session]) -> Counter[tuple[str, str]]:
    with factory() as session:
        rows = session.execute(
            select(AuditEvent.actor, AuditEvent.action).where(AuditEvent.entity == "queue_entry")
        ).all()
    return Counter((actor, action) for actor, action in rows)


def consistent(factory: sessionmaker[Session], **kwargs: object) -> None:
    with factory() as session:
        report = check(session, **kwargs)  # type: ignore[arg-type]
    assert report, report.problems


def drain(
    factory: sessionmaker[Session], who: Principal, settings: Settings, *, later: float = 0
) -> list[int]:
    """Claim and resolve until the queue is empty, ``later`` seconds from now."""
    done = []
    while True:
        now = utcnow() + timedelta(seconds=later)
        with unit_of_work(factory) as session:
            entry = service.claim(session, who, "service", settings, now)
            if entry is None:
                return done
            service.resolve(session, who, entry.id, "done", now)
            done.append(entry.id)


def victim(url: str, marker: str, step: str) -> None:
    """The agent process that is killed: ``step`` is where it stops (claim or resolve)."""
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    settings = lease_settings(url)
    ann = agent(factory, "ann")

    def stall() -> None:
        Path(marker).write_text(str(os.getpid()))
        time.sleep(3600)

    if step == "claim":
        held = []
        for _ in range(3):
            with unit_of_work(factory) as session:
                entry = service.claim(session, ann, "service", settings, utcnow())
                assert entry is not None
                held.append(entry.id)
        with unit_of_work(factory) as session:
            service.resolve(session, ann, held[0], "refund sent", utcnow())
        with unit_of_work(factory) as session:
            assert service.claim(session, ann, "service", settings, utcnow()) is not None
            session.flush()
            stall()  # claimed and flushed, not committed
    else:
        target = held_by(factory, "ann")[0]
        with unit_of_work(factory) as session:
            service.resolve(session, ann, target, "half done", utcnow())
            session.flush()
            stall()  # resolved and flushed, not committed


def kill_at(url: str, step: str, tmp: Path) -> None:
    marker = tmp / f"stalled-{step}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANDON_")}
    with (tmp / f"victim-{step}.log").open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.test_crash_claims", url, str(marker), step],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 120
    while not marker.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError((tmp / f"victim-{step}.log").read_text()[-3000:])
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait(timeout=60) == -signal.SIGKILL


@pytest.mark.parametrize("kind", KINDS)
def test_kill_mid_transaction_of_a_claim_and_of_a_resolve(kind: str, tmp_path: Path) -> None:
    with fresh_database(kind, tmp_path) as url:
        engine = make_engine(url)
        factory = make_sessionmaker(engine)
        settings = lease_settings(url)
        seeded(factory, ENTRIES)
        with unit_of_work(factory) as session:
            for name in ("ann", "bob"):
                create_key(session, name=name, role="agent", actor="test")
        bob = agent(factory, "bob")

        kill_at(url, "claim", tmp_path)
        ann_holds = held_by(factory, "ann")
        assert len(ann_holds) == 2, "three claims committed, one resolved; the fourth vanished"
        assert actions(factory) == {("ann", "entry.claim"): 3, ("ann", "entry.resolve"): 1}
        consistent(factory, lease_grace=timedelta(0))
        with unit_of_work(factory) as session:  # nothing is left locked by the dead agent
            first = service.claim(session, bob, "service", settings, utcnow())
            assert first is not None
            assert first.id not in ann_holds
            service.resolve(session, bob, first.id, "done", utcnow())

        kill_at(url, "resolve", tmp_path)
        assert held_by(factory, "ann") == ann_holds, "the half-done resolve vanished"
        assert actions(factory)[("ann", "entry.resolve")] == 1
        consistent(factory, lease_grace=timedelta(0))

        mine = drain(factory, bob, settings)
        assert not set(mine) & set(ann_holds), "a live lease is never taken over"
        assert len(mine) == ENTRIES - 1 - 1 - len(ann_holds)
        late = drain(factory, bob, settings, later=settings.lease_seconds + 1)
        assert sorted(late) == ann_holds, "lapsed leases go to the next agent"

        with factory() as session:
            report = check(session)
            resolves = Counter(
                session.scalars(
                    select(AuditEvent.entity_id).where(AuditEvent.action == "entry.resolve")
                )
            )
        assert report, report.problems
        assert report.states == {"resolved": ENTRIES}
        assert len(resolves) == ENTRIES
        assert set(resolves.values()) == {1}, "every entry resolved exactly once"
        assert actions(factory)[("system", "entry.expire")] == len(ann_holds)
        engine.dispose()


# -- through a live server ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    def __init__(self, url: str, model_dir: Path, log: Path) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ANDON_")}
        self.env.update(
            {
                "ANDON_DATABASE_URL": url,
                "ANDON_MODEL_DIR": str(model_dir),
                "ANDON_LEASE_SECONDS": str(LEASE),
                "ANDON_WIP_PER_AGENT": "1000",
                # one agent drains what is left after the kill, ~700 requests in a second or
                # two on a fast machine: more than the default burst (600). The test is about
                # leases and crashes; rate limits have their own tests.
                "ANDON_RATE_LIMIT_PER_MINUTE": "0",
            }
        )
        self.log = log
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [sys.executable, "-m", "app", "serve", "--no-scheduler", "--no-migrate"]
        with self.log.open("a") as sink:
            self.process = subprocess.Popen(
                [*command, "--port", str(self.port)],
                env=self.env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{self.base}/readyz", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(self.log.read_text()[-3000:])
            time.sleep(0.2)

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        assert self.process.wait(timeout=60) == -signal.SIGKILL

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=60)


def http_agent(
    base: str, key: str, resolved: list[int], errors: list[str], hoard: int = 0
) -> list[int]:
    """Claim and resolve until the queue is empty or the server goes away; ids still held.

    With ``hoard`` the agent claims that many entries and walks away holding them.
    """
    held: list[int] = []
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
        try:
            while True:
                claimed = http.post("/queues/service/claim")
                if claimed.status_code == 204:
                    return held
                if claimed.status_code != 200:
                    errors.append(f"claim {claimed.status_code}: {claimed.text[:200]}")
                    return held
                entry_id = claimed.json()["entry"]["id"]
                held.append(entry_id)
                if hoard:
                    if len(held) == hoard:
                        return held
                    continue
                done = http.post(f"/entries/{entry_id}/resolve", json={"note": "done"})
                if done.status_code != 200:
                    errors.append(f"resolve {done.status_code}: {done.text[:200]}")
                    return held
                held.remove(entry_id)
                resolved.append(entry_id)
        except httpx.TransportError:
            return held  # the server was killed under this agent


@pytest.mark.parametrize("kind", KINDS)
def test_kill_the_server_under_agents_then_leases_lapse_to_the_next_agent(
    kind: str, model_dir: Path, classifier: Classifier, tmp_path: Path
) -> None:
    entries = 400
    with fresh_database(kind, tmp_path) as url:
        engine = make_engine(url)
        factory = make_sessionmaker(engine)
        seeded(factory, entries)
        with unit_of_work(factory) as session:
            plain = {
                name: create_key(session, name=name, role="agent", actor="test")[1]
                for name in ("carl", "a1", "a2", "a3", "a4", "dora")
            }
        server = Server(url, model_dir, tmp_path / "serve.log")
        try:
            server.start()
            resolved: list[int] = []
            errors: list[str] = []
            walked_away = http_agent(server.base, plain["carl"], resolved, errors, hoard=3)
            assert len(walked_away) == 3
            threads = [
                threading.Thread(
                    target=http_agent, args=(server.base, plain[name], resolved, errors)
                )
                for name in ("a1", "a2", "a3", "a4")
            ]
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + 120
            while len(resolved) < entries // 10 and time.monotonic() < deadline:
                time.sleep(0.01)
            server.kill()  # while four agents have requests in flight
            for thread in threads:
                thread.join(timeout=60)
            assert not errors, errors
            assert len(resolved) < entries, "the kill landed before the queue was drained"

            consistent(factory)
            with factory() as session:
                held = {
                    entry.id: as_utc(entry.lease_expires_at)
                    for entry in session.scalars(
                        select(QueueEntry).where(QueueEntry.state == "claimed")
                    )
                    if entry.lease_expires_at is not None
                }
            assert set(walked_away) <= set(held)

            server.start()
            assert http_agent(server.base, plain["dora"], resolved, errors) == []
            time.sleep(max(0.0, (max(held.values()) - utcnow()).total_seconds()) + 1)
            assert http_agent(server.base, plain["dora"], resolved, errors) == []
            assert not errors, errors
        finally:
            server.stop()

        with factory() as session:
            report = check(session)
            resolves = Counter(
                session.scalars(
                    select(AuditEvent.entity_id).where(AuditEvent.action == "entry.resolve")
                )
            )
            total = session.scalar(select(func.count()).select_from(QueueEntry))
            claims = session.execute(
                select(AuditEvent.entity_id, AuditEvent.actor, AuditEvent.at)
                .where(AuditEvent.action == "entry.claim")
                .order_by(AuditEvent.id)
            ).all()
        assert report, report.problems
        assert report.states == {"resolved": entries}
        assert total == entries
        assert len(resolves) == entries
        assert set(resolves.values()) == {1}, "every entry resolved exactly once"
        last_claim = {int(entry_id): (actor, as_utc(at)) for entry_id, actor, at in claims}
        for entry_id, lease_end in held.items():
            actor, at = last_claim[entry_id]
            assert actor == "dora", f"entry {entry_id} held at the kill went to {actor}"
            assert at >= lease_end, f"entry {entry_id} was taken over before its lease lapsed"
        engine.dispose()


if __name__ == "__main__":  # the victim: python -m tests.test_crash_claims URL MARKER STEP
    victim(*sys.argv[1:4])

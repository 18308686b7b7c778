"""Claims under concurrency, through a live HTTP server, on SQLite and PostgreSQL.

Sixteen agents drain 2,000 entries (claim → resolve) at once: every entry is claimed exactly
once and none is lost. An agent process killed while it holds an entry loses it when the
lease lapses, and another agent gets it.
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
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
import pytest
import uvicorn
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.audit.models import AuditEvent
from app.config import Settings
from app.db import unit_of_work, utcnow
from app.learning.service import Classifier
from app.main import create_app
from app.queues.models import QueueEntry
from tests.conftest import api_key
from tests.test_queues import Spec, seed

AGENTS = 16
ENTRIES = 2000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def live_url(settings: Settings, classifier: Classifier, engine: Engine) -> Iterator[str]:
    """The app served by uvicorn on a free loopback port, in a thread."""
    app = create_app(settings, classifier=classifier, start_scheduler=False)
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", ws="none", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


@dataclass
class AgentRun:
    claimed: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def drain(url: str, key: str, run: AgentRun, start: threading.Barrier) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
        start.wait()
        while True:
            response = http.post("/queues/service/claim")
            if response.status_code == 204:
                return
            if response.status_code != 200:
                run.errors.append(f"claim {response.status_code}: {response.text}")
                return
            entry_id = response.json()["entry"]["id"]
            run.claimed.append(entry_id)
            done = http.post(f"/entries/{entry_id}/resolve", json={"note": "done"})
            if done.status_code != 200:
                run.errors.append(f"resolve {entry_id} {done.status_code}: {done.text}")
                return


def test_sixteen_agents_drain_two_thousand_entries_each_claimed_once(
    live_url: str, engine: Engine, factory: sessionmaker[Session]
) -> None:
    ids = seed(factory, [Spec(followers=n % 97, waited_minutes=n % 60) for n in range(ENTRIES)])
    keys = [api_key(engine, f"agent{n}", "agent") for n in range(AGENTS)]
    runs = [AgentRun() for _ in keys]
    start = threading.Barrier(AGENTS)
    threads = [
        threading.Thread(target=drain, args=(live_url, key, run, start))
        for key, run in zip(keys, runs, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)

    assert [error for run in runs for error in run.errors] == []
    claimed = Counter(entry_id for run in runs for entry_id in run.claimed)
    assert len(claimed) == ENTRIES
    assert set(claimed) == set(ids)
    assert max(claimed.values()) == 1
    assert sum(1 for run in runs if run.claimed) > 1, "the agents worked side by side"
    with factory() as session:
        states = dict(
            session.execute(
                select(QueueEntry.state, func.count(QueueEntry.id)).group_by(QueueEntry.state)
            ).all()
        )
        assert states == {"resolved": ENTRIES}
        claims = session.execute(
            select(AuditEvent.entity_id, func.count(AuditEvent.id))
            .where(AuditEvent.action == "entry.claim")
            .group_by(AuditEvent.entity_id)
        ).all()
        assert len(claims) == ENTRIES
        assert {count for _, count in claims} == {1}
        holders = dict(session.execute(select(QueueEntry.id, QueueEntry.claimed_by)).all())
    owner = {entry_id: f"agent{n}" for n, run in enumerate(runs) for entry_id in run.claimed}
    assert holders == owner


AGENT_SCRIPT = """
import sys, time, httpx
url, key = sys.argv[1], sys.argv[2]
response = httpx.post(url + "/queues/service/claim", headers={"Authorization": "Bearer " + key})
print(response.status_code, response.json()["entry"]["id"] if response.status_code == 200 else "")
sys.stdout.flush()
time.sleep(600)  # "working" on it when it is killed
"""


def test_a_crashed_agent_loses_its_entry_when_the_lease_lapses(
    live_url: str, engine: Engine, factory: sessionmaker[Session]
) -> None:
    (entry_id,) = seed(factory, [Spec()])
    crashing = api_key(engine, "crashing", "agent")
    other = {"Authorization": f"Bearer {api_key(engine, 'other', 'agent')}"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANDON_")}
    agent = subprocess.Popen(
        [sys.executable, "-c", AGENT_SCRIPT, live_url, crashing],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert agent.stdout is not None
        assert agent.stdout.readline().split() == ["200", str(entry_id)]
    finally:
        agent.send_signal(signal.SIGKILL)
        agent.wait(timeout=30)
        if agent.stdout is not None:
            agent.stdout.close()
    assert agent.returncode == -signal.SIGKILL

    with httpx.Client(base_url=live_url, headers=other, timeout=30) as http:
        assert http.post("/queues/service/claim").status_code == 204  # the lease still holds
        with unit_of_work(factory) as session:  # the lease runs out
            session.execute(
                update(QueueEntry)
                .where(QueueEntry.id == entry_id)
                .values(lease_expires_at=utcnow() - timedelta(seconds=1))
            )
        taken = http.post("/queues/service/claim")
        assert taken.status_code == 200
        assert taken.json()["entry"]["id"] == entry_id
        assert taken.json()["entry"]["claimed_by"] == "other"
        done = http.post(f"/entries/{entry_id}/resolve", json={"note": "picked up"})
        assert done.json()["state"] == "resolved"


def test_one_agent_claiming_from_many_threads_at_once_stays_within_its_wip_limit(
    settings: Settings, engine: Engine, factory: sessionmaker[Session]
) -> None:
    """The agent's row lock serialises its claims: twelve at once, limit three, three win.

    On PostgreSQL the WIP count is read in the statement after the lock is taken (a
    snapshot that sees the claims committed while this one waited for the lock).
    """
    from app.auth import repository as keys
    from app.auth.service import principal_of
    from app.errors import LimitExceeded
    from app.queues import service

    seed(factory, [Spec() for _ in range(20)])
    api_key(engine, "solo", "agent")
    with factory() as session:
        key = keys.by_name(session, "solo")
        assert key is not None
        solo = principal_of(key)
    limited = settings.model_copy(update={"wip_per_agent": 3})
    outcomes: list[str] = []
    start = threading.Barrier(12)

    def one_claim() -> None:
        start.wait()
        try:
            with unit_of_work(factory) as session:
                entry = service.claim(session, solo, "service", limited, utcnow())
                outcomes.append("claimed" if entry is not None else "empty")
        except LimitExceeded as exc:
            outcomes.append(f"limit {exc.extra['limit']}")

    threads = [threading.Thread(target=one_claim) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert Counter(outcomes) == {"claimed": 3, "limit agent": 9}
    with factory() as session:
        held = session.scalar(
            select(func.count()).where(QueueEntry.claimed_by == "solo").select_from(QueueEntry)
        )
        audited = session.scalar(
            select(func.count())
            .where(AuditEvent.action == "entry.claim", AuditEvent.actor == "solo")
            .select_from(AuditEvent)
        )
    assert (held, audited) == (3, 3)

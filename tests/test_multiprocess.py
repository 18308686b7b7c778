"""The multi-replica layout on one PostgreSQL: two `andon serve --no-scheduler`, two
`andon worker`, driven at once — every source has one runner, every entry one claimant.

First the test itself holds the source's advisory lock (as a third process would): both
replicas answer 409 and both workers log the skip, with no run rows. Then it lets go and
drives syncs through both replicas while both workers run the schedule, appends to the
source, and has agents claim through both replicas.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from app import migrate
from app.db import make_engine, make_sessionmaker, unit_of_work
from app.items.models import Item
from app.learning.service import Classifier
from app.ops import locks
from app.queues.models import QueueEntry
from app.sources import service
from app.sources.models import SyncRun
from app.sources.runner import BUSY, lock_name
from tests.conftest import api_key, require

LINES = 120
MORE = 40
DEADLINE = 120.0


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL schema for this test alone, migrated to head."""
    base = os.environ.get("ANDON_TEST_DATABASE_URL", "")
    if not base.startswith("postgresql"):
        require("the multi-process test needs PostgreSQL (ANDON_TEST_DATABASE_URL)")
    schema = f"andon_mp_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base else "?"
    url = f"{base}{separator}options={quote(f'-csearch_path={schema}')}"
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        yield url
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.2)


def lines(start: int, count: int) -> str:
    topics = ("the app crashes at login", "please add dark mode", "refund my order", "love it")
    return "".join(
        json.dumps({"id": f"r{n}", "text": f"{topics[n % 4]} (report {n})"}) + "\n"
        for n in range(start, start + count)
    )


class Fleet:
    def __init__(self, url: str, model_dir: Path, logs: Path) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ANDON_")}
        self.env.update(
            {
                "ANDON_DATABASE_URL": url,
                "ANDON_MODEL_DIR": str(model_dir),
                "ANDON_LOG_FORMAT": "json",
                "ANDON_SCHEDULER_REFRESH_SECONDS": "1",
                "ANDON_WIP_PER_AGENT": "1000",
            }
        )
        self.logs = logs
        self.processes: list[tuple[subprocess.Popen[bytes], IO[bytes]]] = []

    def start(self, name: str, *args: str) -> Path:
        path = self.logs / f"{name}.log"
        sink = path.open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "app", *args], env=self.env, stdout=sink, stderr=sink
        )
        self.processes.append((process, sink))
        return path

    def stop(self) -> list[int]:
        for process, _ in self.processes:
            process.terminate()
        codes = [process.wait(timeout=60) for process, _ in self.processes]
        for _, sink in self.processes:
            sink.close()
        return codes


def test_two_replicas_and_two_workers_never_sync_a_source_twice_or_double_claim(
    pg_url: str, model_dir: Path, classifier: Classifier, tmp_path: Path
) -> None:
    engine = make_engine(pg_url)
    factory: sessionmaker[Session] = make_sessionmaker(engine)
    feed = tmp_path / "feed.jsonl"
    feed.write_text(lines(0, LINES))
    with unit_of_work(factory) as session:
        source = service.create(
            session, name="feed", kind="jsonl", config={"path": str(feed)}, interval_seconds=1
        )
        source_id = source.id
    admin = {"Authorization": f"Bearer {api_key(engine, 'mp-admin', 'admin')}"}
    agents = [
        {"Authorization": f"Bearer {api_key(engine, f'agent-{n}', 'agent')}"} for n in range(4)
    ]

    fleet = Fleet(pg_url, model_dir, tmp_path)
    ports = [free_port(), free_port()]
    try:
        with locks.exclusive(engine, lock_name(source_id)) as held:
            assert held
            for n, port in enumerate(ports):
                fleet.start(
                    f"api{n}", "serve", "--no-scheduler", "--no-migrate", "--port", str(port)
                )
            worker_logs = [fleet.start(f"worker{n}", "worker") for n in range(2)]
            apis = [httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) for port in ports]

            def ready() -> bool:
                try:
                    return all(api.get("/readyz").status_code == 200 for api in apis)
                except httpx.TransportError:
                    return False

            wait_for(ready, "both API replicas to be ready")
            for api in apis:
                busy = api.post("/sources/feed/sync", headers=admin)
                assert busy.status_code == 409, busy.text
                assert BUSY in busy.json()["detail"]
            wait_for(
                lambda: all(BUSY in log.read_text() for log in worker_logs),
                "both workers to skip the held source",
            )
            with factory() as session:
                assert session.scalar(select(func.count()).select_from(SyncRun)) == 0

        # Released: both workers race on the schedule, both replicas sync on demand.
        statuses: list[int] = []

        def hammer(api: httpx.Client) -> None:
            for _ in range(3):
                statuses.append(api.post("/sources/feed/sync", headers=admin).status_code)

        threads = [threading.Thread(target=hammer, args=(api,)) for api in apis]
        for thread in threads:
            thread.start()
        wait_for(lambda: count(factory, Item) >= LINES, "the first lines to be stored")
        with feed.open("a") as handle:
            handle.write(lines(LINES, MORE))
        for thread in threads:
            thread.join(timeout=DEADLINE)
        wait_for(lambda: count(factory, Item) == LINES + MORE, "the appended lines")
        assert set(statuses) <= {200, 409}, statuses

        # Agents claim through both replicas at once until every queue is empty.
        with factory() as session:
            open_entries = session.scalar(
                select(func.count()).select_from(QueueEntry).where(QueueEntry.state == "open")
            )
        claimed: list[int] = []
        refused: list[str] = []

        def claim_all(agent: dict[str, str], api: httpx.Client) -> None:
            for queue in ("product", "marketing", "sales", "service", "triage"):
                while True:
                    response = api.post(f"/queues/{queue}/claim", headers=agent)
                    if response.status_code == 204:
                        break
                    if response.status_code != 200:
                        refused.append(response.text)  # asserted below, in the test's thread
                        return
                    claimed.append(response.json()["entry"]["id"])

        claimers = [
            threading.Thread(target=claim_all, args=(agent, apis[n % 2]))
            for n, agent in enumerate(agents)
        ]
        for thread in claimers:
            thread.start()
        for thread in claimers:
            thread.join(timeout=DEADLINE)
        for api in apis:
            api.close()
    finally:
        codes = fleet.stop()

    assert codes[2:] == [0, 0], "workers stop cleanly on SIGTERM"
    assert refused == []
    assert len(claimed) == open_entries
    assert len(set(claimed)) == len(claimed), "an entry was claimed twice"
    with factory() as session:
        ids = list(session.scalars(select(Item.external_id)))
        assert len(ids) == len(set(ids)) == LINES + MORE
        runs = session.execute(
            select(SyncRun.started_at, SyncRun.finished_at, SyncRun.status)
            .where(SyncRun.source_id == source_id)
            .order_by(SyncRun.started_at)
        ).all()
    engine.dispose()
    assert len(runs) >= 2
    assert {status for _, _, status in runs} == {"ok"}
    for (_, finished, _), (started, _, _) in itertools.pairwise(runs):
        assert finished is not None
        assert finished <= started, "two runs of one source overlapped"


def count(factory: sessionmaker[Session], model: type[Item]) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0

"""Kill the sync between two pages, restart it, and every item is stored exactly once.

A real ``andon sync`` process pulls a fake Mastodon instance over HTTP. The fake holds
its answer to the third page until the test has killed the process with SIGKILL. The
runner stores a page while it pulls the next, so the test waits until the second page is
committed (a slow upstream never holds a commit back) — the kill then lands after two
pages were committed and before the third was stored.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from app.db import unit_of_work
from app.items.models import Classification, Item
from app.learning.service import Classifier
from app.queues.models import QueueEntry
from app.signal.models import SignalRollup
from app.sources import service
from app.sources.models import SyncRun
from tests.connectors.fakes.mastodon_api import BASE_URL, FakeMastodonApi
from tests.http_bridge import HttpBridge

PAGE = 20


def andon_sync(database_url: str, model_dir: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANDON_")}
    env.update({"ANDON_DATABASE_URL": database_url, "ANDON_MODEL_DIR": str(model_dir)})
    return subprocess.Popen(
        [sys.executable, "-m", "app", "sync", "masto"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stored(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(Item)) or 0


def test_kill_between_pages_then_restart_stores_every_item_once(
    engine: Engine,
    factory: sessionmaker[Session],
    database_url: str,
    model_dir: Path,
    classifier: Classifier,  # trains the model once so the subprocess only loads it
) -> None:
    api = FakeMastodonApi()
    api.known_tags.add("acme")
    people = [api.add_account(f"user{n}", followers=n * 11) for n in range(5)]
    api.add_status("first post about #acme, the app keeps logging me out", account=people[0])

    timeline_calls = 0
    third_page_asked = threading.Event()
    release = threading.Event()

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal timeline_calls
        if request.url.path.startswith("/api/v1/timelines/tag/"):
            timeline_calls += 1
            if timeline_calls == 3:
                third_page_asked.set()
                release.wait(timeout=60)
        return api.handle(request)

    with HttpBridge(handler, BASE_URL) as bridge:
        with unit_of_work(factory) as session:
            service.create(
                session,
                name="masto",
                kind="mastodon",
                config={
                    "base_url": bridge.url,
                    "mode": "hashtag",
                    "hashtag": "acme",
                    "limit": PAGE,
                },
            )
        first = andon_sync(database_url, model_dir)
        _, stderr = first.communicate(timeout=120)
        assert first.returncode == 0, stderr
        assert timeline_calls >= 1

        total = 1 + PAGE * 5 + 7
        for n in range(total - 1):
            api.add_status(
                f"#acme feedback number {n}: the export keeps failing, please fix it",
                account=people[n % 5],
            )
        timeline_calls = 0

        victim = andon_sync(database_url, model_dir)
        assert third_page_asked.wait(timeout=120), "the sync never asked for its third page"
        deadline = time.monotonic() + 60
        while stored(factory) < 1 + 2 * PAGE and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(victim.pid, signal.SIGKILL)
        victim.communicate(timeout=30)
        release.set()
        assert victim.returncode == -signal.SIGKILL

        assert stored(factory) == 1 + 2 * PAGE, "two pages were committed before the kill"

        again = andon_sync(database_url, model_dir)
        _, stderr = again.communicate(timeout=120)
        assert again.returncode == 0, stderr

    with factory() as session:
        ids = list(session.scalars(select(Item.external_id)))
        assert len(ids) == total
        assert len(set(ids)) == total
        assert session.scalar(select(func.count()).select_from(Classification)) == total
        assert session.scalar(select(func.count()).select_from(QueueEntry)) == total
        assert session.scalar(select(func.sum(SignalRollup.count))) == total
        statuses = list(session.scalars(select(SyncRun.status).order_by(SyncRun.id)))
        assert statuses == ["ok", "interrupted", "ok"]

"""Kill -9 during a classification batch — of a sync, then of a re-classification — and
after a restart every item is stored once, classified once, routed once, and the rollups
equal a recomputation. On SQLite and PostgreSQL.

The victim is the real ``andon`` CLI (``andon sync``, ``andon reclassify``) started by this
module as a script (``python -m tests.test_crash_classify``), which first makes one text
slow: when a batch holds it, the process scoring it writes a marker file and stalls. The
test waits for the marker and SIGKILLs the CLI process. Batches are 200 texts, so the
classification worker processes are in use too; they must not outlive their parent.
The restart is a plain ``andon`` process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.db import make_engine, make_sessionmaker, unit_of_work
from app.items.models import Classification, Item
from app.learning.service import Classifier, create_rule
from app.sources import service as sources
from app.sources.models import SyncRun
from tests.databases import fresh_database
from tests.invariants import check

LINES = 500  # pages of 200: the kill lands in the second page
PAGE = 200
STALL = "#stall-here"
TOPICS = (
    "my order never arrived and support will not answer",
    "please add dark mode to the mobile app",
    "how much is the enterprise plan for our team",
    "loved the new campaign video",
)


def andon(
    url: str, model_dir: Path, log: Path, *args: str, stall: Path | None = None
) -> subprocess.Popen[str]:
    """``andon ARGS`` (the stalling victim when ``stall`` names its marker file).

    Output goes to ``log``, not a pipe: a pipe stays open as long as any worker process
    the victim left behind, and reading it would hang instead of failing.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANDON_")}
    env.update({"ANDON_DATABASE_URL": url, "ANDON_MODEL_DIR": str(model_dir)})
    if stall is None:
        command = [sys.executable, "-m", "app", *args]
    else:
        command = [sys.executable, "-m", "tests.test_crash_classify", str(stall), *args]
    with log.open("a") as sink:
        return subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT, text=True)


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def kill_when_stalled(victim: subprocess.Popen[str], marker: Path) -> list[int]:
    """SIGKILL ``victim`` once a batch is stalled; its worker processes, for checking."""
    deadline = time.monotonic() + 300
    while not marker.exists():
        if victim.poll() is not None:
            raise AssertionError(f"the victim ended ({victim.returncode}) before the stall")
        if time.monotonic() > deadline:
            victim.kill()
            raise AssertionError("the victim never reached the stalled batch")
        time.sleep(0.1)
    workers = children_of(victim.pid)
    os.kill(victim.pid, signal.SIGKILL)
    assert victim.wait(timeout=60) == -signal.SIGKILL
    return workers


def assert_reaped(workers: list[int]) -> None:
    """Classification workers notice their parent is gone and exit."""
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in workers):
        if time.monotonic() > deadline:
            for pid in workers:
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)
            raise AssertionError(f"classification workers outlived their parent: {workers}")
        time.sleep(0.2)


def finish(process: subprocess.Popen[str], log: Path) -> None:
    assert process.wait(timeout=600) == 0, log.read_text()[-3000:]


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_kill_during_classification_of_a_sync_and_of_a_reclassify(
    kind: str, model_dir: Path, classifier: Classifier, tmp_path: Path
) -> None:
    feed = tmp_path / "feed.jsonl"
    feed.write_text(
        "".join(
            json.dumps(
                {
                    "id": f"r{n}",
                    "text": f"{TOPICS[n % 4]} (feedback {n})" + (f" {STALL}" if n == 250 else ""),
                    "author": {"id": f"u{n % 40}", "handle": f"user{n % 40}"},
                }
            )
            + "\n"
            for n in range(LINES)
        )
    )
    log = tmp_path / "andon.log"
    with fresh_database(kind, tmp_path) as url:
        engine = make_engine(url)
        factory = make_sessionmaker(engine)
        with unit_of_work(factory) as session:
            config = {"path": str(feed), "page_size": PAGE}
            sources.create(session, name="feed", kind="jsonl", config=config)

        # 1. A sync killed while it classifies its second page.
        marker = tmp_path / "stalled-sync"
        workers = kill_when_stalled(
            andon(url, model_dir, log, "sync", "feed", stall=marker), marker
        )
        assert workers, "batches of 200 are split over worker processes"
        assert_reaped(workers)
        with factory() as session:
            stored = session.scalar(select(func.count()).select_from(Item)) or 0
            report = check(session)
            assert report, report.problems
        # The first page may or may not have committed (the sync stores a page while the
        # next one is classified); the stalled page did not, not even in part.
        assert stored in (0, PAGE)

        finish(andon(url, model_dir, log, "sync", "feed"), log)
        with factory() as session:
            report = check(session)
            assert report, report.problems
            assert report.items == report.classified == LINES
            assert report.rollup_total == LINES
            runs = list(session.scalars(select(SyncRun.status).order_by(SyncRun.id)))
            assert runs == ["interrupted", "ok"]

        # 2. A rule now routes every text to sales; a re-classification is killed in its
        # second batch and run again.
        with unit_of_work(factory) as session:
            rule = create_rule(session, pattern_type="keyword", pattern="feedback", queue="sales")
            rule_reason = f"rule {rule.id}"
        marker = tmp_path / "stalled-reclassify"
        victim = andon(url, model_dir, log, "reclassify", "--batch", str(PAGE), stall=marker)
        assert_reaped(kill_when_stalled(victim, marker))
        with factory() as session:
            report = check(session)
            assert report, report.problems
            assert moved(session, rule_reason) in (0, PAGE), "whole batches, the stalled one not"

        finish(andon(url, model_dir, log, "reclassify", "--batch", str(PAGE)), log)
        with factory() as session:
            report = check(session)
            assert report, report.problems
            assert report.items == report.classified == LINES
            assert moved(session, rule_reason) == LINES
            assert report.states["open"] == LINES
            assert report.rollup_total == LINES
        engine.dispose()


def moved(session: object, reason: str) -> int:
    from sqlalchemy.orm import Session

    assert isinstance(session, Session)
    return (
        session.scalar(
            select(func.count())
            .select_from(Classification)
            .where(Classification.queue == "sales", Classification.reason.contains(reason))
        )
        or 0
    )


def stall_on(marker: Path) -> None:
    """Make a batch holding the stall text hang (the process scoring it writes ``marker``)."""
    original = Classifier.classify_here

    def classify_here(self: Classifier, texts: object, **kwargs: object) -> object:
        if any(STALL in text for text in texts):  # type: ignore[attr-defined]
            marker.write_text(str(os.getpid()))
            time.sleep(3600)
        return original(self, texts, **kwargs)  # type: ignore[arg-type]

    Classifier.classify_here = classify_here  # type: ignore[method-assign,assignment]


if __name__ == "__main__":  # the victim: python -m tests.test_crash_classify MARKER ARGS…
    from app.cli import main

    stall_on(Path(sys.argv[1]))
    sys.argv = ["andon", *sys.argv[2:]]
    main()

"""The pipelined ingest: the next page is classified while this one is stored.

What must hold whatever the timing: an item that changes from one page to the next is
stored and classified on its last text, a verdict computed ahead is used only for the
content it was computed on, large pages classified in worker processes give the verdicts
one process gives, the signal equals a from-scratch count, and a crash in the puller's
thread reaches the caller. A worker whose parent is killed exits instead of lingering.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.db import unit_of_work
from app.items.models import Classification, Item
from app.items.service import content_hash, prepare, store_page
from app.learning.service import Classifier, Verdict
from app.queues.models import QueueEntry
from app.signal import service as signal_service
from app.sources.models import Source, SyncRun
from app.sources.runner import run_sync
from classifiers.routing import Route
from classifiers.sentiment import Sentiment
from connectors.base import Cursor, Page, SourceItem
from tests.support import ListConnector, factory_for, make_item


def add_source(factory: sessionmaker[Session], name: str = "src") -> int:
    with unit_of_work(factory) as session:
        source = Source(name=name, kind="list", config={})
        session.add(source)
        session.flush()
        return source.id


class Pages:
    """Serves the given pages in order (an offset cursor), the same item in several."""

    kind = "list"

    def __init__(self, pages: list[list[SourceItem]]) -> None:
        self.pages = pages

    def pull(self, cursor: Cursor | None) -> Page:
        index = int(cursor["page"]) if cursor else 0
        more = index + 1 < len(self.pages)
        return Page(items=self.pages[index], next_cursor={"page": index + 1}, has_more=more)

    def check(self) -> None:
        return None


def test_an_item_changed_in_the_next_page_ends_on_its_last_text(
    factory: sessionmaker[Session], classifier: Classifier
) -> None:
    add_source(factory)
    first = make_item(1, "the checkout page is down and I cannot pay")
    changed = replace(first, text="please add a dark mode to the dashboard")
    same = make_item(2, "how much is the team plan for forty seats?")
    pages = Pages([[first, same], [changed, same], [make_item(3)]])

    summary = run_sync(factory, "src", classifier, connector_factory=factory_for(pages))

    assert summary.status == "ok"
    assert (summary.new, summary.updated, summary.pages) == (3, 1, 3)
    with factory() as session:
        item = session.scalars(select(Item).where(Item.external_id == first.external_id)).one()
        assert item.text == changed.text
        verdict = session.get_one(Classification, item.id)
        assert verdict.content_hash == item.content_hash == content_hash(None, changed.text)
        expected = classifier.classify([changed.text])[0]
        assert verdict.queue == expected.route.queue
        assert verdict.sentiment == expected.sentiment.label
        assert session.scalar(select(func.count()).select_from(Item)) == 3
        assert signal_service.stored(session) == signal_service.recompute(session)


def planted(queue: str) -> Verdict:
    return Verdict(
        sentiment=Sentiment(label="positive", compound=0.9),
        route=Route(queue=queue, confidence=0.99, triage=False, reason="planted verdict"),
    )


def test_a_verdict_computed_ahead_is_used_only_for_its_content(
    factory: sessionmaker[Session], classifier: Classifier
) -> None:
    source_id = add_source(factory)
    right = make_item(1, "my parcel never arrived")
    stale = make_item(2, "my invoice is wrong")
    page = prepare([right, stale])
    page.verdicts[(right.external_id, page.fields[right.external_id]["content_hash"])] = planted(
        "sales"
    )
    # computed on another text of the same item: must not be used
    page.verdicts[(stale.external_id, content_hash(None, "an older text"))] = planted("sales")

    with unit_of_work(factory) as session:
        store_page(session, source_id, [right, stale], classifier, prepared=page)

    with factory() as session:
        reasons = dict(
            session.execute(
                select(Item.external_id, Classification.reason).join(
                    Classification, Classification.item_id == Item.id
                )
            ).all()
        )
        assert reasons[right.external_id] == "planted verdict"
        assert reasons[stale.external_id] != "planted verdict"
        assert reasons[stale.external_id].startswith("model:")


def test_large_pages_through_worker_processes_match_one_process(
    factory: sessionmaker[Session], classifier: Classifier
) -> None:
    add_source(factory)
    texts = [
        "On hold for 2 hours and still no refund",
        "Please add a dark mode to the dashboard",
        "How much is the team plan for 40 seats?",
        "Loved your webinar yesterday, great campaign!",
        "The export keeps crashing when I open it",
    ]
    items = [make_item(n, f"{texts[n % 5]} (ticket {n})") for n in range(650)]
    pooled = Classifier(classifier.router, classifier.sentiment, workers=2, parallel_min=100)
    try:
        summary = run_sync(
            factory,
            "src",
            pooled,
            connector_factory=factory_for(ListConnector(items, page_size=250)),
        )
    finally:
        pooled.close()

    assert (summary.status, summary.new, summary.pages) == ("ok", 650, 3)
    alone = Classifier(classifier.router, classifier.sentiment, workers=1)
    expected = alone.classify([item.text for item in items])
    with factory() as session:
        stored = {
            external_id: (queue, sentiment)
            for external_id, queue, sentiment in session.execute(
                select(Item.external_id, Classification.queue, Classification.sentiment).join(
                    Classification, Classification.item_id == Item.id
                )
            )
        }
        assert stored == {
            item.external_id: (verdict.route.queue, verdict.sentiment.label)
            for item, verdict in zip(items, expected, strict=True)
        }
        assert session.scalar(select(func.count()).select_from(QueueEntry)) == 650
        assert signal_service.stored(session) == signal_service.recompute(session)


class Explodes(ListConnector):
    """The second pull raises something no connector should (a bug, not an upstream error)."""

    def pull(self, cursor: Cursor | None) -> Page:
        if self.calls == 1:
            self.calls += 1
            raise KeyError("a bug in the connector")
        return super().pull(cursor)


def test_a_crash_in_the_pulling_thread_reaches_the_caller(
    factory: sessionmaker[Session], classifier: Classifier
) -> None:
    add_source(factory)
    broken = Explodes([make_item(n) for n in range(30)], page_size=10)

    with pytest.raises(KeyError, match="a bug in the connector"):
        run_sync(factory, "src", classifier, connector_factory=factory_for(broken))

    with factory() as session:  # the first page was committed; the run stays visible
        assert session.scalar(select(func.count()).select_from(Item)) == 10
        assert session.scalar(select(SyncRun.status)) == "running"


WORKER_HOST = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from app.learning.service import load_classifier
    classifier = load_classifier(Path(sys.argv[1]), 0.45)
    classifier.workers = 2
    classifier.start()
    print(" ".join(str(pid) for pid in classifier.worker_pids()), flush=True)
    time.sleep(300)
    """
)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is dead, only not yet reaped
        return stat.read().split(") ")[1].split()[0] != "Z"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc (Linux)")
def test_workers_exit_when_their_parent_is_killed(model_dir: Path, classifier: Classifier) -> None:
    host = subprocess.Popen(
        [sys.executable, "-c", WORKER_HOST, str(model_dir)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert host.stdout is not None
    pids = [int(pid) for pid in host.stdout.readline().split()]
    assert len(pids) == 2
    assert all(alive(pid) for pid in pids)

    os.kill(host.pid, signal.SIGKILL)
    host.wait(timeout=30)
    host.stdout.close()

    deadline = time.monotonic() + 20
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(pid) for pid in pids), "a worker outlived its killed parent"

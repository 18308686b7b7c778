"""The sync runner: pulls a source page by page and stores what it gets.

Guarantees (DESIGN.md, "Connector" contract):

* each page's items, quarantined records, run counters and the new cursor are committed
  in ONE transaction — a crash between pages loses nothing and repeats nothing that
  storage would not dedupe;
* a cursor that does not move while the connector says there is more is refused
  (an upstream loop must not become an infinite sync);
* ``RateLimited`` is honoured: a short wait is slept, a long one ends the run as
  ``rate_limited`` with the cursor kept, so the next scheduled run resumes;
* every run is recorded with its counters, status and error;
* one runner per source across every process sharing the database: the run holds the
  source's lock (``app.ops.locks``: a PostgreSQL advisory lock, process-local on SQLite)
  from start to end; a run that cannot take it is skipped — ``SourceBusy``, logged and
  counted, with no run row — and never marks the holder's run as interrupted;
* a failing source backs off (``consecutive_failures``, ``next_attempt_at``) and is
  shown as degraded; refused credentials pause it until an admin re-enables it;
* what is stored has been through the privacy policy (``app.ops.privacy``) first.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.db import unit_of_work, utcnow
from app.errors import Conflict
from app.items import repository as item_repository
from app.items.service import PreparedPage, facts_of, prepare, storable, store_page
from app.learning.service import (
    Classifier,
    PendingParts,
    Verdict,
    current_rules,
    pickle_by_fields,
)
from app.ops import locks, metrics
from app.ops.backoff import Backoff
from app.ops.privacy import Privacy
from app.sources import repository
from app.sources.models import QuarantinedRecord, Source, SyncRun
from app.sources.service import get
from classifiers.rules import RuleSet
from connectors import registry
from connectors.base import Author, Connector, Page, SourceItem
from connectors.errors import AuthFailed, ConnectorError, RateLimited

log = logging.getLogger(__name__)

ConnectorFactory = Callable[[Source], Connector]


@dataclass(frozen=True, slots=True)
class RunSummary:
    run_id: int
    source: str
    status: str
    pages: int
    pulled: int
    new: int
    updated: int
    quarantined: int
    error: str | None


class RepeatedCursor(ConnectorError):
    """The connector returned a cursor it had already returned in this run."""


class SourceBusy(Conflict):
    """Another runner (in this or another process) is syncing the source right now."""


BUSY = "skipped: another runner holds the source"


def lock_name(source_id: int) -> str:
    return f"andon.sync.source:{source_id}"


def default_factory(source: Source) -> Connector:
    return registry.create(source.kind, source.config)


def _cursor_key(cursor: dict[str, Any] | None) -> str:
    return json.dumps(cursor, sort_keys=True, default=str)


def run_sync(
    factory: sessionmaker[Session],
    source_name: str,
    classifier: Classifier,
    *,
    connector_factory: ConnectorFactory = default_factory,
    max_pages: int | None = None,
    max_wait: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
    on_page: Callable[[RunSummary], None] | None = None,
    privacy: Privacy | None = None,
    backoff: Backoff | None = None,
) -> RunSummary:
    """Sync one source until it has nothing more (or ``max_pages``).

    Raises ``NotFound`` for an unknown source and ``SourceBusy`` when another runner
    holds it.
    """
    with factory() as session:
        source_id = get(session, source_name).id
    engine: Engine = factory.kw["bind"]
    with locks.exclusive(engine, lock_name(source_id)) as held:
        if not held:
            metrics.SYNC_RUNS.labels(source_name, "skipped").inc()
            log.info("sync %s %s", source_name, BUSY)
            raise SourceBusy(f"source {source_name!r} {BUSY}")
        started = time.monotonic()
        summary = _run_locked(
            factory,
            source_name,
            classifier,
            connector_factory=connector_factory,
            max_pages=max_pages,
            max_wait=max_wait,
            sleep=sleep,
            on_page=on_page,
            privacy=privacy or Privacy(),
            backoff=backoff or Backoff(),
        )
    metrics.SYNC_RUNS.labels(source_name, summary.status).inc()
    metrics.SYNC_DURATION.labels(source_name).observe(time.monotonic() - started)
    return summary


def _run_locked(
    factory: sessionmaker[Session],
    source_name: str,
    classifier: Classifier,
    *,
    connector_factory: ConnectorFactory,
    max_pages: int | None,
    max_wait: float,
    sleep: Callable[[float], None],
    on_page: Callable[[RunSummary], None] | None,
    privacy: Privacy,
    backoff: Backoff,
) -> RunSummary:
    with unit_of_work(factory) as session:
        source = get(session, source_name)
        # Safe: we hold the source's lock, so a "running" run is a dead process's.
        for stale in repository.unfinished_runs(session, source.id):
            stale.status, stale.finished_at = "interrupted", utcnow()
            stale.error = stale.error or "the process stopped before the run finished"
        run = SyncRun(source_id=source.id, status="running", started_at=utcnow())
        session.add(run)
        session.flush()
        run_id, source_id = run.id, source.id
        connector_error: ConnectorError | None = None
        try:
            connector = connector_factory(source)
        except ConnectorError as exc:
            connector_error = exc

    status, error = "ok", None
    retry_after: float | None = None
    if connector_error is not None:
        status, error = _failure(connector_error)
    else:
        with factory() as session:
            cursor = repository.cursor_of(session, source_id)
            start = cursor.cursor if cursor is not None else None
        puller = _Puller(connector, start, privacy, max_pages, max_wait, sleep, source_name)
        try:
            _store_pages(
                factory, source_id, source_name, run_id, puller, classifier, on_page, privacy
            )
        finally:
            puller.stop()
        status, error, retry_after = puller.status, puller.error, puller.retry_after

    with unit_of_work(factory) as session:
        run = session.get_one(SyncRun, run_id)
        run.status, run.error, run.finished_at = status, error, utcnow()
        source = session.get_one(Source, source_id)
        _settle(source, status, error, retry_after, backoff)
        summary = _summary(run, source.name)
    log.info(
        "sync %s: %s, %d pages, %d pulled, %d new, %d updated, %d quarantined",
        source_name,
        summary.status,
        summary.pages,
        summary.pulled,
        summary.new,
        summary.updated,
        summary.quarantined,
    )
    return summary


def _settle(
    source: Source, status: str, error: str | None, retry_after: float | None, backoff: Backoff
) -> None:
    """The source's status and backoff after a run that ended with ``status``."""
    now = utcnow()
    if status == "auth_failed":
        # Retrying refused credentials only gets the account locked: wait for an admin.
        source.status, source.status_reason = "paused", error
        source.consecutive_failures += 1
        source.next_attempt_at = None
    elif status == "failed":
        source.consecutive_failures += 1
        wait = backoff.delay(source.consecutive_failures)
        source.next_attempt_at = now + timedelta(seconds=wait)
        source.status = "degraded"
        source.status_reason = (
            f"{error} ({source.consecutive_failures} failed run(s) in a row; next scheduled "
            f"attempt after {source.next_attempt_at.isoformat(timespec='seconds')})"
        )
    else:
        source.status, source.status_reason = "ok", None
        source.consecutive_failures = 0
        source.next_attempt_at = (
            now + timedelta(seconds=retry_after) if retry_after is not None else None
        )


def _failure(exc: ConnectorError) -> tuple[str, str]:
    if isinstance(exc, AuthFailed):
        return "auth_failed", str(exc)
    return "failed", f"{type(exc).__name__}: {exc}"


@dataclass(slots=True)
class _Pulled:
    page: Page
    """As the connector returned it: its items have not been through the privacy policy;
    ``prepared`` holds them once they have (see ``_prepare_and_classify``)."""
    payloads: list[str]
    """Each rejected record's payload after the privacy policy, as quarantined."""
    prepared: PreparedPage | None = None


_END = object()  # the puller thread's last message


class _Puller:
    """Pulls pages, one page ahead of storage, in a thread of its own.

    The first page is pulled in the caller's thread (``first``), so the caller can start
    classification workers by forking while it has no other thread; ``start`` then pulls
    the rest in a thread, and ``next`` hands them over. The cursor chain is followed in
    memory (the page's ``next_cursor``, or the same cursor when a page gives none: exactly
    what is committed with each page), so HTTP and JSON for the next page overlap with
    storing this one. It refuses a repeated cursor, honours ``RateLimited`` (a short wait
    is slept, a long one ends the run as ``rate_limited``), and ends the run on any other
    connector error; ``status``, ``error`` and ``retry_after`` say how it ended. An
    unexpected exception in the thread is raised again in the caller (``raise_crash``),
    once the pages pulled before it are stored. Only committed
    pages move the stored cursor, so a page pulled but never stored is pulled again by
    the next run.
    """

    def __init__(
        self,
        connector: Connector,
        cursor: dict[str, Any] | None,
        privacy: Privacy,
        max_pages: int | None,
        max_wait: float,
        sleep: Callable[[float], None],
        source_name: str,
    ) -> None:
        self.status = "ok"
        self.error: str | None = None
        self.retry_after: float | None = None
        self._connector = connector
        self._cursor = cursor
        self._privacy = privacy
        self._max_pages = max_pages
        self._max_wait = max_wait
        self._sleep = sleep
        self._source_name = source_name
        self._pages: queue.Queue[object] = queue.Queue(maxsize=1)
        self._stopped = threading.Event()
        self._crash: BaseException | None = None
        self._generator = self._pull_all()
        self._thread: threading.Thread | None = None

    def first(self) -> _Pulled | None:
        """The first page, pulled in this thread; None when the run ends without one."""
        return next(self._generator, None)

    def start(self) -> None:
        """Pull the remaining pages in a thread."""
        self._thread = threading.Thread(
            target=self._drain, name=f"pull-{self._source_name}", daemon=True
        )
        self._thread.start()

    def next(self, *, timeout: float | None = None) -> _Pulled | None:
        """The next page; ``_END_PAGE`` when there are no more (``raise_crash`` then says
        whether the thread crashed); None if it has not arrived within ``timeout``
        seconds (``None``: wait as long as it takes)."""
        try:
            value = self._pages.get(timeout=timeout)
        except queue.Empty:
            return None
        if value is _END:
            if self._thread is not None:
                self._thread.join()
            return _END_PAGE
        assert isinstance(value, _Pulled)
        return value

    def raise_crash(self) -> None:
        """Raise, in the caller's thread, what crashed the pulling thread (if anything)."""
        if self._crash is not None:
            raise self._crash

    def stop(self) -> None:
        """Stop pulling (after the page in flight) and wait for the thread."""
        self._stopped.set()
        thread = self._thread
        while thread is not None and thread.is_alive():
            with contextlib.suppress(queue.Empty):  # unblock a put() waiting for room
                self._pages.get(timeout=0.05)

    def _put(self, value: object) -> bool:
        while not self._stopped.is_set():
            try:
                self._pages.put(value, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _drain(self) -> None:
        try:
            for pulled in self._generator:
                if not self._put(pulled):
                    return
        except BaseException as exc:  # re-raised in the caller's thread by next()
            self._crash = exc
        finally:
            self._put(_END)

    def _pull_all(self) -> Iterator[_Pulled]:
        seen: set[str] = set()
        pages = 0
        waited = 0.0
        current = self._cursor
        while not self._stopped.is_set():
            try:
                page = self._connector.pull(current)
            except RateLimited as exc:
                if waited + exc.retry_after <= self._max_wait:
                    log.info(
                        "source %s rate limited; waiting %.1fs", self._source_name, exc.retry_after
                    )
                    self._sleep(exc.retry_after)
                    waited += exc.retry_after
                    continue
                self.status = "rate_limited"
                self.error = f"{exc} (retry after {exc.retry_after:.0f}s)"
                self.retry_after = exc.retry_after
                return
            except ConnectorError as exc:
                self.status, self.error = _failure(exc)
                return
            key = _cursor_key(page.next_cursor)
            if page.has_more and (key == _cursor_key(current) or key in seen):
                self.status = "failed"
                self.error = f"connector returned a repeated cursor {key[:200]}"
                return
            seen.add(key)
            payloads = [self._privacy.payload(reject.payload) for reject in page.rejects]
            yield _Pulled(page, payloads)
            pages += 1
            if not page.has_more or (self._max_pages is not None and pages >= self._max_pages):
                return
            if page.next_cursor is not None:
                current = page.next_cursor


_POLL = 0.005
"""Seconds between looks for the next page while the current one is being classified."""

_END_PAGE = _Pulled(Page(items=[], next_cursor=None, has_more=False), [])
"""What ``_Puller.next`` returns once the run has no more pages."""


def _store_pages(
    factory: sessionmaker[Session],
    source_id: int,
    source_name: str,
    run_id: int,
    puller: _Puller,
    classifier: Classifier,
    on_page: Callable[[RunSummary], None] | None,
    privacy: Privacy,
) -> None:
    """Store every page the puller gives, preparing and classifying the next one meanwhile.

    While page N is being classified (in worker processes when it is large), the next
    page is awaited; as soon as it arrives its classification starts too, and page N is
    stored while the workers classify page N+1. Page N is committed as soon as its own
    verdicts are in: a slow upstream never holds a commit back longer than the page's
    classification takes anyway.
    """
    first = puller.first()
    if first is None:
        return
    if len(first.page.items) >= classifier.parallel_min:
        classifier.start()  # fork the workers now, before the puller's thread exists
    puller.start()
    pending: _Ahead | None = _classify_ahead(
        factory, source_id, source_name, first, classifier, None, privacy
    )
    while True:
        if pending is None:
            pulled = puller.next()
        else:
            pulled = puller.next(timeout=_POLL)
            while pulled is None and not pending.parts.done():
                pulled = puller.next(timeout=_POLL)
        if pulled is None:  # the next page is not here and this one is classified: store it
            assert pending is not None
            _commit(factory, source_id, run_id, pending, classifier, on_page)
            pending = None
            continue
        if pulled is _END_PAGE:
            break
        ahead = _classify_ahead(
            factory, source_id, source_name, pulled, classifier, pending, privacy
        )
        if pending is not None:
            _commit(factory, source_id, run_id, pending, classifier, on_page)
        pending = ahead
    if pending is not None:
        _commit(factory, source_id, run_id, pending, classifier, on_page)
    puller.raise_crash()  # after the pages pulled before it are stored


@dataclass(slots=True)
class _Ahead:
    pulled: _Pulled
    parts: PendingParts[_PreparedPart]
    submitted: float


# Pages go to the workers as pulled: pickled by their constructors' arguments.
pickle_by_fields(SourceItem)
pickle_by_fields(Author)


@dataclass(frozen=True, slots=True)
class _Part:
    """A share of a page for a classification worker: its records as pulled, and what
    the worker needs to prepare and classify them as storage would."""

    items: list[SourceItem]
    privacy: Privacy
    stored: dict[str, str]
    """External id → the content hash stored (or in flight) for the page's known items."""
    source_name: str
    rules: RuleSet


@dataclass(frozen=True, slots=True)
class _PreparedPart:
    fields: dict[str, dict[str, Any]]
    classified: list[str]
    """The external ids whose content is not stored yet: the ones classified."""
    verdicts: list[Verdict]


def _prepare_and_classify(classifier: Classifier, part: _Part) -> _PreparedPart:
    """The privacy policy, the stored fields and the verdicts of a share of a page.

    Runs in a classification worker: the policy's redaction is the costliest step of
    preparing a page (regular expressions over every string of every payload), and the
    process that stores pages is the ingest's bottleneck.
    """
    prepared = prepare([part.privacy.item(item) for item in part.items])
    fields = prepared.fields
    todo = [e for e, values in fields.items() if part.stored.get(e) != values["content_hash"]]
    facts = [facts_of(fields[e], part.source_name) for e in todo]
    verdicts = classifier.classify_here([f.text for f in facts], facts=facts, rules=part.rules)
    return _PreparedPart(fields, todo, verdicts)


def _classify_ahead(
    factory: sessionmaker[Session],
    source_id: int,
    source_name: str,
    pulled: _Pulled,
    classifier: Classifier,
    in_flight: _Ahead | None,
    privacy: Privacy,
) -> _Ahead:
    """Start preparing the page and classifying its new and changed items (those storage
    will classify), in shares over the classification workers.

    What is stored is read now; the page still in flight (pulled, not committed yet)
    counts as stored once its own preparation is done (until then its items are
    classified again, to no harm: a verdict is used only for the content it was computed
    on). Storage checks again and classifies anything this missed.
    """
    items = pulled.page.items
    external_ids = list(dict.fromkeys(storable(item.external_id) for item in items))
    with factory() as session:
        stored = item_repository.content_hashes(session, source_id, external_ids)
        rules = current_rules(session)
    if in_flight is not None and in_flight.parts.done():
        for part in in_flight.parts.result():
            for external_id, values in part.fields.items():
                stored[external_id] = values["content_hash"]
    wanted = set(external_ids)
    stored = {e: digest for e, digest in stored.items() if e in wanted}
    share = max(1, -(-len(items) // classifier.workers))
    parts = [
        _Part(list(items[start : start + share]), privacy, stored, source_name, rules)
        for start in range(0, len(items), share)
    ]
    started = time.perf_counter()
    pending = classifier.submit_parts(_prepare_and_classify, parts, size=len(items))
    return _Ahead(pulled, pending, started)


def _commit(
    factory: sessionmaker[Session],
    source_id: int,
    run_id: int,
    ahead: _Ahead,
    classifier: Classifier,
    on_page: Callable[[RunSummary], None] | None,
) -> None:
    parts = ahead.parts.result()
    prepared = PreparedPage({}, records=len(ahead.pulled.page.items))
    for part in parts:  # in page order: the last record of an id wins, as in ``prepare``
        prepared.fields.update(part.fields)
        for external_id, verdict in zip(part.classified, part.verdicts, strict=True):
            prepared.verdicts[(external_id, part.fields[external_id]["content_hash"])] = verdict
    if any(part.classified for part in parts):
        metrics.CLASSIFICATION_SECONDS.observe(time.perf_counter() - ahead.submitted)
    ahead.pulled.prepared = prepared
    summary = _commit_page(factory, source_id, run_id, ahead.pulled, classifier)
    if on_page is not None:
        on_page(summary)


def _commit_page(
    factory: sessionmaker[Session],
    source_id: int,
    run_id: int,
    pulled: _Pulled,
    classifier: Classifier,
) -> RunSummary:
    page = pulled.page
    with unit_of_work(factory) as session:
        state = repository.state_for_update(session, source_id)
        # The page's items after the privacy policy exist only as ``prepared``'s fields.
        assert pulled.prepared is not None
        counts = store_page(session, source_id, (), classifier, prepared=pulled.prepared)
        for reject, payload in zip(page.rejects, pulled.payloads, strict=True):
            session.add(
                QuarantinedRecord(
                    source_id=source_id,
                    run_id=run_id,
                    external_id=reject.external_id,
                    location=reject.location,
                    reason=reject.reason,
                    payload=payload,
                )
            )
        if page.next_cursor is not None:
            state.cursor = page.next_cursor
        state.updated_at = utcnow()
        run = session.get_one(SyncRun, run_id)
        run.pages += 1
        run.pulled += counts.pulled + len(page.rejects)
        run.new += counts.new
        run.updated += counts.updated
        run.quarantined += len(page.rejects)
        source = session.get_one(Source, source_id)
        summary = _summary(run, source.name)
    # Counted once the page is committed: a rolled-back page was not stored.
    metrics.ITEMS_PULLED.labels(summary.source).inc(counts.pulled + len(page.rejects))
    metrics.ITEMS_STORED.labels(summary.source, "new").inc(counts.new)
    metrics.ITEMS_STORED.labels(summary.source, "updated").inc(counts.updated)
    metrics.ITEMS_QUARANTINED.labels(summary.source).inc(len(page.rejects))
    return summary


def _summary(run: SyncRun, source_name: str) -> RunSummary:
    return RunSummary(
        run_id=run.id,
        source=source_name,
        status=run.status,
        pages=run.pages,
        pulled=run.pulled,
        new=run.new,
        updated=run.updated,
        quarantined=run.quarantined,
        error=run.error,
    )

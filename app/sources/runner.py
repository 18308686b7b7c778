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

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.db import unit_of_work, utcnow
from app.errors import Conflict
from app.items.service import store_page
from app.learning.service import Classifier
from app.ops import locks, metrics
from app.ops.backoff import Backoff
from app.ops.privacy import Privacy
from app.sources import repository
from app.sources.models import QuarantinedRecord, Source, SyncRun
from app.sources.service import get
from connectors import registry
from connectors.base import Connector, Page
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
    seen: set[str] = set()
    pages = 0
    waited = 0.0
    if connector_error is not None:
        status, error = _failure(connector_error)
    while connector_error is None:
        with unit_of_work(factory) as session:
            cursor = repository.cursor_of(session, source_id)
            current = cursor.cursor if cursor is not None else None
        try:
            page = connector.pull(current)
        except RateLimited as exc:
            if waited + exc.retry_after <= max_wait:
                log.info("source %s rate limited; waiting %.1fs", source_name, exc.retry_after)
                sleep(exc.retry_after)
                waited += exc.retry_after
                continue
            status, error = "rate_limited", f"{exc} (retry after {exc.retry_after:.0f}s)"
            retry_after = exc.retry_after
            break
        except ConnectorError as exc:
            status, error = _failure(exc)
            break
        key = _cursor_key(page.next_cursor)
        if page.has_more and (key == _cursor_key(current) or key in seen):
            status, error = "failed", f"connector returned a repeated cursor {key[:200]}"
            break
        seen.add(key)
        summary = _commit_page(factory, source_id, run_id, page, classifier, privacy)
        pages += 1
        if on_page is not None:
            on_page(summary)
        if not page.has_more or (max_pages is not None and pages >= max_pages):
            break

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


def _commit_page(
    factory: sessionmaker[Session],
    source_id: int,
    run_id: int,
    page: Page,
    classifier: Classifier,
    privacy: Privacy,
) -> RunSummary:
    with unit_of_work(factory) as session:
        state = repository.state_for_update(session, source_id)
        items = [privacy.item(item) for item in page.items]
        counts = store_page(session, source_id, items, classifier)
        for reject in page.rejects:
            session.add(
                QuarantinedRecord(
                    source_id=source_id,
                    run_id=run_id,
                    external_id=reject.external_id,
                    location=reject.location,
                    reason=reject.reason,
                    payload=privacy.payload(reject.payload),
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

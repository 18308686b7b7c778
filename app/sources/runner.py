"""The sync runner: pulls a source page by page and stores what it gets.

Guarantees (DESIGN.md, "Connector" contract):

* each page's items, quarantined records, run counters and the new cursor are committed
  in ONE transaction — a crash between pages loses nothing and repeats nothing that
  storage would not dedupe;
* a cursor that does not move while the connector says there is more is refused
  (an upstream loop must not become an infinite sync);
* ``RateLimited`` is honoured: a short wait is slept, a long one ends the run as
  ``rate_limited`` with the cursor kept, so the next scheduled run resumes;
* every run is recorded with its counters, status and error.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app.db import unit_of_work, utcnow
from app.items.service import store_page
from app.learning.service import Classifier
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
) -> RunSummary:
    """Sync one source until it has nothing more (or ``max_pages``)."""
    with unit_of_work(factory) as session:
        source = get(session, source_name)
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
            break
        except ConnectorError as exc:
            status, error = _failure(exc)
            break
        key = _cursor_key(page.next_cursor)
        if page.has_more and (key == _cursor_key(current) or key in seen):
            status, error = "failed", f"connector returned a repeated cursor {key[:200]}"
            break
        seen.add(key)
        summary = _commit_page(factory, source_id, run_id, page, classifier)
        pages += 1
        if on_page is not None:
            on_page(summary)
        if not page.has_more or (max_pages is not None and pages >= max_pages):
            break

    with unit_of_work(factory) as session:
        run = session.get_one(SyncRun, run_id)
        run.status, run.error, run.finished_at = status, error, utcnow()
        source = session.get_one(Source, source_id)
        if status == "auth_failed":
            source.status, source.status_reason = "paused", error
        elif status in ("failed",):
            source.status, source.status_reason = "degraded", error
        else:
            source.status, source.status_reason = "ok", None
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


def _failure(exc: ConnectorError) -> tuple[str, str]:
    if isinstance(exc, AuthFailed):
        return "auth_failed", str(exc)
    return "failed", f"{type(exc).__name__}: {exc}"


def _commit_page(
    factory: sessionmaker[Session], source_id: int, run_id: int, page: Page, classifier: Classifier
) -> RunSummary:
    with unit_of_work(factory) as session:
        state = repository.state_for_update(session, source_id)
        counts = store_page(session, source_id, page.items, classifier)
        for reject in page.rejects:
            session.add(
                QuarantinedRecord(
                    source_id=source_id,
                    run_id=run_id,
                    external_id=reject.external_id,
                    location=reject.location,
                    reason=reject.reason,
                    payload=reject.payload,
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
        return _summary(run, source.name)


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

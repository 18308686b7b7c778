"""Job bodies run by the scheduler. Each owns its transactions and never raises into it.

Every periodic job runs under a named lock (``app.ops.locks``), so with several workers
on one PostgreSQL database each job still runs once at a time across all of them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.db import unit_of_work, utcnow
from app.learning.service import Classifier
from app.ops import locks, metrics
from app.ops.backoff import Backoff
from app.ops.privacy import Privacy
from app.ops.retention import apply_retention
from app.queues.service import expire_leases as expire_queue_leases
from app.sources import repository
from app.sources.runner import RunSummary, SourceBusy, run_sync

log = logging.getLogger(__name__)


def sync_source(
    factory: sessionmaker[Session],
    name: str,
    classifier: Classifier,
    privacy: Privacy | None = None,
    backoff: Backoff | None = None,
) -> RunSummary | None:
    """A scheduled sync: skipped while the source is paused, disabled or backing off."""
    with factory() as session:
        source = repository.by_name(session, name)
        if source is None or not source.enabled or source.status == "paused":
            metrics.JOB_RUNS.labels("sync", "not_due").inc()
            return None
        waiting_until = source.next_attempt_at
    if waiting_until is not None and waiting_until > utcnow():
        log.debug("sync %s backing off until %s", name, waiting_until.isoformat())
        metrics.JOB_RUNS.labels("sync", "backing_off").inc()
        return None
    try:
        summary = run_sync(factory, name, classifier, privacy=privacy, backoff=backoff)
    except SourceBusy:
        metrics.JOB_RUNS.labels("sync", "skipped").inc()
        return None  # the runner logged and counted it
    except Exception:
        # The scheduler thread must survive a failing job; the traceback goes to the log.
        log.exception("sync of source %s failed", name)
        metrics.JOB_RUNS.labels("sync", "error").inc()
        return None
    metrics.JOB_RUNS.labels("sync", "ran").inc()
    return summary


def exclusive_job(factory: sessionmaker[Session], job: str, body: Callable[[], Any]) -> bool:
    """Run ``body`` if no other process runs ``job`` now; True if it ran without error."""
    engine: Engine = factory.kw["bind"]
    try:
        with locks.exclusive(engine, f"andon.job:{job}") as held:
            if not held:
                log.info("job %s skipped: another worker is running it", job)
                metrics.JOB_RUNS.labels(job, "skipped").inc()
                return False
            body()
    except Exception:
        log.exception("job %s failed", job)
        metrics.JOB_RUNS.labels(job, "error").inc()
        return False
    metrics.JOB_RUNS.labels(job, "ran").inc()
    return True


def retention(factory: sessionmaker[Session]) -> bool:
    return exclusive_job(factory, "retention", lambda: apply_retention(factory, utcnow()))


def expire_leases(factory: sessionmaker[Session]) -> bool:
    """Claims whose lease ran out go back to open (one transaction)."""

    def body() -> None:
        with unit_of_work(factory) as session:
            count = expire_queue_leases(session, utcnow())
        if count:
            log.info("lease expiry: %d claim(s) returned to their queues", count)

    return exclusive_job(factory, "lease-expiry", body)


def retrain(
    factory: sessionmaker[Session], classifier: Classifier, model_dir: Path, threshold: float
) -> bool:
    """The scheduled learning loop: the same champion/challenger path as `andon train`.

    Only one process trains at a time; a promoted challenger is swapped into this process's
    classifier (other processes load it at their next start).
    """
    from app.learning.service import train_and_challenge
    from classifiers.artifacts import ModelStore

    def body() -> None:
        with unit_of_work(factory) as session:
            train_and_challenge(
                ModelStore(model_dir),
                threshold=threshold,
                session=session,
                trigger="schedule",
                classifier=classifier,
            )

    return exclusive_job(factory, "learning:retrain", body)

"""The embedded scheduler (APScheduler 3.x): one sync job per enabled source with a schedule.

Jobs never overlap themselves (``max_instances=1``) and missed runs coalesce into one.
Job bodies live in ``app.jobs`` and own their commits.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.orm import Session, sessionmaker

from app import jobs
from app.learning.service import Classifier
from app.sources import repository

log = logging.getLogger(__name__)


def sync_job_id(name: str) -> str:
    return f"sync:{name}"


def build_scheduler(factory: sessionmaker[Session], classifier: Classifier) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(
        timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300}
    )
    with factory() as session:
        sources = [
            (s.name, s.interval_seconds) for s in repository.all_sources(session) if s.enabled
        ]
    for name, interval in sources:
        if interval:
            scheduler.add_job(
                jobs.sync_source,
                "interval",
                seconds=interval,
                args=[factory, name, classifier],
                id=sync_job_id(name),
                next_run_time=datetime.now(UTC),
            )
            log.info("scheduled source %s every %ss", name, interval)
    return scheduler

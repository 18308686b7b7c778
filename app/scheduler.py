"""The scheduler (APScheduler 3.x): one sync job per enabled source, plus the periodic jobs.

* A source is scheduled by ``cron`` (crontab, UTC) when set, else every
  ``interval_seconds``; a source with neither, disabled or paused has no job.
* Schedules follow the database: ``reconcile`` re-reads the sources every
  ``ANDON_SCHEDULER_REFRESH_SECONDS`` and adds, reschedules or removes jobs, so a change
  made through any API replica applies without a restart. In the embedded layout the API
  also calls ``reconcile`` right after a change (``after_source_change``).
* Jobs never overlap themselves in a process (``max_instances=1``) and missed runs
  coalesce into one; across processes the runner's per-source lock makes a second
  runner skip.
* Periodic jobs: retention, lease expiry, the signal's jobs (``signal_jobs``). Add a
  periodic job to ``periodic_jobs``; its body goes in ``app.jobs`` under
  ``exclusive_job`` so it runs once at a time across workers.

Job bodies live in ``app.jobs`` and own their commits.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from app import jobs
from app.config import Settings
from app.learning.service import Classifier
from app.ops.backoff import Backoff
from app.ops.privacy import Privacy
from app.sources import repository
from app.sources.models import Source

log = logging.getLogger(__name__)

SYNC_PREFIX = "sync:"
JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 300}


def sync_job_id(name: str) -> str:
    return f"{SYNC_PREFIX}{name}"


def cron_trigger(expression: str) -> CronTrigger:
    """A crontab expression (5 fields, UTC); ValueError if it is not one."""
    return CronTrigger.from_crontab(expression, timezone=UTC)


Schedule = tuple[str, str]


def schedule_of(source: Source) -> Schedule | None:
    """What the source's job should be, or None for no job."""
    if not source.enabled or source.status == "paused":
        return None
    if source.cron:
        return ("cron", source.cron)
    if source.interval_seconds:
        return ("interval", str(source.interval_seconds))
    return None


def trigger_for(schedule: Schedule) -> BaseTrigger:
    kind, value = schedule
    if kind == "cron":
        return cron_trigger(value)
    return IntervalTrigger(seconds=int(value), timezone=UTC)


@dataclass(frozen=True, slots=True)
class PeriodicJob:
    id: str
    seconds: float
    body: Callable[[], Any]


class SourceScheduler:
    """A BackgroundScheduler whose sync jobs follow the sources in the database."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        classifier: Classifier,
        settings: Settings | None = None,
    ) -> None:
        self.factory = factory
        self.classifier = classifier
        self.settings = settings or Settings()
        self.privacy = Privacy(redact=self.settings.redact, raw_payload=self.settings.raw_payload)
        self.backoff = Backoff(
            base_seconds=self.settings.backoff_base_seconds,
            max_seconds=self.settings.backoff_max_seconds,
        )
        self.scheduler = BackgroundScheduler(timezone=UTC, job_defaults=JOB_DEFAULTS)
        self._schedules: dict[str, Schedule] = {}
        self._reconciling = threading.Lock()

    def periodic_jobs(self) -> list[PeriodicJob]:
        factory, config = self.factory, self.settings
        periodic = [
            PeriodicJob("ops:reconcile", config.scheduler_refresh_seconds, self.reconcile),
            PeriodicJob(
                "ops:retention", config.retention_interval_seconds, lambda: jobs.retention(factory)
            ),
        ]
        periodic.append(
            PeriodicJob(
                "queues:lease-expiry",
                config.lease_expiry_interval_seconds,
                lambda: jobs.expire_leases(factory),
            )
        )
        periodic += signal_jobs(factory, config)
        if config.retrain_interval_seconds > 0:
            classifier = self.classifier
            periodic.append(
                PeriodicJob(
                    "learning:retrain",
                    config.retrain_interval_seconds,
                    lambda: jobs.retrain(
                        factory, classifier, config.model_dir, config.triage_threshold
                    ),
                )
            )
        return periodic

    def start(self, *, paused: bool = False) -> None:
        for job in self.periodic_jobs():
            self.scheduler.add_job(
                job.body, IntervalTrigger(seconds=job.seconds, timezone=UTC), id=job.id
            )
        self.reconcile()
        self.scheduler.start(paused=paused)

    def shutdown(self, wait: bool = True) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=wait)

    def reconcile(self) -> None:
        """Make the sync jobs match the sources' schedules in the database."""
        with self._reconciling:
            try:
                with self.factory() as session:
                    wanted = {s.name: schedule_of(s) for s in repository.all_sources(session)}
            except Exception:
                log.exception("could not read the source schedules; keeping the current jobs")
                return
            for name in list(self._schedules):
                if wanted.get(name) is None:
                    self.scheduler.remove_job(sync_job_id(name))
                    del self._schedules[name]
                    log.info("unscheduled source %s", name)
            for name, schedule in wanted.items():
                if schedule is None or self._schedules.get(name) == schedule:
                    continue
                try:
                    trigger = trigger_for(schedule)
                except ValueError as exc:
                    log.error("source %s has an invalid schedule %s: %s", name, schedule, exc)
                    continue
                if name in self._schedules:
                    self.scheduler.reschedule_job(sync_job_id(name), trigger=trigger)
                    log.info("rescheduled source %s: %s %s", name, *schedule)
                else:
                    first: dict[str, Any] = (
                        {"next_run_time": datetime.now(UTC)} if schedule[0] == "interval" else {}
                    )
                    self.scheduler.add_job(
                        jobs.sync_source,
                        trigger,
                        args=[self.factory, name, self.classifier, self.privacy, self.backoff],
                        id=sync_job_id(name),
                        **first,
                    )
                    log.info("scheduled source %s: %s %s", name, *schedule)
                self._schedules[name] = schedule

    def sync_jobs(self) -> dict[str, BaseTrigger]:
        """The scheduled sources and their triggers."""
        return {
            job.id.removeprefix(SYNC_PREFIX): job.trigger
            for job in self.scheduler.get_jobs()
            if job.id.startswith(SYNC_PREFIX)
        }


def signal_jobs(factory: sessionmaker[Session], config: Settings) -> list[PeriodicJob]:
    """Issue 8: spikes every 5 minutes (the latest complete hour), themes re-fitted hourly."""
    from app.signal import jobs as signal

    return [
        PeriodicJob(
            "signal:spikes",
            300,
            lambda: jobs.exclusive_job(
                factory, "signal-spikes", lambda: signal.detect_spikes(factory, config)
            ),
        ),
        PeriodicJob(
            "signal:themes",
            3600,
            lambda: jobs.exclusive_job(
                factory, "signal-themes", lambda: signal.fit_themes(factory)
            ),
        ),
    ]


def build_scheduler(
    factory: sessionmaker[Session], classifier: Classifier, settings: Settings | None = None
) -> SourceScheduler:
    return SourceScheduler(factory, classifier, settings)


def after_source_change(app: FastAPI) -> None:
    """Apply a source change to this process's scheduler now (the poll would, later)."""
    scheduler: SourceScheduler | None = getattr(app.state, "scheduler", None)
    if scheduler is not None:
        scheduler.reconcile()

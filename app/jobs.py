"""Job bodies run by the scheduler. Each owns its transactions and never raises into it."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session, sessionmaker

from app.learning.service import Classifier
from app.sources.runner import RunSummary, run_sync

log = logging.getLogger(__name__)


def sync_source(
    factory: sessionmaker[Session], name: str, classifier: Classifier
) -> RunSummary | None:
    try:
        return run_sync(factory, name, classifier)
    except Exception:
        # The scheduler thread must survive a failing job; the traceback goes to the log
        # and the run row (if it was created) stays "running" until the next run marks it
        # interrupted.
        log.exception("sync of source %s failed", name)
        return None

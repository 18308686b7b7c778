"""Signal job bodies (scheduler and CLI): spike detection and theme re-fitting.

Each owns its transactions. The webhook is called after the spikes are committed, so a
slow receiver never holds a database transaction, and its outcome is recorded.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.db import unit_of_work, utcnow
from app.signal import spikes, themes
from app.signal.models import Spike
from app.signal.webhook import WebhookFailed, deliver

log = logging.getLogger(__name__)


def spike_payload(spike: Spike) -> dict[str, Any]:
    return {
        "event": "spike.raised",
        "spike": {
            "id": spike.id,
            "scope": spike.scope,
            "key": spike.key,
            "metric": spike.metric,
            "bucket_start": spike.bucket_start.isoformat(),
            "value": spike.value,
            "baseline": spike.baseline,
            "score": spike.score,
            "count": spike.count,
            "exemplar_item_ids": list(spike.exemplars.get("item_ids", [])),
        },
    }


def detect_spikes(
    factory: sessionmaker[Session],
    settings: Settings,
    *,
    now: datetime | None = None,
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
    env: dict[str, str] | None = None,
) -> list[int]:
    """Raise spikes for the latest complete hour; notify the webhook. The new spike ids."""
    with unit_of_work(factory) as session:
        raised = spikes.detect(session, settings, now or utcnow())
        payloads = [(spike.id, spike_payload(spike)) for spike in raised]
    for spike_id, _ in payloads:
        log.warning("andon: spike %s raised", spike_id)
    if settings.spike_webhook_url and payloads:
        secret = (env if env is not None else dict(os.environ)).get(
            settings.spike_webhook_secret_env, ""
        )
        own = client is None
        http = client or httpx.Client(timeout=10.0)
        try:
            for spike_id, payload in payloads:
                error: str | None = None
                try:
                    deliver(
                        settings.spike_webhook_url,
                        payload,
                        secret.encode(),
                        client=http,
                        sleep=sleep,
                    )
                except WebhookFailed as exc:
                    error = str(exc)
                    log.error("spike %s webhook failed: %s", spike_id, exc)
                with unit_of_work(factory) as session:
                    spike = session.get_one(Spike, spike_id)
                    spike.notified_at = None if error else utcnow()
                    spike.notify_error = error
        finally:
            if own:
                http.close()
    return [spike_id for spike_id, _ in payloads]


def fit_themes(factory: sessionmaker[Session], *, now: datetime | None = None) -> dict[str, int]:
    with unit_of_work(factory) as session:
        return themes.fit_all(session, now or utcnow())

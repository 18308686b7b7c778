"""Prometheus metrics.

Counters and histograms measured in this process live in the default registry; the
gauges that describe shared state (queue depth, oldest open item, source status) are
read from the database at scrape time, so every replica reports the same truth.
``andon worker`` serves its own ``/metrics`` (``--metrics-port``): its syncs are counted
there, the API replicas count HTTP requests and claims.
"""

from __future__ import annotations

from datetime import datetime

from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, Counter, Histogram, generate_latest
from prometheus_client.core import CollectorRegistry, GaugeMetricFamily
from sqlalchemy.orm import Session

from app.db import as_utc
from app.ops import repository

# The classic text format (0.0.4): what every Prometheus version scrapes.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

ITEMS_PULLED = Counter(
    "andon_items_pulled", "Records pulled from a source (stored or quarantined)", ["source"]
)
ITEMS_STORED = Counter(
    "andon_items_stored", "Items stored, by outcome (new or updated)", ["source", "outcome"]
)
ITEMS_QUARANTINED = Counter(
    "andon_items_quarantined", "Records that could not be normalised", ["source"]
)
SYNC_RUNS = Counter(
    "andon_sync_runs",
    "Sync runs by final status (skipped: another runner held it)",
    ["source", "status"],
)
SYNC_DURATION = Histogram(
    "andon_sync_duration_seconds",
    "Wall time of a sync run",
    ["source"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
)
CLASSIFICATION_SECONDS = Histogram(
    "andon_classification_batch_seconds",
    "Latency of one classification batch (sentiment and routing)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
CLASSIFIED_ITEMS = Counter("andon_classified_items", "Items classified")
CLAIMS = Counter("andon_claims", "Queue entries claimed by an agent", ["queue"])
HTTP_DURATION = Histogram(
    "andon_http_request_duration_seconds",
    "HTTP request latency by route template",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
JOB_RUNS = Counter("andon_job_runs", "Scheduled job runs by outcome", ["job", "outcome"])


def record_claim(queue: str) -> None:
    """Call when an agent's claim commits (issue 7's claim path)."""
    CLAIMS.labels(queue).inc()


def state_registry(session: Session, now: datetime) -> CollectorRegistry:
    """Gauges read from the database: the same on every replica."""
    registry = CollectorRegistry(auto_describe=False)
    entries = GaugeMetricFamily(
        "andon_queue_entries", "Queue entries by queue and state", labels=["queue", "state"]
    )
    oldest = GaugeMetricFamily(
        "andon_queue_oldest_open_age_seconds",
        "Age of the oldest open entry in each queue",
        labels=["queue"],
    )
    for queue, state, count, first in repository.queue_depth(session):
        entries.add_metric([queue, state], count)
        if state == "open" and first is not None:
            oldest.add_metric([queue], max(0.0, (now - as_utc(first)).total_seconds()))
    status = GaugeMetricFamily(
        "andon_source_status", "1 for the status each source is in", labels=["source", "status"]
    )
    failures = GaugeMetricFamily(
        "andon_source_consecutive_failures", "Failed runs in a row", labels=["source"]
    )
    for name, state, failed in repository.source_health(session):
        for candidate in ("ok", "degraded", "paused"):
            status.add_metric([name, candidate], 1.0 if state == candidate else 0.0)
        failures.add_metric([name], failed)
    for family in (entries, oldest, status, failures):
        registry.register(_Fixed(family))
    return registry


class _Fixed:
    def __init__(self, family: GaugeMetricFamily) -> None:
        self.family = family

    def collect(self) -> list[GaugeMetricFamily]:
        return [self.family]


def exposition(session: Session | None, now: datetime) -> bytes:
    """The text exposition format: process metrics, then database gauges if a session."""
    body = generate_latest()
    if session is not None:
        body += generate_latest(state_registry(session, now))
    return body

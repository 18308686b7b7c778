"""Spike detection, the andon: an hour far above its own baseline.

For every queue (and every theme), the latest complete hour is compared with the same
series over the previous ``ANDON_SPIKE_BASELINE_DAYS`` (14) days, hour by hour, hours
without items counting as zero:

* **volume** — robust z-score ``(x - median) / scale`` with ``scale = max(1.4826 × MAD,
  √max(median, 1))``: the MAD for a noisy series, the Poisson noise of a count as a floor,
  so a flat or sparse series (MAD = 0) does not turn one extra item into a spike;
* **negative share** — the share of negative items against the shares of baseline hours
  that had at least ``ANDON_SPIKE_MIN_COUNT`` items (24 such hours needed), with
  ``scale = max(1.4826 × MAD, 0.05)``.

A spike is raised when the score reaches ``ANDON_SPIKE_THRESHOLD`` (4.0) and the hour has
at least ``ANDON_SPIKE_MIN_COUNT`` (5) items. While a spike on the same queue/theme and
metric is open or acknowledged, later hours extend it instead of raising another. The
volume reads the hourly rollups; theme series count the theme's members.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from app.config import Settings
from app.errors import Conflict, NotFound
from app.signal import repository
from app.signal.models import Spike
from app.signal.service import hour_of

MAD_SCALE = 1.4826
SHARE_FLOOR = 0.05
MIN_SHARE_HOURS = 24


@dataclass(frozen=True, slots=True)
class Score:
    value: float
    baseline: float
    scale: float
    score: float


def volume_score(history: Sequence[float], value: float) -> Score:
    median = statistics.median(history) if history else 0.0
    mad = statistics.median(abs(x - median) for x in history) if history else 0.0
    scale = max(MAD_SCALE * mad, max(median, 1.0) ** 0.5)
    return Score(value, median, scale, (value - median) / scale)


def share_score(history: Sequence[float], value: float) -> Score | None:
    if len(history) < MIN_SHARE_HOURS:
        return None
    median = statistics.median(history)
    mad = statistics.median(abs(x - median) for x in history)
    scale = max(MAD_SCALE * mad, SHARE_FLOOR)
    return Score(value, median, scale, (value - median) / scale)


def detect(session: Session, settings: Settings, now: datetime) -> list[Spike]:
    """Check the latest complete hour before ``now``; the spikes raised (new ones only)."""
    hour = hour_of(now) - timedelta(hours=1)
    start = hour - timedelta(days=settings.spike_baseline_days)
    hours = int((hour - start) / timedelta(hours=1))
    counts: dict[str, dict[datetime, tuple[int, int]]] = defaultdict(dict)
    for moment, queue, count, negative in repository.hourly_queue_series(
        session, start=start, end=hour + timedelta(hours=1)
    ):
        counts[queue][moment] = (count, negative)
    themes: dict[tuple[int, str, str], dict[datetime, tuple[int, int]]] = defaultdict(dict)
    for theme_id, queue, label, created_at, sentiment in repository.theme_items(
        session, start=start, end=hour + timedelta(hours=1)
    ):
        bucket = themes[(theme_id, queue, label)]
        count, negative = bucket.get(hour_of(created_at), (0, 0))
        bucket[hour_of(created_at)] = (count + 1, negative + (sentiment == "negative"))
    raised: list[Spike] = []
    for queue, series in sorted(counts.items()):
        raised += _check(session, settings, "queue", queue, queue, None, series, hour, hours)
    for (theme_id, queue, label), series in sorted(themes.items()):
        key = f"{queue}/{label}"[:120]
        raised += _check(session, settings, "theme", key, queue, theme_id, series, hour, hours)
    session.flush()
    return raised


def _check(
    session: Session,
    settings: Settings,
    scope: str,
    key: str,
    queue: str,
    theme_id: int | None,
    series: dict[datetime, tuple[int, int]],
    hour: datetime,
    hours: int,
) -> list[Spike]:
    count, negative = series.get(hour, (0, 0))
    if count < settings.spike_min_count:
        return []
    history = [hour - timedelta(hours=n) for n in range(hours, 0, -1)]
    volumes = [float(series.get(moment, (0, 0))[0]) for moment in history]
    shares = [
        series[moment][1] / series[moment][0]
        for moment in history
        if moment in series and series[moment][0] >= settings.spike_min_count
    ]
    scores = {"volume": volume_score(volumes, float(count))}
    share = share_score(shares, negative / count)
    if share is not None:
        scores["negative_share"] = share
    raised = []
    for metric, score in scores.items():
        if score.score < settings.spike_threshold:
            continue
        spike = repository.open_spike(session, scope, key, metric)
        if spike is not None:
            if hour > spike.last_bucket_start:
                spike.last_bucket_start = hour
                spike.count += count
                if score.score > spike.score:
                    spike.value, spike.score = score.value, round(score.score, 3)
            continue
        exemplars = repository.exemplar_items(
            session,
            start=hour,
            end=hour + timedelta(hours=1),
            queue=queue,
            item_ids=_theme_members(session, theme_id),
        )
        spike = Spike(
            scope=scope,
            key=key,
            metric=metric,
            bucket_start=hour,
            last_bucket_start=hour,
            value=round(score.value, 4),
            baseline=round(score.baseline, 4),
            scale=round(score.scale, 4),
            score=round(score.score, 3),
            count=count,
            exemplars={"item_ids": exemplars},
        )
        session.add(spike)
        raised.append(spike)
    return raised


def _theme_members(session: Session, theme_id: int | None) -> list[int] | None:
    if theme_id is None:
        return None
    return [row[1] for row in repository.theme_member_rows(session, [theme_id])]


def get(session: Session, spike_id: int) -> Spike:
    spike = session.get(Spike, spike_id)
    if spike is None:
        raise NotFound(f"no spike {spike_id}")
    return spike


def acknowledge(session: Session, spike_id: int, by: str | None, now: datetime) -> Spike:
    spike = get(session, spike_id)
    if spike.state != "open":
        raise Conflict(f"spike {spike_id} is {spike.state}, not open")
    spike.state, spike.acknowledged_at, spike.acknowledged_by = "acknowledged", now, by
    session.flush()
    return spike


def close(session: Session, spike_id: int, cause: str, now: datetime) -> Spike:
    spike = get(session, spike_id)
    if spike.state == "closed":
        raise Conflict(f"spike {spike_id} is already closed")
    spike.state, spike.closed_at, spike.cause = "closed", now, cause
    session.flush()
    return spike

"""The demand signal: rollups per hour × queue × channel, kept current as items move.

Every change to what an item contributes (stored, classified, re-routed, re-classified,
votes changed, linked to a customer, grouped as a duplicate) is applied as a delta: the
old contribution is subtracted and the new one added, so the rollups always equal a
from-scratch count (``recompute``) without recomputing it.

Weighted demand of one item (weights are settings, defaults in brackets)::

    1 + votes × ANDON_DEMAND_VOTE_WEIGHT [1.0]
      + likes × ANDON_DEMAND_LIKE_WEIGHT [0.2] + reposts × ANDON_DEMAND_REPOST_WEIGHT [0.2]
      + ANDON_DEMAND_REACH_WEIGHT [1.0] × log10(followers / ANDON_DEMAND_REACH_FLOOR [1000])

An idea with 40 votes is demand from 41 customers; likes and reposts are a weaker "me
too"; reach adds one "me too" per tenfold of followers above the floor (an account with
10 000 followers adds 1, with a million adds 3; ordinary accounts add nothing). A member
of a dedupe group that is not the group's first item adds no demand: the customer's
demand is counted once (it still counts as an item).

The same counters are kept per hour, day and week in ``signal_bucket`` (channel ``*`` for
"every channel"), which is all ``GET /signal`` reads: a month by day is 30 rows a queue.
Distinct authors do not add up across buckets (the same customer writing at 9 and at 10
is one author that day), so ``signal_author`` holds one row per granularity × bucket ×
queue × channel × author and ``signal_bucket.authors`` moves by one exactly when such a
row appears or disappears: exact counts, not a sketch. Only a filter on two or more
channels grouped by queue falls back to a ``COUNT(DISTINCT)`` over the author rows. The
author is the linked customer identity (app/identity), or the channel account, or — when
a source gives no author — the item.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Literal, Protocol

from sqlalchemy.orm import Session

from app.config import Settings, get_settings
from app.db import utcnow
from app.items.models import Classification
from app.queues.models import QueueEntry
from app.signal import repository

Bucket = Literal["hour", "day", "week"]
GRANULARITIES: Mapping[str, Bucket] = {"h": "hour", "d": "day", "w": "week"}
GRANULARITY_OF: Mapping[Bucket, str] = {"hour": "h", "day": "d", "week": "w"}
ANY_CHANNEL = "*"
SENTIMENTS = ("negative", "neutral", "positive")


@dataclass(frozen=True, slots=True)
class DemandWeights:
    votes: float = 1.0
    likes: float = 0.2
    reposts: float = 0.2
    reach: float = 1.0
    reach_floor: int = 1000

    @classmethod
    def from_settings(cls, settings: Settings) -> DemandWeights:
        return cls(
            votes=settings.demand_vote_weight,
            likes=settings.demand_like_weight,
            reposts=settings.demand_repost_weight,
            reach=settings.demand_reach_weight,
            reach_floor=settings.demand_reach_floor,
        )


def current_weights() -> DemandWeights:
    return DemandWeights.from_settings(get_settings())


@dataclass(frozen=True, slots=True)
class Contribution:
    bucket_start: datetime
    queue: str
    channel: str
    sentiment: str
    compound: float
    demand: float
    author_key: str = ""
    item_id: int | None = None


def hour_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def demand_weight(
    metrics: Mapping[str, Any],
    followers: int | None = None,
    weights: DemandWeights | None = None,
) -> float:
    weights = weights or current_weights()
    weight = 1.0
    for name, factor in (
        ("votes", weights.votes),
        ("likes", weights.likes),
        ("reposts", weights.reposts),
    ):
        value = metrics.get(name)
        if isinstance(value, int | float) and value > 0:
            weight += factor * float(value)
    if followers and followers > weights.reach_floor:
        weight += weights.reach * math.log10(followers / weights.reach_floor)
    return round(weight, 4)


class Contributor(Protocol):
    """What the signal reads of an item: an ``Item``, or a row the ingest just inserted."""

    @property
    def id(self) -> int: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def channel(self) -> str: ...
    @property
    def metrics(self) -> Mapping[str, Any]: ...
    @property
    def author_followers(self) -> int | None: ...
    @property
    def author_id(self) -> str | None: ...
    @property
    def author_handle(self) -> str | None: ...
    @property
    def author_email(self) -> str | None: ...
    @property
    def identity_id(self) -> int | None: ...
    @property
    def dedupe_group_id(self) -> int | None: ...


def author_key(item: Contributor) -> str:
    """The author counted in "distinct authors": the customer, else the account, else the item."""
    if item.identity_id is not None:
        return f"id:{item.identity_id}"
    account = item.author_id or item.author_handle or item.author_email
    if account:
        return f"{item.channel}:{account}"[:80]
    return f"item:{item.id}"


def is_duplicate(item: Contributor) -> bool:
    """A dedupe-group member other than the group's first item."""
    return item.dedupe_group_id is not None and item.dedupe_group_id != item.id


def contribution_of(
    item: Contributor,
    entry: QueueEntry | None,
    verdict: Classification | None,
    weights: DemandWeights | None = None,
) -> Contribution | None:
    """What an item adds to the demand signal, or None while it is not routed."""
    if entry is None or verdict is None:
        return None
    return contribution_from(item, entry.queue, verdict.sentiment, verdict.compound, weights)


def contribution_from(
    item: Contributor,
    queue: str,
    sentiment: str,
    compound: float,
    weights: DemandWeights | None = None,
) -> Contribution:
    """What an item routed to ``queue`` with this sentiment adds to the demand signal."""
    demand = (
        0.0 if is_duplicate(item) else demand_weight(item.metrics, item.author_followers, weights)
    )
    return Contribution(
        bucket_start=hour_of(item.created_at),
        queue=queue,
        channel=item.channel,
        sentiment=sentiment,
        compound=compound,
        demand=demand,
        author_key=author_key(item),
        item_id=item.id,
    )


def bucket_start(moment: datetime, bucket: Bucket) -> datetime:
    hour = hour_of(moment)
    if bucket == "hour":
        return hour
    day = hour.replace(hour=0)
    if bucket == "day":
        return day
    return day - timedelta(days=day.weekday())


def bucket_after(start: datetime, bucket: Bucket) -> datetime:
    """The start of the bucket after the one starting at ``start``."""
    return start + {"hour": timedelta(hours=1), "day": timedelta(days=1)}.get(
        bucket, timedelta(weeks=1)
    )


RollupKey = tuple[datetime, str, str]
BucketKey = tuple[str, datetime, str, str]
AuthorKey = tuple[str, datetime, str, str, str]


_SENTIMENT_COLUMN = {name: 1 + index for index, name in enumerate(SENTIMENTS)}


@lru_cache(maxsize=4096)
def _starts(hour: datetime) -> tuple[tuple[str, datetime], ...]:
    """The hour's bucket start at every granularity (hours repeat a lot within a page)."""
    return tuple((g, bucket_start(hour, bucket)) for g, bucket in GRANULARITIES.items())


def _counters() -> list[float]:
    return [0, 0, 0, 0, 0.0, 0.0]


class RollupDeltas:
    """Collects contribution changes within a unit of work; ``flush`` writes them.

    Besides the hourly counters (``signal_rollup``) it moves the per-granularity buckets
    (``signal_bucket``, with channel ``*`` for "every channel"), the author presence rows
    behind their distinct-author counts, and records a feed event whenever an item
    arrives in a queue.
    """

    def __init__(self) -> None:
        self._rows: dict[RollupKey, list[float]] = defaultdict(_counters)
        self._buckets: dict[BucketKey, list[float]] = defaultdict(_counters)
        # Per bucket, each author's item count delta: a page's ~6,000 author keys share a
        # few hundred buckets, and flush sorts the buckets, then each one's authors.
        self._authors: dict[BucketKey, dict[str, int]] = defaultdict(dict)
        self._arrivals: list[tuple[str, int]] = []

    def add(self, contribution: Contribution | None, sign: int = 1) -> None:
        if contribution is None:
            return
        sentiment = _SENTIMENT_COLUMN[contribution.sentiment]
        compound, demand = sign * contribution.compound, sign * contribution.demand
        queue, channel, author = contribution.queue, contribution.channel, contribution.author_key
        row = self._rows[(contribution.bucket_start, queue, channel)]
        row[0] += sign
        row[sentiment] += sign
        row[4] += compound
        row[5] += demand
        for granularity, start in _starts(contribution.bucket_start):
            for name in (channel, ANY_CHANNEL):
                key = (granularity, start, queue, name)
                row = self._buckets[key]
                row[0] += sign
                row[sentiment] += sign
                row[4] += compound
                row[5] += demand
                if author:
                    present = self._authors[key]
                    present[author] = present.get(author, 0) + sign

    def move(self, old: Contribution | None, new: Contribution | None) -> None:
        if old == new:
            return
        self.add(old, -1)
        self.add(new, +1)
        if new is not None and new.item_id is not None and (old is None or old.queue != new.queue):
            self._arrivals.append((new.queue, new.item_id))

    def flush(self, session: Session) -> None:
        rows: list[dict[str, object]] = [
            {"bucket_start": bucket, "queue": queue, "channel": channel, **_named(values)}
            for (bucket, queue, channel), values in self._rows.items()
            if any(values)
        ]
        repository.upsert_deltas(session, rows)
        authors: dict[BucketKey, int] = defaultdict(int)
        # A fixed order: no deadlocks. One upsert for all the page's author keys, in the
        # order of the (bucket, author) keys sorted as a whole.
        changed: list[tuple[AuthorKey, int]] = []
        for bucket_key in sorted(self._authors):
            present = sorted(self._authors[bucket_key].items())
            changed.extend(((*bucket_key, a), delta) for a, delta in present if delta != 0)
        counts = repository.bump_authors(session, changed)
        emptied: list[AuthorKey] = []
        for key, delta in changed:
            now = counts[key]
            before = now - delta
            if before <= 0 < now:
                authors[key[:4]] += 1
            elif now <= 0 < before:
                authors[key[:4]] -= 1
            if now <= 0:
                emptied.append(key)
        repository.delete_authors(session, emptied)
        buckets: list[dict[str, object]] = []
        for bucket_key in sorted(set(self._buckets) | set(authors)):
            values = self._buckets.get(bucket_key) or _counters()
            if any(values) or authors.get(bucket_key):
                granularity, start, queue, channel = bucket_key
                buckets.append(
                    {
                        "granularity": granularity,
                        "bucket_start": start,
                        "queue": queue,
                        "channel": channel,
                        **_named(values),
                        "authors": authors.get(bucket_key, 0),
                    }
                )
        repository.upsert_buckets(session, buckets)
        if rows or buckets:  # GET /signal's cached answers are out of date from the commit
            repository.mark_signal_changed(session)
        if self._arrivals:
            repository.add_feed_events(session, self._arrivals, utcnow())
        self._rows.clear()
        self._buckets.clear()
        self._authors.clear()
        self._arrivals.clear()

    def snapshot(self) -> SignalState:
        """The collected deltas as absolute state (used to recompute from scratch)."""
        authors = {
            key: sum(count > 0 for count in present.values())
            for key, present in self._authors.items()
        }
        return SignalState(
            rollups={key: _rounded(v) for key, v in self._rows.items() if v[0]},
            buckets={
                key: (*_rounded(v), authors.get(key, 0)) for key, v in self._buckets.items() if v[0]
            },
        )


def _named(values: Sequence[float]) -> dict[str, int | float]:
    return {
        "count": int(values[0]),
        "negative": int(values[1]),
        "neutral": int(values[2]),
        "positive": int(values[3]),
        "compound_sum": float(values[4]),
        "demand": float(values[5]),
    }


def _rounded(values: Sequence[float]) -> tuple[int, int, int, int, float, float]:
    return (
        int(values[0]),
        int(values[1]),
        int(values[2]),
        int(values[3]),
        round(values[4], 4),
        round(values[5], 4),
    )


@dataclass(slots=True)
class SignalState:
    """Rollups and buckets as plain values, to compare stored and recomputed state."""

    rollups: dict[RollupKey, tuple[int, int, int, int, float, float]]
    buckets: dict[BucketKey, tuple[int, int, int, int, float, float, int]]


def recompute(session: Session, weights: DemandWeights | None = None) -> SignalState:
    """The signal counted from scratch: items + current entries + classifications."""
    weights = weights or current_weights()
    deltas = RollupDeltas()
    for item, entry, verdict in repository.routed_items(session):
        deltas.add(contribution_of(item, entry, verdict, weights))
    return deltas.snapshot()


def stored(session: Session) -> SignalState:
    """The signal as the rollup tables hold it now."""
    rollups = {
        (row.bucket_start, row.queue, row.channel): _rounded(
            (
                row.count,
                row.negative,
                row.neutral,
                row.positive,
                row.compound_sum,
                row.demand,
            )
        )
        for row in repository.all_rollups(session)
        if row.count
    }
    buckets = {
        (row.granularity, row.bucket_start, row.queue, row.channel): (
            *_rounded(
                (
                    row.count,
                    row.negative,
                    row.neutral,
                    row.positive,
                    row.compound_sum,
                    row.demand,
                )
            ),
            row.authors,
        )
        for row in repository.all_buckets(session)
        if row.count
    }
    return SignalState(rollups=rollups, buckets=buckets)


def rebuild(session: Session, weights: DemandWeights | None = None) -> int:
    """Replace the rollups with a from-scratch count (after changing the demand weights)."""
    weights = weights or current_weights()
    repository.clear_rollups(session)
    deltas = RollupDeltas()
    count = 0
    for item, entry, verdict in repository.routed_items(session):
        deltas.add(contribution_of(item, entry, verdict, weights))
        count += 1
    deltas.flush(session)
    session.flush()
    return count


@dataclass(slots=True)
class SignalPoint:
    bucket_start: datetime
    queue: str
    channel: str | None
    count: int = 0
    negative: int = 0
    neutral: int = 0
    positive: int = 0
    compound_sum: float = 0.0
    demand: float = 0.0
    authors: int = 0

    @property
    def mean_compound(self) -> float:
        return round(self.compound_sum / self.count, 4) if self.count else 0.0


def series(
    session: Session,
    *,
    start: datetime,
    end: datetime,
    bucket: Bucket,
    queues: Sequence[str] | None = None,
    channels: Sequence[str] | None = None,
    by_channel: bool = False,
) -> list[SignalPoint]:
    """Counts, sentiment mix, demand and distinct authors per bucket × queue (× channel).

    Read from ``signal_bucket`` at the requested granularity; ``start`` and ``end`` are
    bucket boundaries, so every point is a whole bucket.
    """
    granularity = GRANULARITY_OF[bucket]
    points: dict[tuple[datetime, str, str | None], SignalPoint] = {}
    for (
        moment,
        queue,
        channel,
        count,
        negative,
        neutral,
        positive,
        compound,
        demand,
        authors,
    ) in repository.buckets(
        session,
        granularity=granularity,
        start=start,
        end=end,
        queues=queues,
        channels=channels or (None if by_channel else [ANY_CHANNEL]),
        exclude_any=True if by_channel else bool(channels),
    ):
        key = (moment, queue, channel if by_channel else None)
        point = points.get(key)
        if point is None:
            point = points[key] = SignalPoint(bucket_start=moment, queue=queue, channel=key[2])
        point.count += count
        point.negative += negative
        point.neutral += neutral
        point.positive += positive
        point.compound_sum += compound
        point.demand += demand
        point.authors += authors  # one row per point unless several channels are merged
    if channels and len(channels) > 1 and not by_channel:
        for point in points.values():  # several channels: the same author may be in each
            point.authors = 0
        for moment, queue, authors in repository.distinct_authors(
            session,
            granularity=granularity,
            start=start,
            end=end,
            queues=queues,
            channels=channels,
        ):
            merged = points.get((moment, queue, None))
            if merged is not None:
                merged.authors = authors
    return sorted(points.values(), key=lambda p: (p.bucket_start, p.queue, p.channel or ""))

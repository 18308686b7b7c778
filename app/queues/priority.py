"""Entry priority: who is served first when an agent pulls.

    priority = sentiment × s + reach × r + votes × v + channel × c + age_per_hour × hours waiting

with every signal between 0 and 1:

- s (sentiment): negative 0.5 + 0.5 × max(0, −compound); neutral 0.15; positive 0
- r (the author's reach): log10(1 + followers) / 6, capped at 1 (a million followers is 1)
- v (votes): log10(1 + votes + 0.2 × (likes + reposts)) / 3, capped at 1 (a thousand votes is 1)
- c (channel): ``channels[channel]``: a ticket or mail (someone waits for a direct answer) 1.0,
  a public post 0.7, an idea 0.2, anything else 0.5

Default weights: sentiment 4, reach 2, votes 2, channel 1, age 0.1 per hour waiting (a day's
wait is worth 2.4). Operators change them with ``PUT /priority``; open entries are re-scored.

The age term grows at the same pace for every waiting entry, so the pull order is kept in one
stored key, ``rank = static part − age_per_hour × hours from EPOCH to waiting_since``: ordering
by rank (highest first), then id (oldest first), is ordering by the live priority, then age.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from app.items.models import Classification, Item
from app.queues import repository
from app.queues.models import QueueEntry

EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
COMPONENTS = ("sentiment", "reach", "votes", "channel", "age")
DEFAULT_CHANNELS: Mapping[str, float] = {
    "zendesk": 1.0,
    "freshdesk": 1.0,
    "imap": 1.0,
    "email": 1.0,
    "twitter": 0.7,
    "mastodon": 0.7,
    "canny": 0.2,
    "fider": 0.2,
}
OTHER_CHANNEL = 0.5


@dataclass(frozen=True, slots=True)
class Weights:
    sentiment: float = 4.0
    reach: float = 2.0
    votes: float = 2.0
    channel: float = 1.0
    age_per_hour: float = 0.1
    channels: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_CHANNELS))

    def as_dict(self) -> dict[str, Any]:
        return {
            "sentiment": self.sentiment,
            "reach": self.reach,
            "votes": self.votes,
            "channel": self.channel,
            "age_per_hour": self.age_per_hour,
            "channels": dict(self.channels),
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Weights:
        """Stored or requested weights; what they leave out keeps its default."""
        base = cls()

        def number(name: str) -> float:
            return float(values.get(name, getattr(base, name)))

        channels = values.get("channels")
        return cls(
            sentiment=number("sentiment"),
            reach=number("reach"),
            votes=number("votes"),
            channel=number("channel"),
            age_per_hour=number("age_per_hour"),
            channels={str(k): float(v) for k, v in channels.items()}
            if isinstance(channels, Mapping)
            else dict(base.channels),
        )


def sentiment_signal(label: str | None, compound: float) -> float:
    if label == "negative":
        return 0.5 + 0.5 * max(0.0, -compound)
    if label == "neutral":
        return 0.15
    return 0.0


def reach_signal(followers: int | None) -> float:
    return min(1.0, math.log10(1 + max(0, followers or 0)) / 6)


def votes_signal(metrics: Mapping[str, Any]) -> float:
    def number(name: str) -> float:
        value = metrics.get(name)
        return float(value) if isinstance(value, int | float) and value > 0 else 0.0

    support = number("votes") + 0.2 * (number("likes") + number("reposts"))
    return min(1.0, math.log10(1 + support) / 3)


def channel_signal(channel: str, weights: Weights) -> float:
    return float(weights.channels.get(channel, OTHER_CHANNEL))


def hours_between(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() / 3600


@dataclass(frozen=True, slots=True)
class Score:
    static: float
    """The part of the priority that does not change with time."""
    breakdown: dict[str, float]
    rank: float


def score(
    weights: Weights,
    *,
    label: str | None,
    compound: float,
    followers: int | None,
    metrics: Mapping[str, Any],
    channel: str,
    waiting_since: datetime,
) -> Score:
    """An entry's static priority, its breakdown and its pull rank."""
    parts = {
        "sentiment": weights.sentiment * sentiment_signal(label, compound),
        "reach": weights.reach * reach_signal(followers),
        "votes": weights.votes * votes_signal(metrics),
        "channel": weights.channel * channel_signal(channel, weights),
    }
    parts = {name: round(value, 4) for name, value in parts.items()}
    static = round(sum(parts.values()), 4)
    return Score(
        static=static,
        breakdown={**parts, "age_per_hour": weights.age_per_hour},
        rank=rank_of(static, waiting_since, weights.age_per_hour),
    )


def assign(entry: QueueEntry, item: Item, verdict: Classification | None, weights: Weights) -> None:
    """Score ``entry`` (its static part, breakdown and pull rank)."""
    if entry.waiting_since is None:  # not flushed yet: the default has not applied
        entry.waiting_since = entry.created_at or datetime.now(UTC)
    scored = score(
        weights,
        label=verdict.sentiment if verdict is not None else None,
        compound=verdict.compound if verdict is not None else 0.0,
        followers=item.author_followers,
        metrics=item.metrics or {},
        channel=item.channel,
        waiting_since=entry.waiting_since,
    )
    entry.priority = scored.static
    entry.priority_breakdown = scored.breakdown
    entry.rank = scored.rank


def rank_of(static: float, waiting_since: datetime, age_per_hour: float) -> float:
    # The entry that started waiting earlier has had more hours to gain: rank it higher.
    return static - age_per_hour * hours_between(EPOCH, waiting_since)


def live(
    entry: QueueEntry | repository.EntryState, now: datetime
) -> tuple[float, dict[str, float]]:
    """The priority now and its breakdown, the age term included."""
    stored = entry.priority_breakdown or {}
    age_per_hour = float(stored.get("age_per_hour", 0.0))
    waited = max(0.0, hours_between(entry.waiting_since, now))
    breakdown = {name: float(stored.get(name, 0.0)) for name in COMPONENTS if name != "age"}
    breakdown["age"] = round(age_per_hour * waited, 4)
    return round(entry.priority + breakdown["age"], 4), breakdown


def current(session: Session) -> Weights:
    """The weights in use: the stored ones, or the documented defaults."""
    stored = repository.weights(session)
    return Weights.from_dict(stored.weights) if stored is not None else Weights()

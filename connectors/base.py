"""The connector contract: ``pull(cursor) -> Page`` of normalised ``SourceItem`` objects.

A connector performs one bounded request (or a few) per call, never sleeps and never
stores anything. The cursor is opaque to callers, JSON-serialisable, survives a restart
and only moves forward once everything before it has been returned. Delivery is at least
once: storage dedupes on ``(source, external_id)``.

A record that cannot be normalised is not dropped: it is returned in ``Page.rejects``
with its payload and the reason, and the runner quarantines it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, runtime_checkable

Kind = Literal["post", "idea", "ticket", "message", "review", "comment"]
KINDS: tuple[str, ...] = ("post", "idea", "ticket", "message", "review", "comment")

JSONValue = Any
"""Anything ``json.dumps`` accepts."""

Cursor = dict[str, JSONValue]
"""A connector's cursor: a JSON object. ``None`` means "start from the beginning"."""


@dataclass(frozen=True, slots=True)
class Author:
    id: str | None = None
    handle: str | None = None
    display_name: str | None = None
    followers: int | None = None
    email: str | None = None


@dataclass(frozen=True, slots=True)
class SourceItem:
    """One piece of customer feedback, normalised from any channel."""

    channel: str
    kind: str
    external_id: str
    text: str
    created_at: datetime
    title: str | None = None
    author: Author = field(default_factory=Author)
    updated_at: datetime | None = None
    url: str | None = None
    metrics: Mapping[str, int] = field(default_factory=dict)
    lang: str | None = None
    thread_id: str | None = None
    raw: Mapping[str, JSONValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.external_id:
            raise ValueError("external_id must not be empty")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        for name in ("created_at", "updated_at"):
            value = getattr(self, name)
            if value is not None and (value.tzinfo is None or value.utcoffset() is None):
                raise ValueError(f"{name} must be timezone-aware")


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record the connector could not normalise, kept for quarantine."""

    reason: str
    payload: str
    external_id: str | None = None
    location: str | None = None


@dataclass(frozen=True, slots=True)
class Page:
    items: list[SourceItem]
    next_cursor: Cursor | None
    has_more: bool
    rejects: list[Rejected] = field(default_factory=list)


@runtime_checkable
class Connector(Protocol):
    """What every connector implements. ``kind`` names it in the registry."""

    kind: str

    def pull(self, cursor: Cursor | None) -> Page: ...

    def check(self) -> None:
        """Verify credentials and reachability; raise a ``ConnectorError`` if not OK."""
        ...


def utc(value: datetime) -> datetime:
    """Return ``value`` as an aware UTC datetime (naive values are taken as UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_time(value: str | int | float) -> datetime:
    """Parse an ISO-8601 string (``Z`` allowed) or a Unix epoch into an aware UTC datetime."""
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, tz=UTC)
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    return utc(datetime.fromisoformat(text))

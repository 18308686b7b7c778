"""The ``demo`` connector: bundled feedback about Kestrel, a fictional task-management app.

It reads ``connectors/data/demo.jsonl`` with the ``jsonl`` connector's reader and mapping
(:func:`connectors.jsonl.read_page`), so a demo item is exactly what a user's own
export would give. Each record's ``labels`` (ground-truth ``queue`` and ``sentiment``)
stays in ``raw`` for measuring routing on the demo.

The demo spans 30 days. Its timestamps are shifted so that the newest item lands at the
*anchor*: the time of the first pull, or ``config["anchor"]`` when given (tests). The
anchor and the newest bundled timestamp are stored in the cursor, so later pulls and
restarts produce identical timestamps and a re-run stores nothing twice.

Configuration: ``{"page_size": 100, "anchor": "2026-11-20T09:00:00Z"}`` (both optional).

Cursor::

    {"anchor": "<ISO time>", "newest": "<ISO time>", "position": {<jsonl cursor>}}
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from connectors.base import Cursor, Page, SourceItem, parse_time
from connectors.errors import BadCursor, ConfigError
from connectors.jsonl import check_readable, page_size_from, read_page
from connectors.registry import register

DEMO_PATH = Path(__file__).parent / "data" / "demo.jsonl"
DEMO_CHANNEL = "demo"
DEFAULT_PAGE_SIZE = 100


def newest_timestamp(path: Path = DEMO_PATH) -> datetime:
    """The latest ``created_at`` in the bundled demo file (as written, before rebasing)."""
    newest: datetime | None = None
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                value = parse_time(json.loads(line)["created_at"])
                newest = value if newest is None else max(newest, value)
    if newest is None:
        raise ConfigError(f"demo data file is empty: {path}")
    return newest


@register("demo")
class DemoConnector:
    """Serves the bundled demo data, rebased onto the anchor; see the module docstring."""

    kind = "demo"

    def __init__(
        self,
        config: Mapping[str, Any],
        *,
        env: Mapping[str, str] | None = None,
        transport: object | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.page_size = page_size_from(config, DEFAULT_PAGE_SIZE)
        anchor = config.get("anchor")
        self.anchor: datetime | None = None
        if anchor is not None:
            try:
                self.anchor = parse_time(anchor)
            except (TypeError, ValueError, AttributeError):
                raise ConfigError(
                    f"demo: 'anchor' must be an ISO-8601 time, not {anchor!r}"
                ) from None
        self.path = DEMO_PATH
        self._clock = clock or (lambda: datetime.now(UTC))

    def check(self) -> None:
        check_readable(self.path)

    def pull(self, cursor: Cursor | None) -> Page:
        if cursor is None:
            anchor = self.anchor or self._clock()
            newest = newest_timestamp(self.path)
            position: Cursor | None = None
        else:
            anchor, newest, position = _unpack(cursor)
        page = read_page(self.path, position, page_size=self.page_size, channel=DEMO_CHANNEL)
        shift = anchor - newest
        return Page(
            items=[_rebase(item, shift) for item in page.items],
            next_cursor={
                "anchor": anchor.isoformat(),
                "newest": newest.isoformat(),
                "position": page.next_cursor,
            },
            has_more=page.has_more,
            rejects=page.rejects,
        )


def _unpack(cursor: Cursor) -> tuple[datetime, datetime, Cursor | None]:
    if not isinstance(cursor, dict):
        raise BadCursor(f"demo cursor must be an object: {cursor!r}")
    try:
        anchor = parse_time(cursor["anchor"])
        newest = parse_time(cursor["newest"])
    except (KeyError, TypeError, ValueError, AttributeError):
        raise BadCursor(f"demo cursor needs ISO 'anchor' and 'newest': {cursor!r}") from None
    position = cursor.get("position")
    if position is not None and not isinstance(position, dict):
        raise BadCursor(f"demo cursor 'position' must be an object: {cursor!r}")
    return anchor, newest, position


def _rebase(item: SourceItem, shift: timedelta) -> SourceItem:
    return dataclasses.replace(
        item,
        created_at=item.created_at + shift,
        updated_at=None if item.updated_at is None else item.updated_at + shift,
    )

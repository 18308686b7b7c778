"""Plain helper functions and small fakes the tests share."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.base import Author, Cursor, Page, Rejected, SourceItem
from connectors.errors import ConnectorError

BASE_TIME = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def make_item(
    n: int,
    text: str | None = None,
    *,
    channel: str = "twitter",
    kind: str = "post",
    metrics: dict[str, int] | None = None,
    created_at: datetime | None = None,
) -> SourceItem:
    return SourceItem(
        channel=channel,
        kind=kind,
        external_id=f"ext-{n}",
        text=text or f"my order {n} never arrived and support will not answer",
        created_at=created_at or BASE_TIME + timedelta(minutes=n),
        author=Author(id=f"u{n % 7}", handle=f"user{n % 7}", followers=10 * n),
        metrics=metrics or {},
        raw={"n": n},
    )


class ListConnector:
    """Serves fixed items in pages with an offset cursor; can fail on a chosen call."""

    kind = "list"

    def __init__(
        self,
        items: Sequence[SourceItem],
        *,
        page_size: int = 10,
        fail_on_call: int | None = None,
        error: ConnectorError | None = None,
        rejects_on_first_page: Sequence[Rejected] = (),
        repeat_cursor: bool = False,
    ) -> None:
        self.items = list(items)
        self.page_size = page_size
        self.fail_on_call = fail_on_call
        self.error = error or ConnectorError("upstream broke")
        self.rejects = list(rejects_on_first_page)
        self.repeat_cursor = repeat_cursor
        self.calls = 0

    def pull(self, cursor: Cursor | None) -> Page:
        self.calls += 1
        if self.fail_on_call is not None and self.calls == self.fail_on_call:
            raise self.error
        offset = int(cursor["offset"]) if cursor else 0
        chunk = self.items[offset : offset + self.page_size]
        end = offset + len(chunk)
        rejects = self.rejects if offset == 0 else []
        next_offset = offset if self.repeat_cursor else end
        return Page(
            items=chunk,
            next_cursor={"offset": next_offset},
            has_more=end < len(self.items),
            rejects=list(rejects),
        )

    def check(self) -> None:
        return None


def factory_for(connector: Any) -> Any:
    return lambda _source: connector

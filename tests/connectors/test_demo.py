"""The ``demo`` connector: the bundled Kestrel feedback, rebased onto an anchor time."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors import registry
from connectors.base import Cursor, SourceItem
from connectors.demo import DEMO_PATH, DemoConnector, newest_timestamp
from connectors.errors import BadCursor, ConfigError
from connectors.jsonl import item_from_record

ANCHOR = datetime(2027, 3, 4, 9, 30, tzinfo=UTC)
KINDS_BY_CHANNEL = {
    "twitter": "post",
    "mastodon": "post",
    "canny": "idea",
    "fider": "idea",
    "zendesk": "ticket",
    "freshdesk": "ticket",
    "email": "message",
}


def pull_all(
    connector: DemoConnector, cursor: Cursor | None = None
) -> tuple[list[SourceItem], Cursor | None]:
    items: list[SourceItem] = []
    for _ in range(1000):
        page = connector.pull(None if cursor is None else json.loads(json.dumps(cursor)))
        assert page.rejects == []
        items += page.items
        cursor = page.next_cursor
        if not page.has_more:
            return items, cursor
    raise AssertionError("the demo never reached its end")


@pytest.fixture(scope="module")
def demo() -> list[SourceItem]:
    items, _ = pull_all(DemoConnector({"anchor": ANCHOR.isoformat(), "page_size": 50}))
    return items


def labels(item: SourceItem) -> dict[str, str]:
    value: dict[str, str] = item.raw["labels"]
    return value


def test_the_demo_has_enough_unique_items(demo: list[SourceItem]) -> None:
    assert len(demo) >= 360
    assert len({item.external_id for item in demo}) == len(demo)


def test_labels_cover_every_queue_and_sentiment(demo: list[SourceItem]) -> None:
    pairs = Counter((labels(item)["queue"], labels(item)["sentiment"]) for item in demo)
    queues = Counter(labels(item)["queue"] for item in demo)

    for queue in ("product", "marketing", "sales", "service"):
        for sentiment in ("negative", "neutral", "positive"):
            assert pairs[queue, sentiment] > 0, (queue, sentiment)
    shares = {queue: count / len(demo) for queue, count in queues.items()}
    assert set(shares) == {"product", "marketing", "sales", "service"}
    assert 0.28 <= shares["service"] <= 0.42
    for queue in ("product", "marketing", "sales"):
        assert 0.14 <= shares[queue] <= 0.31, queue


def test_timestamps_are_aware_and_span_thirty_days_ending_at_the_anchor(
    demo: list[SourceItem],
) -> None:
    times = [item.created_at for item in demo]

    assert all(t.utcoffset() == timedelta(0) for t in times)
    assert max(times) == ANCHOR
    assert min(times) >= ANCHOR - timedelta(days=30)
    assert max(times) - min(times) >= timedelta(days=27)


def test_more_feedback_in_working_hours_than_at_night(demo: list[SourceItem]) -> None:
    hours = Counter(item.created_at.hour for item in demo)
    # The anchor used here is 09:30 and the demo's newest item is at 23:01, so hours shift; the
    # daily rhythm survives as a busy half and a quiet half of the day.
    by_hour = sorted(hours.values())
    assert sum(by_hour[-8:]) > 3 * sum(by_hour[:8])


def test_the_sync_outage_shows_as_a_burst_of_negative_service_feedback(
    demo: list[SourceItem],
) -> None:
    shift = ANCHOR - newest_timestamp()
    start = datetime(2026, 11, 17, 13, tzinfo=UTC) + shift
    end = start + timedelta(hours=5)

    def burst(since: datetime) -> int:
        return sum(
            1
            for item in demo
            if since <= item.created_at < since + timedelta(hours=5)
            and labels(item) == {"queue": "service", "sentiment": "negative"}
        )

    assert start < end <= ANCHOR
    assert burst(start) >= 25
    assert burst(start) > 5 * burst(start - timedelta(days=1))


def test_items_are_mapped_like_the_jsonl_connector(demo: list[SourceItem]) -> None:
    shift = ANCHOR - newest_timestamp()
    lines = [json.loads(text) for text in DEMO_PATH.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == len(demo)

    for item, record in zip(demo, lines, strict=True):
        plain = item_from_record(record, default_created_at=ANCHOR)
        assert item.raw == record
        assert item.created_at == plain.created_at + shift
        assert (item.external_id, item.channel, item.kind, item.text) == (
            plain.external_id,
            plain.channel,
            plain.kind,
            plain.text,
        )
        assert (item.author, item.metrics, item.title) == (plain.author, plain.metrics, plain.title)


def test_channels_kinds_and_metrics_are_consistent(demo: list[SourceItem]) -> None:
    for item in demo:
        assert KINDS_BY_CHANNEL[item.channel] == item.kind, item.external_id
        assert (item.title is None) == (item.kind == "post"), item.external_id
        assert item.url is not None
        assert item.url.startswith("https://")
        if item.kind == "post":
            assert set(item.metrics) == {"likes", "reposts", "replies"}
            assert item.author.followers is not None
        elif item.kind == "idea":
            assert set(item.metrics) == {"votes", "comments"}
        else:
            assert item.author.email is not None
    assert {item.lang for item in demo} >= {"en", "de", "es", "fr"}


def test_idea_votes_are_long_tailed(demo: list[SourceItem]) -> None:
    votes = sorted((item.metrics["votes"] for item in demo if item.kind == "idea"), reverse=True)

    assert votes[0] >= 200
    assert votes[len(votes) // 2] <= 10


def test_people_and_threads_link_across_channels(demo: list[SourceItem]) -> None:
    channels: dict[str, set[str]] = {}
    for item in demo:
        assert item.author.handle is not None
        channels.setdefault(item.author.handle, set()).add(item.channel)
    ids = {item.external_id for item in demo}
    threads = Counter(item.thread_id for item in demo if item.thread_id is not None)

    assert sum(len(seen) > 1 for seen in channels.values()) >= 3
    assert threads
    assert all(thread in ids and count >= 2 for thread, count in threads.items())


def test_two_runs_give_identical_items(demo: list[SourceItem]) -> None:
    again, _ = pull_all(DemoConnector({"anchor": ANCHOR.isoformat(), "page_size": 37}))

    assert [(i.external_id, i.created_at) for i in again] == [
        (i.external_id, i.created_at) for i in demo
    ]


def test_the_anchor_is_chosen_on_the_first_pull_and_kept_in_the_cursor() -> None:
    clock = iter(
        [datetime(2027, 1, 1, 12, tzinfo=UTC)]
        + [datetime(2027, 6, 1, tzinfo=UTC) + timedelta(days=n) for n in range(100)]
    )
    first = DemoConnector({"page_size": 100}, clock=lambda: next(clock))
    page = first.pull(None)
    assert page.has_more is True
    cursor: Any = json.loads(json.dumps(page.next_cursor))

    # A restart: a new connector (with a clock far in the future) continues from the cursor.
    restarted = DemoConnector({"page_size": 100}, clock=lambda: next(clock))
    rest, final = pull_all(restarted, cursor)
    items = page.items + rest

    assert max(item.created_at for item in items) == datetime(2027, 1, 1, 12, tzinfo=UTC)
    assert final is not None
    assert final["anchor"] == "2027-01-01T12:00:00+00:00"

    rerun = restarted.pull(final)
    assert rerun.items == []
    assert rerun.has_more is False


def test_a_run_without_anchor_ends_near_now() -> None:
    before = datetime.now(UTC)
    items, _ = pull_all(DemoConnector({}))
    after = datetime.now(UTC)

    assert before <= max(item.created_at for item in items) <= after


def test_config_and_cursor_errors() -> None:
    with pytest.raises(ConfigError, match="anchor"):
        DemoConnector({"anchor": "soon"})
    with pytest.raises(ConfigError):
        DemoConnector({"page_size": 0})
    with pytest.raises(BadCursor):
        DemoConnector({}).pull({"position": None})


def test_registered_under_demo() -> None:
    source = registry.create("demo", {"anchor": "2027-01-01T00:00:00Z"})

    assert isinstance(source, DemoConnector)
    source.check()
    assert len(source.pull(None).items) == 100

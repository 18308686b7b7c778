"""The one contract every connector with a fake in ``tests/connectors/fakes`` must meet."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta

import pytest

from connectors.base import KINDS, Connector
from connectors.errors import RateLimited
from tests.connectors.contract import ContractCase, discover_cases, drain, ids, iter_items

CASES = discover_cases()


@pytest.fixture(params=CASES, ids=[case.name for case in CASES])
def case(request: pytest.FixtureRequest) -> ContractCase:
    selected: ContractCase = request.param
    return selected


def test_cases_are_discovered() -> None:
    names = {case.name for case in CASES}
    assert {"twitter-search", "twitter-mentions", "mastodon-hashtag", "mastodon-mentions"} <= names


def test_is_a_connector(case: ContractCase) -> None:
    connector = case.start().connector()
    assert isinstance(connector, Connector)
    assert connector.kind


def test_first_sync_yields_every_item_exactly_once(case: ContractCase) -> None:
    rig = case.start()
    seeded = list(rig.seed(case.initial_count))
    assert len(seeded) == case.initial_count

    result = drain(rig.connector(), None, case.page_cap)

    got = ids(result.items)
    duplicates = [key for key, count in Counter(got).items() if count > 1]
    assert duplicates == []
    assert sorted(got) == sorted(seeded)
    assert all(not page.rejects for page in result.pages)


def test_cursor_survives_restart_and_next_sync_returns_only_new_items(case: ContractCase) -> None:
    rig = case.start()
    rig.seed(case.initial_count)
    first = drain(rig.connector(), None, case.page_cap)
    stored = json.dumps(first.final_cursor)  # what the runner writes to the database

    later = list(rig.seed(case.later_count))
    restarted = rig.connector()
    second = drain(restarted, json.loads(stored), case.page_cap)

    assert sorted(ids(second.items)) == sorted(later)
    assert len(ids(second.items)) == len(set(ids(second.items)))


def test_sync_with_nothing_new_ends_at_once(case: ContractCase) -> None:
    rig = case.start()
    rig.seed(case.initial_count)
    first = drain(rig.connector(), None, case.page_cap)
    assert first.pages[-1].has_more is False

    again = drain(rig.connector(), first.final_cursor, case.page_cap)

    assert again.items == []
    assert again.pages[-1].has_more is False
    assert len(again.pages) <= 2  # at most one request to learn there is nothing new


def test_rate_limit_becomes_rate_limited(case: ContractCase) -> None:
    rig = case.start()
    if rig.trigger_rate_limit is None:
        pytest.skip(f"{case.name} declares no upstream rate limit")
    rig.seed(case.initial_count)
    rig.trigger_rate_limit()

    with pytest.raises(RateLimited) as caught:
        rig.connector().pull(None)

    assert caught.value.retry_after > 0


def test_items_are_well_formed(case: ContractCase) -> None:
    rig = case.start()
    rig.seed(case.initial_count)
    first = drain(rig.connector(), None, case.page_cap)
    rig.seed(case.later_count)
    second = drain(rig.connector(), first.final_cursor, case.page_cap)

    items = list(iter_items([first, second]))
    assert items
    external_ids = ids(items)
    assert all(external_ids)
    assert len(external_ids) == len(set(external_ids))
    for item in items:
        assert item.channel
        assert item.kind in KINDS
        assert item.created_at.utcoffset() == timedelta(0)
        if item.updated_at is not None:
            assert item.updated_at.utcoffset() is not None
        assert isinstance(item.text, str)
        json.dumps(dict(item.raw))  # raw payloads are stored as JSON
    for result in (first, second):
        for cursor in result.cursors[1:]:
            assert json.loads(json.dumps(cursor)) == cursor

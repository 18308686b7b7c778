"""Freshdesk connector against the local fake (tests/connectors/fakes/freshdesk_api.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from connectors.base import Cursor, Page
from connectors.errors import (
    AuthFailed,
    BadCursor,
    ConfigError,
    RateLimited,
    RequestRejected,
    UpstreamError,
)
from connectors.freshdesk import FreshdeskConnector
from connectors.registry import create
from tests.connectors.fakes.freshdesk_api import (
    API_KEY,
    API_KEY_ENV,
    FakeFreshdeskApi,
    connector_for,
)


def seed(api: FakeFreshdeskApi, count: int, *, tick: int = 1) -> list[str]:
    return [str(api.add_ticket(f"Subject {n}", f"Body {n}", tick=tick)["id"]) for n in range(count)]


def roundtrip(cursor: Cursor | None) -> Cursor | None:
    loaded: Cursor | None = json.loads(json.dumps(cursor))
    return loaded


def drain(
    connector: FreshdeskConnector, cursor: Cursor | None, limit: int = 200
) -> tuple[list[Page], Cursor | None]:
    pages: list[Page] = []
    for _ in range(limit):
        page = connector.pull(cursor)
        pages.append(page)
        cursor = roundtrip(page.next_cursor)
        if not page.has_more:
            return pages, cursor
    raise AssertionError("never ended")


def external_ids(pages: list[Page]) -> list[str]:
    return [item.external_id for page in pages for item in page.items]


def test_lists_oldest_change_first_following_the_link_header() -> None:
    api = FakeFreshdeskApi()
    expected = seed(api, 23)

    pages, cursor = drain(connector_for(api, per_page=5), None)

    assert external_ids(pages) == expected
    assert [page.has_more for page in pages][-1] is False
    assert all(page.has_more for page in pages[:-1])
    params = dict(api.requests[0].url.params)
    assert params == {
        "updated_since": "1970-01-01T00:00:00Z",
        "order_by": "updated_at",
        "order_type": "asc",
        "per_page": "5",
        "page": "1",
        "include": "description",
    }
    assert "Link" not in api.requests[-1].headers  # sanity: the fake sets it on responses
    assert cursor == {
        "updated_since": api.tickets[int(expected[-1])]["updated_at"],
        "page": 1,
        "seen": [int(expected[-1])],
    }


def test_item_shape_and_andon_contract() -> None:
    api = FakeFreshdeskApi()
    ticket = api.add_ticket(
        "Refund missing", "I was charged twice", requester_id=4242, status=3, priority=4,
        tags=("billing",),
    )  # fmt: skip

    (item,) = connector_for(api).pull(None).items

    assert item.channel == "freshdesk"
    assert item.kind == "ticket"
    assert item.external_id == str(ticket["id"])
    assert item.title == "Refund missing"
    assert item.text == "I was charged twice"
    assert item.author.id == "4242"
    assert item.thread_id == str(ticket["id"])
    assert item.url == f"https://acme.freshdesk.com/a/tickets/{ticket['id']}"
    assert item.created_at.utcoffset() is not None
    assert item.updated_at == item.created_at
    assert item.raw["andon"] == {
        "status": "pending",
        "priority": "urgent",
        "tags": ["billing"],
        "deleted": False,
    }
    assert item.raw["status"] == 3


def test_boundary_tickets_sharing_a_second_are_neither_lost_nor_repeated() -> None:
    api = FakeFreshdeskApi()
    # Groups of three in one second, so page boundaries (per_page=2) cut through seconds.
    expected = [
        str(api.add_ticket(f"T{n}", "b", tick=1 if n % 3 == 2 else 0)["id"]) for n in range(12)
    ]

    pages, cursor = drain(connector_for(api, per_page=2), None)

    assert external_ids(pages) == expected
    again, _ = drain(connector_for(api, per_page=2), cursor)
    assert external_ids(again) == []
    assert len(again) == 1


def test_a_ticket_updated_while_paging_does_not_push_another_out_of_sight() -> None:
    api = FakeFreshdeskApi()
    expected = seed(api, 10)
    connector = connector_for(api, per_page=5)
    first = connector.pull(None)
    # Moving ticket 0 to the end shifts every other ticket one place forward: plain
    # page-number paging would now skip the sixth ticket.
    api.update_ticket(int(expected[0]), status=4)

    rest, _ = drain(connector, roundtrip(first.next_cursor))

    got = external_ids([first, *rest])
    assert sorted(set(got)) == sorted(expected)
    assert got[-1] == expected[0]  # the update itself comes through as well


def test_cursor_survives_a_restart_without_loss_or_duplicates() -> None:
    api = FakeFreshdeskApi()
    expected = seed(api, 7, tick=0) + seed(api, 6)  # seven in one second, then one a second
    first = connector_for(api, per_page=3).pull(None)
    stored = json.dumps(first.next_cursor)

    rest, cursor = drain(connector_for(api, per_page=3), json.loads(stored))
    assert external_ids([first, *rest]) == expected

    later = seed(api, 4)
    again, _ = drain(connector_for(api, per_page=3), cursor)
    assert external_ids(again) == later


def test_many_pages_never_reach_the_page_cap() -> None:
    api = FakeFreshdeskApi(page_cap=3)
    expected = seed(api, 20)

    pages, _ = drain(connector_for(api, per_page=2, page_cap=3), None)

    assert external_ids(pages) == expected
    assert max(int(request.url.params["page"]) for request in api.requests) <= 3


def test_page_cap_inside_one_second_restarts_after_it_and_reports_the_gap() -> None:
    api = FakeFreshdeskApi(page_cap=2)
    bulk = seed(api, 7, tick=0)  # a bulk update: seven tickets in one second
    api.advance(1)
    later = seed(api, 3)

    pages, _ = drain(connector_for(api, per_page=2, page_cap=2), None)

    got = external_ids(pages)
    assert got == bulk[:4] + later  # pages 1-2 of that second, then the next second on
    rejects = [reject for page in pages for reject in page.rejects]
    assert len(rejects) == 1
    assert "more than 2 pages" in rejects[0].reason
    assert json.loads(rejects[0].payload)["updated_at"] == api.tickets[int(bulk[0])]["updated_at"]
    assert all(int(request.url.params["page"]) <= 2 for request in api.requests)


def test_the_fake_refuses_pages_past_its_cap_like_freshdesk() -> None:
    api = FakeFreshdeskApi(page_cap=1)
    seed(api, 4, tick=0)
    connector = connector_for(api, per_page=2, page_cap=5)  # misconfigured: the API caps at 1

    with pytest.raises(RequestRejected, match="beyond the 1th page") as caught:
        drain(connector, None)
    assert caught.value.status == 400
    assert api.requests[-1].url.params["page"] == "2"


def test_429_is_rate_limited_and_blocks_until_retry_after() -> None:
    api = FakeFreshdeskApi()
    expected = seed(api, 4)
    connector = connector_for(api, per_page=2)
    first = connector.pull(None)
    api.rate_limit_next(retry_after=42)

    with pytest.raises(RateLimited) as caught:
        connector.pull(roundtrip(first.next_cursor))
    assert caught.value.retry_after == 42
    sent = len(api.requests)
    with pytest.raises(RateLimited):
        connector.pull(roundtrip(first.next_cursor))
    assert len(api.requests) == sent

    api.advance(42)
    rest, _ = drain(connector, roundtrip(first.next_cursor))
    assert external_ids([first, *rest]) == expected


def test_remaining_zero_stops_before_the_next_request() -> None:
    api = FakeFreshdeskApi(rate_limit=2)
    expected = seed(api, 10)
    connector = connector_for(api, per_page=2)
    cursor = roundtrip(connector.pull(None).next_cursor)
    cursor = roundtrip(connector.pull(cursor).next_cursor)  # answers Remaining: 0

    with pytest.raises(RateLimited) as caught:
        connector.pull(cursor)

    assert len(api.requests) == 2
    assert caught.value.retry_after == pytest.approx(60)
    api.advance(60)
    # Each page re-windows on the last second read, whose ticket comes back and is skipped.
    assert external_ids([connector.pull(cursor)]) == [expected[3]]


def test_5xx_once_is_retried() -> None:
    api = FakeFreshdeskApi()
    expected = seed(api, 3)
    api.faults.add("502")
    sleeps: list[float] = []
    connector = FreshdeskConnector(
        {"domain": "acme", "api_key_env": API_KEY_ENV},
        env={API_KEY_ENV: API_KEY},
        transport=api.transport(),
        sleep=sleeps.append,
        now=api.clock,
    )

    assert external_ids([connector.pull(None)]) == expected
    assert len(sleeps) == 1
    assert len(api.requests) == 2


def test_5xx_that_persists_is_an_upstream_error() -> None:
    api = FakeFreshdeskApi()
    seed(api, 1)
    api.faults.add("503", times=4)
    with pytest.raises(UpstreamError):
        connector_for(api).pull(None)


def test_malformed_records_are_rejected_and_the_rest_kept() -> None:
    api = FakeFreshdeskApi()
    good = seed(api, 1)
    api.add_raw(["not", "an", "object"])
    api.add_raw({"subject": "no id", "updated_at": "2024-05-13T09:00:02Z"})
    api.add_raw({"id": 5, "created_at": "2024-05-13T09:00:03Z", "updated_at": "soon"})
    good += seed(api, 1)

    page = connector_for(api).pull(None)

    assert external_ids([page]) == good
    assert len(page.rejects) == 3
    assert "not a JSON object" in page.rejects[0].reason
    assert "'id'" in page.rejects[1].reason
    assert "updated_at" in page.rejects[2].reason
    assert json.loads(page.rejects[2].payload)["id"] == 5
    assert page.next_cursor is not None
    assert page.next_cursor["seen"] == [int(good[-1])]


def test_refused_key_is_auth_failed_and_never_leaks() -> None:
    api = FakeFreshdeskApi()
    wrong = "wrong-fd-key-77"
    connector = FreshdeskConnector(
        {"domain": "acme", "api_key_env": API_KEY_ENV},
        env={API_KEY_ENV: wrong},
        transport=api.transport(),
    )
    with pytest.raises(AuthFailed) as caught:
        connector.pull(None)
    with pytest.raises(AuthFailed) as checked:
        connector.check()
    for text in (str(caught.value), str(checked.value), repr(connector)):
        assert wrong not in text
        assert API_KEY not in text


def test_missing_key_names_the_variable_only() -> None:
    connector = create("freshdesk", {"domain": "acme"}, env={})
    with pytest.raises(AuthFailed, match="ANDON_FRESHDESK_API_KEY"):
        connector.check()


def test_check_uses_one_small_request() -> None:
    api = FakeFreshdeskApi()
    seed(api, 3)
    connector_for(api).check()
    assert api.requests[0].url.params["per_page"] == "1"


@pytest.mark.parametrize(
    "cursor",
    [
        {"updated_since": "not a time"},
        {"updated_since": "2024-05-13T09:00:00Z", "page": 0},
        {"updated_since": "2024-05-13T09:00:00Z", "seen": ["1001"]},
        {"page": 2},
        {"updated_since": "2024-05-13T09:00:00Z", "after": "x"},
    ],
)
def test_corrupt_cursor_is_bad_cursor(cursor: dict[str, Any]) -> None:
    with pytest.raises(BadCursor):
        connector_for(FakeFreshdeskApi()).pull(cursor)


@pytest.mark.parametrize(
    "config",
    [
        {"api_key_env": "X"},
        {"domain": "acme", "per_page": 101},
        {"domain": "acme", "page_cap": 0},
        {"domain": "acme", "updated_since": "last week"},
        {"base_url": "acme.freshdesk.com"},
    ],
)
def test_invalid_config_is_config_error(config: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        FreshdeskConnector(config, env={})

"""Fider connector against the local fake (tests/connectors/fakes/fider_api.py)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from connectors import registry
from connectors.base import SourceItem
from connectors.errors import (
    AuthFailed,
    BadCursor,
    ConfigError,
    ProtocolError,
    RateLimited,
    UpstreamError,
)
from connectors.fider import FiderConnector
from connectors.http import RetryPolicy
from tests.connectors.contract import drain, ids
from tests.connectors.fakes import json_response
from tests.connectors.fakes.fider_api import API_KEY, API_KEY_ENV, BASE_URL, START, FakeFiderApi


class Clock:
    def __init__(self) -> None:
        self.now = START + timedelta(days=1)

    def __call__(self) -> datetime:
        return self.now


def make(
    api: FakeFiderApi,
    clock: Clock | None = None,
    *,
    sleeps: list[float] | None = None,
    key: str | None = API_KEY,
    transport: httpx.BaseTransport | None = None,
    **config: Any,
) -> FiderConnector:
    recorded = sleeps if sleeps is not None else []
    settings: dict[str, Any] = {"base_url": BASE_URL, "limit": 10, **config}
    env: dict[str, str] = {}
    if key is not None:
        settings["api_key_env"] = API_KEY_ENV
        env[API_KEY_ENV] = key
    return FiderConnector(
        settings,
        env=env,
        transport=transport or api.transport(),
        policy=RetryPolicy(max_retries=2, sleep=recorded.append),
        now=clock or Clock(),
    )


def by_id(items: list[SourceItem]) -> dict[str, SourceItem]:
    return {item.external_id: item for item in items}


def params(api: FakeFiderApi, start: int = 0) -> list[dict[str, str]]:
    return [dict(request.url.params) for request in api.calls[start:]]


def paths(api: FakeFiderApi, start: int = 0) -> list[str]:
    return [request.url.path for request in api.calls[start:]]


def test_first_sync_is_one_view_all_request_with_every_listed_status() -> None:
    api = FakeFiderApi()
    statuses = ["open", "started", "planned", "completed", "declined"]
    seeded = [api.add_post(f"Idea {n}", status=statuses[n % 5])["number"] for n in range(25)]

    result = drain(make(api), None, 10)

    assert sorted(ids(result.items)) == sorted(str(n) for n in seeded)
    assert params(api) == [{"view": "all", "limit": "100000"}]
    assert {item.raw["andon"]["status"] for item in result.items} == set(statuses)
    assert all(item.raw["andon"]["refresh"] is True for item in result.items)
    assert api.calls[0].headers["authorization"] == f"Bearer {API_KEY}"


def test_item_shape_and_andon_contract() -> None:
    api = FakeFiderApi()
    api.add_post("Dark mode", "Please", votes=57, comments=4, status="planned", tags=("ui",))

    (item,) = drain(make(api), None, 10).items

    assert item.channel == "fider"
    assert item.kind == "idea"
    assert item.external_id == "1"
    assert item.title == "Dark mode"
    assert item.text == "Dark mode\n\nPlease"
    assert item.metrics == {"votes": 57, "comments": 4}
    assert item.url == f"{BASE_URL}/posts/1/dark-mode"
    assert item.author.display_name == "Ada Customer"
    assert item.created_at.utcoffset() == timedelta(0)
    assert item.raw["votesCount"] == 57
    assert item.raw["andon"] == {
        "status": "planned",
        "tags": ["ui"],
        "board": None,
        "duplicate_of": None,
        "merged": [],
        "refresh": True,
    }


def test_incremental_uses_view_recent_and_stops_at_the_watermark() -> None:
    api = FakeFiderApi()
    api.add_posts(25)
    cursor = drain(make(api), None, 10).final_cursor
    new = api.add_posts(4)
    before = len(api.calls)

    result = drain(make(api), cursor, 10)

    assert sorted(ids(result.items)) == sorted(new)
    assert params(api, before) == [{"view": "recent", "limit": "10"}]
    assert all(item.raw["andon"]["refresh"] is False for item in result.items)
    assert result.final_cursor is not None
    assert result.final_cursor["watermark"]["number"] == 29
    assert drain(make(api), result.final_cursor, 10).items == []


def test_more_new_posts_than_the_limit_falls_back_to_a_refresh_without_a_gap() -> None:
    api = FakeFiderApi()
    api.add_posts(3)
    cursor = drain(make(api), None, 10).final_cursor
    new = api.add_posts(14)  # limit is 10: four are out of reach of view=recent
    before = len(api.calls)

    result = drain(make(api), cursor, 10)

    assert set(new) <= set(ids(result.items))
    assert [p["view"] for p in params(api, before)] == ["recent", "all"]
    assert result.pages[0].has_more is True
    assert result.final_cursor is not None
    assert result.final_cursor["watermark"]["number"] == 17
    assert drain(make(api), result.final_cursor, 10).items == []


def test_interrupted_refresh_resumes_from_the_json_cursor() -> None:
    api = FakeFiderApi()
    numbers = [int(n) for n in api.add_posts(20)]
    for number in numbers[1:13]:  # twelve duplicates: three look-up pulls
        api.mark_duplicate(number, numbers[0])

    first = make(api).pull(None)
    assert first.has_more is True
    stored = json.loads(json.dumps(first.next_cursor))
    assert stored["pass"]["pending"] == numbers[1:13]
    assert stored["watermark"] is None  # only a completed refresh moves it

    api.faults.add("503", times=3)
    with pytest.raises(UpstreamError):
        make(api).pull(stored)

    rest = drain(make(api), stored, 10)
    got = Counter(ids(first.items) + ids(rest.items))
    assert got == Counter(str(n) for n in numbers)
    assert [len(page.items) for page in rest.pages] == [5, 5, 2]


def test_refresh_updates_votes_comments_status_and_tags_under_the_same_ids() -> None:
    api = FakeFiderApi()
    numbers = [int(n) for n in api.add_posts(8)]
    clock = Clock()
    cursor = drain(make(api, clock), None, 10).final_cursor
    api.set_votes(numbers[2], 40)
    api.set_comments(numbers[2], 6)
    api.set_status(numbers[2], "completed", "Shipped in 2.1")
    api.posts[numbers[5]]["tags"] = ["billing"]

    clock.now += timedelta(hours=3)
    assert drain(make(api, clock), cursor, 10).items == []  # not due yet

    clock.now += timedelta(hours=22)
    result = drain(make(api, clock), cursor, 10)

    items = by_id(result.items)
    assert set(items) == {str(n) for n in numbers}
    changed = items[str(numbers[2])]
    assert changed.metrics == {"votes": 40, "comments": 6}
    assert changed.raw["andon"]["status"] == "completed"
    assert changed.updated_at is not None
    assert changed.updated_at > changed.created_at
    assert items[str(numbers[5])].raw["andon"]["tags"] == ["billing"]
    assert result.final_cursor is not None
    assert result.final_cursor["refreshed_at"] == clock.now.isoformat()


def test_duplicate_is_linked_to_the_original_so_votes_count_once() -> None:
    api = FakeFiderApi()
    original = api.add_post("Dark mode", votes=10)["number"]
    duplicate = api.add_post("Night theme", votes=4)["number"]
    api.add_post("Export CSV", votes=3)
    clock = Clock()
    cursor = drain(make(api, clock), None, 10).final_cursor
    api.mark_duplicate(duplicate, original)
    clock.now += timedelta(days=2)
    before = len(api.calls)

    result = drain(make(api, clock), cursor, 10)

    assert paths(api, before) == ["/api/v1/posts", f"/api/v1/posts/{duplicate}"]
    items = by_id(result.items)
    assert items[str(duplicate)].raw["andon"]["status"] == "duplicate"
    assert items[str(duplicate)].raw["andon"]["duplicate_of"] == str(original)
    assert items[str(original)].metrics["votes"] == 14
    demand = sum(
        item.metrics["votes"] for item in items.values() if not item.raw["andon"]["duplicate_of"]
    )
    assert demand == 17


def test_deleted_post_is_not_returned_and_not_looked_up_again() -> None:
    api = FakeFiderApi()
    numbers = [int(n) for n in api.add_posts(5)]
    clock = Clock()
    cursor = drain(make(api, clock), None, 10).final_cursor
    api.delete_post(numbers[1])
    clock.now += timedelta(days=2)
    before = len(api.calls)

    result = drain(make(api, clock), cursor, 10)

    assert str(numbers[1]) not in ids(result.items)
    assert sorted(ids(result.items)) == sorted(str(n) for n in numbers if n != numbers[1])
    assert paths(api, before) == ["/api/v1/posts", f"/api/v1/posts/{numbers[1]}"]
    assert all(not page.rejects for page in result.pages)
    assert result.final_cursor is not None
    assert result.final_cursor["gone"] == [numbers[1]]

    clock.now += timedelta(days=2)
    before = len(api.calls)
    drain(make(api, clock), result.final_cursor, 10)
    assert paths(api, before) == ["/api/v1/posts"]


def test_rate_limit_becomes_rate_limited() -> None:
    api = FakeFiderApi()
    api.add_posts(3)
    api.rate_limit_after(0, retry_after="17")

    with pytest.raises(RateLimited) as caught:
        make(api).pull(None)

    assert caught.value.retry_after == 17
    assert len(api.calls) == 1
    assert API_KEY not in str(caught.value)


def test_5xx_once_is_retried() -> None:
    api = FakeFiderApi()
    seeded = api.add_posts(3)
    api.faults.add("502")
    sleeps: list[float] = []

    page = make(api, sleeps=sleeps).pull(None)

    assert sorted(ids(page.items)) == sorted(seeded)
    assert len(sleeps) == 1
    assert len(api.calls) == 2


def test_malformed_post_is_rejected_with_payload_and_reason() -> None:
    api = FakeFiderApi()
    numbers = [int(n) for n in api.add_posts(4)]
    api.corrupt(numbers[0], votesCount="lots")
    api.corrupt(numbers[3], createdAt="yesterday")

    page = make(api).pull(None)

    assert sorted(ids(page.items)) == sorted(str(n) for n in numbers[1:3])
    reasons = {reject.external_id: reject.reason for reject in page.rejects}
    assert set(reasons) == {str(numbers[0]), str(numbers[3])}
    assert "votesCount" in reasons[str(numbers[0])]
    assert "createdAt" in reasons[str(numbers[3])]
    for reject in page.rejects:
        assert str(json.loads(reject.payload)["number"]) == reject.external_id


def test_wrong_key_is_auth_failed_and_the_key_never_shows() -> None:
    api = FakeFiderApi()
    wrong = "wrong-fider-key-55Zk"

    with pytest.raises(AuthFailed) as caught:
        make(api, key=wrong).pull(None)

    assert wrong not in str(caught.value)
    assert API_KEY not in str(caught.value)
    connector = make(api)
    assert API_KEY not in repr(connector)


def test_public_site_needs_no_key_and_a_private_one_refuses_anonymous_calls() -> None:
    api = FakeFiderApi()
    api.add_posts(2)
    items = drain(make(api, key=None), None, 10).items
    assert len(items) == 2
    assert "authorization" not in api.calls[0].headers

    with pytest.raises(AuthFailed):
        make(FakeFiderApi(private=True), key=None).check()
    make(FakeFiderApi(private=True)).check()


def test_missing_key_variable_is_auth_failed() -> None:
    api = FakeFiderApi()
    connector = FiderConnector(
        {"base_url": BASE_URL, "api_key_env": API_KEY_ENV}, env={}, transport=api.transport()
    )
    with pytest.raises(AuthFailed, match=API_KEY_ENV):
        connector.pull(None)
    assert api.calls == []


def test_answer_that_is_not_a_bare_array_is_a_protocol_error() -> None:
    def wrapped(request: httpx.Request) -> httpx.Response:
        return json_response(200, {"posts": []})

    with pytest.raises(ProtocolError):
        make(FakeFiderApi(), transport=httpx.MockTransport(wrapped)).pull(None)


def test_fake_honours_views_limits_and_tags() -> None:
    api = FakeFiderApi()
    api.add_post("a", votes=1, tags=("ui",))
    api.add_post("b", votes=9, status="completed")
    api.add_post("c", votes=5, tags=("api", "ui"))
    with httpx.Client(transport=api.transport(), base_url=BASE_URL) as client:

        def titles(query: str) -> list[str]:
            return [post["title"] for post in client.get(f"/api/v1/posts?{query}").json()]

        assert titles("view=recent") == ["c", "a"]
        assert titles("view=all") == ["c", "b", "a"]
        assert titles("view=most-wanted") == ["c", "a"]
        assert titles("view=all&limit=1") == ["c"]
        assert titles("view=all&tags=api") == ["c"]


@pytest.mark.parametrize(
    "cursor",
    [
        {"version": 2},
        {"version": 1, "gone": ["x"]},
        {"version": 1, "pass": {"mode": "refresh", "stage": "dance", "started_at": "x"}},
    ],
)
def test_unusable_cursor_is_bad_cursor(cursor: dict[str, Any]) -> None:
    with pytest.raises(BadCursor):
        make(FakeFiderApi()).pull(cursor)


@pytest.mark.parametrize(
    "config",
    [{}, {"base_url": "feedback"}, {"base_url": BASE_URL, "limit": 0}],
)
def test_invalid_config_is_config_error(config: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        FiderConnector(config, env={})


def test_registered_under_fider() -> None:
    connector = registry.create("fider", {"base_url": BASE_URL}, env={})
    assert isinstance(connector, FiderConnector)

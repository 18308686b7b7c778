"""Canny connector against the local fake (tests/connectors/fakes/canny_api.py)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from connectors import registry
from connectors.base import Page, SourceItem
from connectors.canny import CannyConnector
from connectors.errors import (
    AuthFailed,
    BadCursor,
    ConfigError,
    RateLimited,
    RequestRejected,
    UpstreamError,
)
from connectors.http import RetryPolicy
from tests.connectors.contract import drain, ids
from tests.connectors.fakes import json_response
from tests.connectors.fakes.canny_api import API_KEY, API_KEY_ENV, BASE_URL, START, FakeCannyApi


class Clock:
    def __init__(self) -> None:
        self.now = START + timedelta(days=1)

    def __call__(self) -> datetime:
        return self.now


def make(
    api: FakeCannyApi,
    clock: Clock | None = None,
    *,
    sleeps: list[float] | None = None,
    key: str = API_KEY,
    transport: httpx.BaseTransport | None = None,
    **config: Any,
) -> CannyConnector:
    recorded = sleeps if sleeps is not None else []
    return CannyConnector(
        {"api_key_env": API_KEY_ENV, "base_url": BASE_URL, "page_size": 10, **config},
        env={API_KEY_ENV: key},
        transport=transport or api.transport(),
        policy=RetryPolicy(max_retries=2, sleep=recorded.append),
        now=clock or Clock(),
    )


def by_id(items: list[SourceItem]) -> dict[str, SourceItem]:
    return {item.external_id: item for item in items}


def synced(api: FakeCannyApi, clock: Clock | None = None, **config: Any) -> dict[str, Any]:
    """The cursor after a complete first sync."""
    cursor = drain(make(api, clock, **config), None, 50).final_cursor
    assert cursor is not None
    return cursor


def test_first_sync_is_a_refresh_paging_with_has_more_over_every_status() -> None:
    api = FakeCannyApi()
    statuses = ["open", "under review", "planned", "in progress", "complete", "closed"]
    seeded = [api.add_post(f"Idea {n}", status=statuses[n % 6])["id"] for n in range(25)]

    result = drain(make(api), None, 50)

    assert sorted(ids(result.items)) == sorted(seeded)
    assert [page.has_more for page in result.pages] == [True, True, False]
    calls = api.posts_list_calls()
    assert [(c["skip"], c["limit"], c["sort"]) for c in calls] == [
        (0, 10, "oldest"),
        (10, 10, "oldest"),
        (20, 10, "oldest"),
    ]
    assert all(c["apiKey"] == API_KEY for c in calls)
    assert set(calls[0]["status"].split(",")) == set(statuses)
    assert {item.raw["andon"]["status"] for item in result.items} == set(statuses)
    assert all(item.raw["andon"]["refresh"] is True for item in result.items)


def test_the_fake_hides_closed_posts_unless_the_status_filter_asks_for_them() -> None:
    # Canny's default status filter is open-ish only: the reason the connector sends all.
    api = FakeCannyApi()
    api.add_post("Open idea", status="open")
    api.add_post("Done idea", status="complete")
    with httpx.Client(transport=api.transport(), base_url=BASE_URL) as client:
        default = client.post("/api/v1/posts/list", json={"apiKey": API_KEY}).json()
    assert [post["title"] for post in default["posts"]] == ["Open idea"]


def test_item_shape_and_andon_contract() -> None:
    api = FakeCannyApi()
    api.add_post("Dark mode", "Please add dark mode", status="planned", score=57, tags=("ui",))

    (item,) = drain(make(api), None, 10).items

    assert item.channel == "canny"
    assert item.kind == "idea"
    assert item.title == "Dark mode"
    assert item.text == "Dark mode\n\nPlease add dark mode"
    assert item.metrics == {"votes": 57, "comments": 0}
    assert item.created_at.utcoffset() == timedelta(0)
    assert item.author.display_name == "Lee Customer"
    assert item.url is not None
    assert item.url.endswith("/p/dark-mode")
    assert item.raw["score"] == 57  # the original payload is kept
    assert item.raw["andon"] == {
        "status": "planned",
        "tags": ["ui"],
        "board": "Feature Requests",
        "duplicate_of": None,
        "merged": [],
        "refresh": True,
    }
    json.dumps(dict(item.raw))


def test_incremental_sync_walks_newest_first_and_stops_at_the_watermark() -> None:
    api = FakeCannyApi()
    api.add_posts(25)
    cursor = synced(api)
    new = api.add_posts(13)
    calls_before = len(api.posts_list_calls())

    result = drain(make(api), cursor, 50)

    assert sorted(ids(result.items)) == sorted(new)
    calls = api.posts_list_calls()[calls_before:]
    assert [(c["skip"], c["sort"]) for c in calls] == [(0, "newest"), (10, "newest")]
    assert all(item.raw["andon"]["refresh"] is False for item in result.items)
    final = result.final_cursor
    assert final is not None
    assert final["watermark"]["id"] == new[-1]
    assert drain(make(api), final, 50).items == []


def test_interrupted_walk_resumes_without_loss_or_duplicates() -> None:
    api = FakeCannyApi()
    api.add_posts(5)
    cursor = synced(api)
    new = api.add_posts(25)

    first_page = make(api).pull(cursor)
    assert first_page.has_more is True
    stored = json.loads(json.dumps(first_page.next_cursor))
    # The watermark must not move before the newest-first walk is complete.
    assert stored["watermark"] == cursor["watermark"]
    assert stored["pass"]["mode"] == "incremental"
    assert stored["pass"]["skip"] == 10

    api.rate_limit_after(0)
    with pytest.raises(RateLimited):
        make(api).pull(stored)  # the runner keeps ``stored`` and tries again later

    rest = drain(make(api), stored, 50)  # a fresh connector: a restart
    got = ids(first_page.items) + ids(rest.items)
    assert Counter(got) == Counter(new)


def test_refresh_updates_votes_comments_and_status_under_the_same_ids() -> None:
    api = FakeCannyApi()
    posts = api.add_posts(12)
    clock = Clock()
    cursor = synced(api, clock)
    first_refreshed = cursor["refreshed_at"]
    api.set_votes(posts[3], 40)
    api.set_status(posts[3], "in progress")
    api.add_comment(posts[3], "Yes please")
    api.set_votes(posts[7], 2)

    # Before refresh_every_hours: incremental, nothing new, no vote updates.
    clock.now += timedelta(hours=23)
    assert drain(make(api, clock), cursor, 50).items == []

    clock.now += timedelta(hours=2)
    result = drain(make(api, clock), cursor, 50)

    assert sorted(ids(result.items)) == sorted(posts)
    items = by_id(result.items)
    assert items[posts[3]].metrics == {"votes": 40, "comments": 1}
    assert items[posts[3]].raw["andon"]["status"] == "in progress"
    updated_at = items[posts[3]].updated_at
    assert updated_at is not None
    assert updated_at > items[posts[3]].created_at
    assert items[posts[7]].metrics["votes"] == 2
    assert all(item.raw["andon"]["refresh"] for item in result.items)
    final = result.final_cursor
    assert final is not None
    assert final["refreshed_at"] == clock.now.isoformat() != first_refreshed


def test_refresh_also_picks_up_posts_created_meanwhile() -> None:
    api = FakeCannyApi(api_key=API_KEY)
    old = api.add_posts(4)
    clock = Clock()
    cursor = synced(api, clock)
    new = api.add_posts(3)
    clock.now += timedelta(hours=30)

    result = drain(make(api, clock), cursor, 50)

    assert sorted(ids(result.items)) == sorted(old + new)
    final = result.final_cursor
    assert final is not None
    assert final["watermark"]["id"] == new[-1]
    clock.now += timedelta(hours=1)
    assert drain(make(api, clock), final, 50).items == []  # incremental again, nothing new


def test_deleted_post_is_simply_not_returned_by_the_refresh() -> None:
    api = FakeCannyApi()
    posts = api.add_posts(6)
    clock = Clock()
    cursor = synced(api, clock)
    api.delete_post(posts[2])
    clock.now += timedelta(days=2)

    result = drain(make(api, clock), cursor, 50)

    assert sorted(ids(result.items)) == sorted(set(posts) - {posts[2]})
    assert all(not page.rejects for page in result.pages)


def test_merged_post_is_linked_to_the_original_so_votes_count_once() -> None:
    api = FakeCannyApi()
    original = api.add_post("Dark mode", score=10)["id"]
    merged = api.add_post("Night theme", "same thing", score=4)["id"]
    other = api.add_post("Export CSV", score=3)["id"]
    clock = Clock()
    cursor = synced(api, clock)
    api.merge(merged, into=original)
    clock.now += timedelta(days=2)

    result = drain(make(api, clock), cursor, 50)

    items = by_id(result.items)
    assert set(items) == {original, merged, other}
    assert items[merged].raw["andon"]["duplicate_of"] == original
    assert items[merged].text == "Night theme\n\nsame thing"
    assert items[original].raw["andon"]["merged"] == [merged]
    assert items[original].raw["andon"]["duplicate_of"] is None
    assert items[original].metrics["votes"] == 14
    demand = sum(
        item.metrics["votes"] for item in items.values() if not item.raw["andon"]["duplicate_of"]
    )
    assert demand == 17  # 10 + 4 moved into the original, + 3; the merged 4 not twice


def test_comments_become_items_linked_to_their_post() -> None:
    api = FakeCannyApi()
    post = api.add_post("Dark mode")["id"]
    visible = [api.add_comment(post, f"comment {n}")["id"] for n in range(12)]
    api.add_comment(post, "internal note: tracked in JIRA-1", internal=True)

    first = drain(make(api, comments=True), None, 50)

    comments = [item for item in first.items if item.kind == "comment"]
    assert sorted(ids(comments)) == sorted(visible)
    assert all(item.thread_id == post for item in comments)
    assert all(item.channel == "canny" for item in comments)
    assert all(item.raw["andon"]["duplicate_of"] is None for item in comments)
    assert by_id(comments)[visible[0]].text == "comment 0"
    assert [i.external_id for i in first.items if i.kind == "idea"] == [post]

    newer = api.add_comment(post, "one more")["id"]
    second = drain(make(api, comments=True), first.final_cursor, 50)
    assert ids(second.items) == [newer]
    assert second.items[0].thread_id == post


def test_rate_limit_becomes_rate_limited_with_the_servers_wait() -> None:
    api = FakeCannyApi()
    api.add_posts(3)
    api.rate_limit_after(0, retry_after="42")

    with pytest.raises(RateLimited) as caught:
        make(api).pull(None)

    assert caught.value.retry_after == 42
    assert API_KEY not in str(caught.value)
    assert len(api.calls) == 1  # 429 is never retried inside the connector


def test_5xx_once_is_retried_with_backoff() -> None:
    api = FakeCannyApi()
    seeded = api.add_posts(3)
    api.faults.add("503")
    sleeps: list[float] = []

    page = make(api, sleeps=sleeps).pull(None)

    assert sorted(ids(page.items)) == sorted(seeded)
    assert len(sleeps) == 1
    assert len(api.calls) == 2


def test_5xx_that_persists_becomes_upstream_error_without_the_key() -> None:
    api = FakeCannyApi()
    api.add_posts(3)
    api.faults.add("500", times=3)

    with pytest.raises(UpstreamError) as caught:
        make(api).pull(None)

    assert "500" in str(caught.value)
    assert API_KEY not in str(caught.value)


def test_malformed_post_is_rejected_with_payload_and_reason() -> None:
    api = FakeCannyApi()
    posts = api.add_posts(4)
    api.corrupt(posts[1], score="lots")
    api.corrupt(posts[2], created="yesterday")

    page = make(api).pull(None)

    assert sorted(ids(page.items)) == sorted([posts[0], posts[3]])
    reasons = {reject.external_id: reject.reason for reject in page.rejects}
    assert set(reasons) == {posts[1], posts[2]}
    assert "score" in reasons[posts[1]]
    assert "created" in reasons[posts[2]]
    for reject in page.rejects:
        assert json.loads(reject.payload)["id"] == reject.external_id
        assert reject.location is not None
        assert "posts/list" in reject.location
        assert API_KEY not in reject.payload


@pytest.mark.parametrize("status", [401, 400])
def test_invalid_key_is_auth_failed_and_never_in_the_error(status: int) -> None:
    api = FakeCannyApi(auth_status=status)
    wrong = "wrong-secret-Xy81"

    with pytest.raises(AuthFailed) as caught:
        make(api, key=wrong).pull(None)

    text = str(caught.value)
    assert "invalid api key" in text
    assert wrong not in text
    assert API_KEY not in text
    assert api.calls[0][1]["apiKey"] == wrong  # the key travels in the body, not the URL


def test_missing_key_names_the_variable_not_the_secret() -> None:
    api = FakeCannyApi()
    connector = CannyConnector(
        {"api_key_env": API_KEY_ENV, "base_url": BASE_URL}, env={}, transport=api.transport()
    )
    with pytest.raises(AuthFailed, match=API_KEY_ENV):
        connector.pull(None)
    assert api.calls == []


def test_key_is_scrubbed_even_if_upstream_echoes_it() -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        return json_response(422, {"error": f"bad request {body}"})

    connector = make(FakeCannyApi(), transport=httpx.MockTransport(echo))
    with pytest.raises(RequestRejected) as caught:
        connector.pull(None)
    assert API_KEY not in str(caught.value)
    assert API_KEY not in caught.value.body
    assert "***" in str(caught.value)
    assert API_KEY not in repr(connector)


def test_a_page_served_again_ends_the_walk_instead_of_looping() -> None:
    api = FakeCannyApi()
    seeded = api.add_posts(15)
    api.repeat_pages = True

    result = drain(make(api), None, 10)

    assert len(result.pages) == 2
    assert sorted(ids(result.items)) == sorted(seeded[:10])
    assert result.pages[-1].has_more is False


def test_board_id_is_sent_and_checked() -> None:
    api = FakeCannyApi()
    api.add_board("b2", "Bugs")
    api.add_post("In features", board="b1")
    bug = api.add_post("In bugs", board="b2")["id"]

    connector = make(api, board_id="b2")
    connector.check()
    assert ids(drain(connector, None, 10).items) == [bug]
    assert api.posts_list_calls()[0]["boardID"] == "b2"

    with pytest.raises(ConfigError, match="b9"):
        make(api, board_id="b9").check()


def test_check_with_a_bad_key_fails() -> None:
    with pytest.raises(AuthFailed):
        make(FakeCannyApi(), key="nope-nope").check()


@pytest.mark.parametrize(
    "cursor",
    [
        {"version": 99},
        {"version": 1, "watermark": {"created": "yesterday", "id": "x"}},
        {"version": 1, "pass": {"mode": "sideways", "skip": 0, "started_at": "2024-01-01"}},
        {"version": 1, "pass": {"mode": "refresh", "skip": -1, "started_at": "2024-01-01"}},
    ],
)
def test_unusable_cursor_is_bad_cursor(cursor: dict[str, Any]) -> None:
    with pytest.raises(BadCursor):
        make(FakeCannyApi()).pull(cursor)


@pytest.mark.parametrize(
    "config",
    [
        {"api_key_env": ""},
        {"api_key_env": API_KEY_ENV, "page_size": 500},
        {"api_key_env": API_KEY_ENV, "comments": "yes"},
        {"api_key_env": API_KEY_ENV, "refresh_every_hours": -1},
        {"api_key_env": API_KEY_ENV, "base_url": "ftp://canny"},
    ],
)
def test_invalid_config_is_config_error(config: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        CannyConnector(config, env={})


def test_registered_under_canny() -> None:
    connector = registry.create("canny", {"api_key_env": API_KEY_ENV}, env={API_KEY_ENV: API_KEY})
    assert isinstance(connector, CannyConnector)
    assert "canny" in registry.kinds()


def test_every_page_is_json_round_trippable() -> None:
    api = FakeCannyApi()
    api.add_posts(12)
    pages: list[Page] = drain(make(api, comments=True), None, 50).pages
    for page in pages:
        assert json.loads(json.dumps(page.next_cursor)) == page.next_cursor

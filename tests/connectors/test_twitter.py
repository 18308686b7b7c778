"""X connector against the local fake API: paging, the watermark, fallbacks, normalisation."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from connectors import registry
from connectors.base import Cursor, Page
from connectors.errors import (
    AuthFailed,
    BadCursor,
    ConfigError,
    ProtocolError,
    RateLimited,
    RequestRejected,
    UpstreamError,
)
from connectors.twitter import TwitterConnector
from tests.connectors.fakes import json_response
from tests.connectors.fakes.twitter_api import TOKEN, TOKEN_ENV, FakeXApi, snowflake

NOW = datetime(2026, 5, 13, 12, 0, tzinfo=UTC)


@pytest.fixture
def api() -> FakeXApi:
    return FakeXApi(now=lambda: NOW)


def make(api: FakeXApi, **config: Any) -> TwitterConnector:
    settings: dict[str, Any] = {"mode": "search", "query": "acme", "max_results": 10}
    settings.update(config)
    return TwitterConnector(
        settings,
        env={TOKEN_ENV: TOKEN},
        transport=api.transport(),
        sleep=lambda _: None,
        now=lambda: NOW,
    )


def seed(api: FakeXApi, count: int, text: str = "acme feedback") -> list[dict[str, Any]]:
    author = api.users.get("1000") or api.add_user("dana_dev", name="Dana", followers=812)
    return [api.add_tweet(f"{text} {n}", author=author) for n in range(count)]


def sync(connector: TwitterConnector, cursor: Cursor | None) -> tuple[list[Page], Cursor | None]:
    pages = []
    for _ in range(50):
        page = connector.pull(cursor)
        pages.append(page)
        cursor = json.loads(json.dumps(page.next_cursor))
        if not page.has_more:
            return pages, cursor
    raise AssertionError("sync did not end")


def external_ids(pages: list[Page]) -> list[str]:
    return [item.external_id for page in pages for item in page.items]


def test_pages_through_next_token_newest_first(api: FakeXApi) -> None:
    tweets = seed(api, 25)

    pages, cursor = sync(make(api), None)

    assert [len(page.items) for page in pages] == [10, 10, 5]
    assert external_ids(pages) == [t["id"] for t in reversed(tweets)]
    assert cursor == {"since_id": tweets[-1]["id"]}
    first = api.requests[0].url.params
    assert first["query"] == "acme"
    assert first["expansions"] == "author_id"
    assert {"created_at", "public_metrics", "edit_history_tweet_ids", "lang"} <= set(
        first["tweet.fields"].split(",")
    )
    assert "since_id" not in first
    # No watermark yet: the lookback window, with a margin so it stays inside 7 days.
    assert first["start_time"] == "2026-05-06T12:01:00Z"
    second = api.requests[1].url.params
    assert second["next_token"]
    assert second["start_time"] == first["start_time"]


def test_cursor_while_walking_carries_the_pending_chain(api: FakeXApi) -> None:
    old = seed(api, 3)
    _, at_rest = sync(make(api), None)
    new = seed(api, 15)

    page = make(api).pull(at_rest)

    assert page.has_more is True
    assert page.next_cursor is not None
    assert page.next_cursor["since_id"] == old[-1]["id"]  # not moved yet
    assert page.next_cursor["newest_id"] == new[-1]["id"]
    assert page.next_cursor["next_token"]


def test_watermark_moves_only_after_the_whole_chain(api: FakeXApi) -> None:
    seed(api, 2)
    _, at_rest = sync(make(api), None)
    new = seed(api, 25)
    connector = make(api)

    first = connector.pull(at_rest)
    stored = json.dumps(first.next_cursor)
    api.faults.add("503", times=4)  # more than the retries: the sync fails mid-chain
    with pytest.raises(UpstreamError):
        connector.pull(json.loads(stored))

    # Restart from what the runner stored: nothing lost, nothing twice.
    rest, final = sync(make(api), json.loads(stored))
    got = [item.external_id for item in first.items] + external_ids(rest)
    assert sorted(got) == sorted(t["id"] for t in new)
    assert len(got) == len(set(got))
    assert final == {"since_id": new[-1]["id"]}


def test_interrupted_first_sync_resumes_without_loss(api: FakeXApi) -> None:
    tweets = seed(api, 21)
    first = make(api).pull(None)
    assert first.next_cursor is not None
    assert first.next_cursor["since_id"] is None
    api.faults.add("timeout", times=4)
    with pytest.raises(UpstreamError, match="timed out"):
        make(api).pull(first.next_cursor)

    rest, final = sync(make(api), first.next_cursor)

    got = [item.external_id for item in first.items] + external_ids(rest)
    assert sorted(got) == sorted(t["id"] for t in tweets)
    assert final == {"since_id": tweets[-1]["id"]}


def test_transient_5xx_is_retried_inside_one_pull(api: FakeXApi) -> None:
    seed(api, 3)
    api.faults.add("502")

    page = make(api).pull(None)

    assert len(page.items) == 3
    assert len(api.requests) == 2


def test_empty_result_keeps_the_watermark(api: FakeXApi) -> None:
    tweets = seed(api, 4)
    _, at_rest = sync(make(api), None)

    page = make(api).pull(at_rest)

    assert page.items == []
    assert page.has_more is False
    assert page.next_cursor == {"since_id": tweets[-1]["id"]}
    assert api.requests[-1].url.params["since_id"] == tweets[-1]["id"]
    assert "start_time" not in api.requests[-1].url.params


def test_empty_first_sync_has_no_watermark(api: FakeXApi) -> None:
    page = make(api).pull(None)

    assert page == Page(items=[], next_cursor={}, has_more=False)


def test_stale_since_id_falls_back_to_the_window_start(api: FakeXApi) -> None:
    tweets = seed(api, 5)
    stale = {"since_id": snowflake(NOW - timedelta(days=8))}

    pages, cursor = sync(make(api), stale)

    assert external_ids(pages) == [t["id"] for t in reversed(tweets)]
    assert cursor == {"since_id": tweets[-1]["id"]}
    refused, retried = api.requests
    assert refused.url.params["since_id"] == stale["since_id"]
    assert "since_id" not in retried.url.params
    assert retried.url.params["start_time"] == "2026-05-06T12:01:00Z"


def test_other_400_is_request_rejected() -> None:
    problem = {
        "errors": [{"parameters": {"query": ["acme ("]}, "message": "There were errors"}],
        "title": "Invalid Request",
        "detail": "One or more parameters to your request was invalid.",
        "type": "https://api.twitter.com/2/problems/invalid-request",
    }
    connector = TwitterConnector(
        {"query": "acme ("},
        env={TOKEN_ENV: TOKEN},
        transport=httpx.MockTransport(lambda request: json_response(400, problem)),
    )

    with pytest.raises(RequestRejected) as caught:
        connector.pull({"since_id": "1790000000000000002"})

    assert caught.value.status == 400
    assert "query" in caught.value.body


def test_expired_next_token_restarts_the_chain(api: FakeXApi) -> None:
    tweets = seed(api, 12)
    cursor = {"since_id": None, "start_time": None, "next_token": "not-a-token", "newest_id": None}

    pages, final = sync(make(api), cursor)

    assert sorted(external_ids(pages)) == sorted(t["id"] for t in tweets)
    assert final == {"since_id": tweets[-1]["id"]}


def test_repeated_next_token_is_a_protocol_error() -> None:
    body = {"meta": {"result_count": 0, "next_token": "same"}}
    connector = TwitterConnector(
        {"query": "acme"},
        env={TOKEN_ENV: TOKEN},
        transport=httpx.MockTransport(lambda request: json_response(200, body)),
    )

    with pytest.raises(ProtocolError, match="repeated"):
        connector.pull({"next_token": "same", "since_id": "5", "newest_id": "9"})


def test_retweets_are_skipped_by_default(api: FakeXApi) -> None:
    author = api.add_user("dana_dev")
    fan = api.add_user("fan")
    original = api.add_tweet("acme is great", author=author)
    api.retweet(original, by=fan)

    page = make(api).pull(None)

    assert [item.external_id for item in page.items] == [original["id"]]
    assert page.rejects == []


def test_retweets_can_be_kept_linked_to_the_original(api: FakeXApi) -> None:
    author = api.add_user("dana_dev")
    fan = api.add_user("fan")
    original = api.add_tweet("acme is great", author=author)
    retweet = api.retweet(original, by=fan)

    page = make(api, retweets="link").pull(None)

    linked = page.items[0]
    assert linked.external_id == retweet["id"]
    assert linked.thread_id == original["id"]
    assert linked.raw["referenced_tweets"] == [{"type": "retweeted", "id": original["id"]}]
    assert linked.author.handle == "fan"
    assert page.items[1].external_id == original["id"]


def test_an_edit_updates_the_item_it_edits(api: FakeXApi) -> None:
    author = api.add_user("dana_dev")
    original = api.add_tweet("acme export is broken", author=author)
    first = make(api).pull(None)
    edited = api.edit(original, "acme export is broken since Monday")

    second = make(api).pull(first.next_cursor)

    assert [item.external_id for item in first.items] == [original["id"]]
    (item,) = second.items
    assert item.external_id == original["id"]
    assert item.raw["id"] == edited["id"]
    assert item.text == "acme export is broken since Monday"
    assert item.updated_at == item.created_at
    assert item.url == f"https://x.com/dana_dev/status/{edited['id']}"
    assert second.next_cursor == {"since_id": edited["id"]}


def test_normalises_author_metrics_lang_and_thread(api: FakeXApi) -> None:
    dana = api.add_user("dana_dev", name="Dana", followers=812)
    root = api.add_tweet("acme question", author=dana, lang="und")
    reply = api.add_tweet(
        "@dana_dev acme answer", author=dana, reply_to=root, likes=3, retweets=2, replies=1
    )

    page = make(api).pull(None)

    by_id = {item.external_id: item for item in page.items}
    item = by_id[reply["id"]]
    assert item.channel == "twitter"
    assert item.kind == "post"
    assert item.author.id == dana["id"]
    assert item.author.handle == "dana_dev"
    assert item.author.display_name == "Dana"
    assert item.author.followers == 812
    assert item.metrics == {"likes": 3, "reposts": 2, "replies": 1, "quotes": 0}
    assert item.lang == "en"
    assert item.thread_id == root["id"]
    assert item.url == f"https://x.com/dana_dev/status/{reply['id']}"
    assert item.created_at.tzinfo is not None
    assert item.created_at == datetime.fromisoformat(reply["created_at"].replace("Z", "+00:00"))
    assert by_id[root["id"]].lang is None
    assert by_id[root["id"]].thread_id is None


def test_malformed_tweets_are_rejected_and_the_page_kept(api: FakeXApi) -> None:
    dana = api.add_user("dana_dev")
    good = api.add_tweet("acme fine", author=dana)
    no_date = api.add_tweet(
        "acme no date", author=dana, wire_edit=lambda wire: wire.pop("created_at")
    )
    bad_date = api.add_tweet(
        "acme bad date", author=dana, wire_edit=lambda wire: wire.update(created_at="yesterday")
    )
    no_text = api.add_tweet("acme no text", author=dana, wire_edit=lambda wire: wire.pop("text"))
    newest = api.add_tweet("acme also fine", author=dana)

    page = make(api).pull(None)

    assert [item.external_id for item in page.items] == [newest["id"], good["id"]]
    reasons = {reject.external_id: reject.reason for reject in page.rejects}
    assert reasons == {
        no_text["id"]: "missing 'text'",
        bad_date["id"]: "invalid 'created_at' 'yesterday'",
        no_date["id"]: "missing 'created_at'",
    }
    payload = json.loads(page.rejects[0].payload)
    assert payload["id"] == no_text["id"]
    assert "text" not in payload
    assert page.next_cursor == {"since_id": newest["id"]}


def test_mentions_use_pagination_token(api: FakeXApi) -> None:
    brand = api.add_user("acme", user_id="42")
    dana = api.add_user("dana_dev")
    mentions = [api.add_tweet(f"@acme help {n}", author=dana) for n in range(12)]
    api.add_tweet("not about the brand", author=dana)

    pages, cursor = sync(make(api, mode="mentions", user_id=brand["id"], max_results=5), None)

    assert external_ids(pages) == [t["id"] for t in reversed(mentions)]
    assert [len(page.items) for page in pages] == [5, 5, 2]
    assert api.requests[0].url.path == "/2/users/42/mentions"
    assert "pagination_token" in api.requests[1].url.params
    assert "next_token" not in api.requests[1].url.params
    assert cursor == {"since_id": mentions[-1]["id"]}


def test_rate_limit_reports_the_reset(api: FakeXApi) -> None:
    seed(api, 1)
    api.rate_limit_after(0)

    with pytest.raises(RateLimited) as caught:
        make(api).pull(None)

    assert 850 < caught.value.retry_after <= 900


def test_missing_token_names_the_variable_only(api: FakeXApi) -> None:
    connector = TwitterConnector(
        {"query": "acme", "bearer_token_env": "ACME_X_TOKEN"},
        env={"OTHER": TOKEN},
        transport=api.transport(),
    )

    with pytest.raises(AuthFailed, match="ACME_X_TOKEN") as caught:
        connector.check()

    assert TOKEN not in str(caught.value)
    assert api.requests == []


@pytest.mark.parametrize("status", [401, 403])
def test_refused_token_is_auth_failed_without_the_token(status: int) -> None:
    secret = "s3cret-bearer-value"
    body = {"title": "Unauthorized", "type": "about:blank", "status": status}
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return json_response(status, body)

    connector = TwitterConnector(
        {"query": "acme"}, env={TOKEN_ENV: secret}, transport=httpx.MockTransport(handler)
    )

    for call in (connector.check, lambda: connector.pull(None)):
        with pytest.raises(AuthFailed) as caught:
            call()
        assert secret not in str(caught.value)
    assert seen[0].headers["authorization"] == f"Bearer {secret}"
    assert secret not in repr(connector)


def test_check_makes_one_small_authenticated_request(api: FakeXApi) -> None:
    make(api).check()

    (request,) = api.requests
    assert request.url.params["max_results"] == "10"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize(
    "cursor",
    [
        {"since_id": "abc"},
        {"since_id": 5},
        {"next_token": ""},
        {"start_time": "yesterday"},
        {"page": 2},
    ],
)
def test_unusable_cursor_is_bad_cursor(api: FakeXApi, cursor: Cursor) -> None:
    with pytest.raises(BadCursor):
        make(api).pull(cursor)


@pytest.mark.parametrize(
    "config",
    [
        {"mode": "search"},
        {"mode": "mentions"},
        {"mode": "mentions", "user_id": "dana"},
        {"mode": "timeline", "query": "acme"},
        {"query": "acme", "max_results": 5},
        {"query": "acme", "retweets": "keep"},
        {"query": "acme", "lookback_days": 8},
        {"query": "acme", "base_url": "ftp://example"},
    ],
)
def test_invalid_config_is_config_error(config: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        TwitterConnector(config, env={})


def test_registered_under_twitter(api: FakeXApi) -> None:
    connector = registry.create(
        "twitter", {"query": "acme"}, env={TOKEN_ENV: TOKEN}, transport=api.transport()
    )

    assert isinstance(connector, TwitterConnector)
    assert "twitter" in registry.kinds()


def test_unknown_mentions_user_is_a_config_error(api: FakeXApi) -> None:
    connector = make(api, mode="mentions", user_id="999999", max_results=5)

    with pytest.raises(ConfigError, match=r"Could not find user with id: \[999999\]"):
        connector.check()
    with pytest.raises(ConfigError):
        connector.pull(None)


def test_fake_speaks_the_wire_format(api: FakeXApi) -> None:
    """The fake itself: default fields, absent data, documented meta, limit headers."""
    dana = api.add_user("dana_dev")
    tweet = api.add_tweet("acme hello", author=dana)
    client = httpx.Client(
        transport=api.transport(),
        base_url="https://api.twitter.com",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )

    bare = client.get("/2/tweets/search/recent", params={"query": "acme"})
    empty = client.get("/2/tweets/search/recent", params={"query": "acme", "since_id": tweet["id"]})
    unknown = client.get("/2/tweets/search/recent", params={"query": "acme", "page": "2"})
    anonymous = httpx.Client(transport=api.transport()).get(
        "https://api.twitter.com/2/tweets/search/recent", params={"query": "acme"}
    )

    assert bare.json() == {
        "data": [
            {"id": tweet["id"], "text": "acme hello", "edit_history_tweet_ids": [tweet["id"]]}
        ],
        "meta": {"newest_id": tweet["id"], "oldest_id": tweet["id"], "result_count": 1},
    }
    assert empty.json() == {"meta": {"result_count": 0}}
    assert unknown.status_code == 400
    assert unknown.json()["type"] == "https://api.twitter.com/2/problems/invalid-request"
    assert anonymous.status_code == 401
    for response in (bare, empty, unknown, anonymous):
        assert {"x-rate-limit-limit", "x-rate-limit-remaining", "x-rate-limit-reset"} <= set(
            response.headers
        )


def test_chain_resumed_after_the_window_moved_restarts_from_the_window(api: FakeXApi) -> None:
    tweets = seed(api, 4)
    stale_chain = {
        "since_id": None,
        "start_time": "2026-05-05T12:00:00Z",  # inside the window when the chain began
        "next_token": "stale",
        "newest_id": None,
    }

    pages, cursor = sync(make(api), stale_chain)

    assert sorted(external_ids(pages)) == sorted(t["id"] for t in tweets)
    assert cursor == {"since_id": tweets[-1]["id"]}
    assert api.requests[-1].url.params["start_time"] == "2026-05-06T12:01:00Z"

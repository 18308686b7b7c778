"""Zendesk connector against the local fake (tests/connectors/fakes/zendesk_api.py)."""

from __future__ import annotations

import json
from datetime import timedelta
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
from connectors.registry import create
from connectors.zendesk import ZendeskConnector
from tests.connectors.fakes.zendesk_api import (
    EXPORT_LAG,
    OAUTH_TOKEN_ENV,
    TOKEN,
    TOKEN_ENV,
    FakeZendeskApi,
    connector_for,
)


def fake(**kwargs: Any) -> FakeZendeskApi:
    api = FakeZendeskApi(**kwargs)
    api.advance(3600)
    return api


def seed(api: FakeZendeskApi, count: int, *, settle: bool = True) -> list[str]:
    ids = [str(api.add_ticket(f"Subject {n}", f"Description {n}")["id"]) for n in range(count)]
    if settle:
        api.advance(EXPORT_LAG + 5)
    return ids


def roundtrip(cursor: Cursor | None) -> Cursor | None:
    loaded: Cursor | None = json.loads(json.dumps(cursor))
    return loaded


def drain(connector: ZendeskConnector, cursor: Cursor | None) -> tuple[list[Page], Cursor | None]:
    pages: list[Page] = []
    for _ in range(100):
        page = connector.pull(cursor)
        pages.append(page)
        cursor = roundtrip(page.next_cursor)
        if not page.has_more:
            return pages, cursor
    raise AssertionError("never reached end_of_stream")


def external_ids(pages: list[Page]) -> list[str]:
    return [item.external_id for page in pages for item in page.items]


def export_requests(api: FakeZendeskApi) -> list[dict[str, str]]:
    return [
        dict(request.url.params)
        for request in api.requests
        if request.url.path.endswith("/incremental/tickets/cursor.json")
    ]


def test_pages_oldest_first_until_end_of_stream() -> None:
    api = fake()
    expected = seed(api, 25)

    pages, cursor = drain(connector_for(api, per_page=10), None)

    assert [len(page.items) for page in pages] == [10, 10, 5]
    assert [page.has_more for page in pages] == [True, True, False]
    assert external_ids(pages) == expected
    sent = export_requests(api)
    assert "start_time" in sent[0]
    assert "cursor" not in sent[0]
    assert all("cursor" in params and "start_time" not in params for params in sent[1:])
    assert sent[0]["include"] == "users"
    assert cursor is not None
    assert set(cursor) == {"after_cursor"}


def test_ticket_item_shape_and_andon_contract() -> None:
    api = fake()
    requester = api.add_user("Grace Customer", "grace@customer.example")
    ticket = api.add_ticket(
        "Export fails", "When I click export nothing happens", requester=requester,
        status="open", priority="high", tags=("export", "bug"),
    )  # fmt: skip
    api.advance(EXPORT_LAG + 5)

    page = connector_for(api).pull(None)

    (item,) = page.items
    assert item.channel == "zendesk"
    assert item.kind == "ticket"
    assert item.external_id == str(ticket["id"])
    assert item.title == "Export fails"
    assert item.text == "When I click export nothing happens"
    assert item.thread_id == str(ticket["id"])
    assert item.url == f"https://acme.zendesk.com/agent/tickets/{ticket['id']}"
    assert item.author.id == str(requester["id"])
    assert item.author.display_name == "Grace Customer"
    assert item.author.email == "grace@customer.example"
    assert item.created_at.utcoffset() is not None
    assert item.raw["andon"] == {
        "status": "open",
        "priority": "high",
        "tags": ["export", "bug"],
        "deleted": False,
    }
    assert item.raw["subject"] == "Export fails"


def test_without_users_sideload_the_author_is_only_an_id() -> None:
    api = fake()
    ticket = api.add_ticket("Hi", "Hello")
    api.advance(EXPORT_LAG + 5)

    page = connector_for(api, include_users=False).pull(None)

    assert "include" not in export_requests(api)[0]
    assert page.items[0].author.id == str(ticket["requester_id"])
    assert page.items[0].author.display_name is None


def test_start_time_respects_the_one_minute_lag() -> None:
    api = fake()
    seed(api, 3, settle=False)  # changed seconds ago: the export does not show them yet
    future = api.now.timestamp() + 3600

    page = connector_for(api, start_time=int(future)).pull(None)

    start_time = int(export_requests(api)[0]["start_time"])
    assert start_time <= api.now.timestamp() - EXPORT_LAG
    assert page.items == []
    assert page.has_more is False


def test_configured_start_time_skips_older_tickets() -> None:
    api = fake()
    seed(api, 3)
    since = api.now
    newer = seed(api, 2)

    pages, _ = drain(connector_for(api, start_time=since.isoformat()), None)

    assert external_ids(pages) == newer


def test_cursor_survives_a_restart_without_loss_or_duplicates() -> None:
    api = fake()
    first_batch = seed(api, 12)
    connector = connector_for(api, per_page=5)
    first = connector.pull(None)
    stored = json.dumps(first.next_cursor)  # the process stops here

    restarted = connector_for(api, per_page=5)
    rest, cursor = drain(restarted, json.loads(stored))
    assert external_ids([first, *rest]) == first_batch

    updated = api.update_ticket(int(first_batch[0]), status="solved")
    later = seed(api, 3)
    again, _ = drain(connector_for(api, per_page=5), cursor)

    assert external_ids(again) == [str(updated["id"]), *later]
    assert again[0].items[0].raw["andon"]["status"] == "solved"


def test_budget_raises_rate_limited_before_sending() -> None:
    api = fake(export_limit=1000)  # the connector, not the fake, must stop here
    seed(api, 15)
    connector = connector_for(api, per_page=1)
    cursor: Cursor | None = None
    for _ in range(10):
        cursor = roundtrip(connector.pull(cursor).next_cursor)
        api.advance(2)
    sent = len(api.requests)

    with pytest.raises(RateLimited) as caught:
        connector.pull(cursor)

    assert len(api.requests) == sent  # nothing went out
    # The first of the ten went out 20 s ago: it leaves the window in 40 s.
    assert caught.value.retry_after == pytest.approx(40, abs=0.01)
    api.advance(caught.value.retry_after)
    page = connector.pull(cursor)
    assert len(page.items) == 1


def test_budget_is_configurable_for_high_volume_accounts() -> None:
    api = fake(export_limit=1000)
    seed(api, 40)
    connector = connector_for(api, per_page=1, requests_per_minute=30)
    cursor: Cursor | None = None
    for _ in range(30):
        cursor = roundtrip(connector.pull(cursor).next_cursor)
    with pytest.raises(RateLimited):
        connector.pull(cursor)


def test_a_real_429_becomes_rate_limited_and_blocks_until_retry_after() -> None:
    api = fake()
    expected = seed(api, 4)
    connector = connector_for(api, per_page=2)
    first = connector.pull(None)
    api.rate_limit_next(retry_after=37)

    with pytest.raises(RateLimited) as caught:
        connector.pull(roundtrip(first.next_cursor))
    assert caught.value.retry_after == 37
    sent = len(api.requests)
    with pytest.raises(RateLimited):
        connector.pull(roundtrip(first.next_cursor))
    assert len(api.requests) == sent  # still waiting: no request

    api.advance(37)
    rest, _ = drain(connector, roundtrip(first.next_cursor))
    assert external_ids([first, *rest]) == expected


def test_the_fakes_own_limit_answers_429_when_the_budget_is_raised() -> None:
    api = fake()  # 10 a minute, as Zendesk
    seed(api, 15)
    connector = connector_for(api, per_page=1, requests_per_minute=50)
    cursor: Cursor | None = None
    for _ in range(10):
        cursor = roundtrip(connector.pull(cursor).next_cursor)
    with pytest.raises(RateLimited) as caught:
        connector.pull(cursor)
    assert len(api.requests) == 11  # this time the request went out and got a 429
    assert caught.value.retry_after == 60


def test_5xx_is_retried_with_backoff() -> None:
    api = fake()
    expected = seed(api, 3)
    api.faults.add("503")
    api.faults.add("timeout")
    sleeps: list[float] = []
    connector = ZendeskConnector(
        {"subdomain": "acme", "email": api.email, "token_env": TOKEN_ENV},
        env={TOKEN_ENV: TOKEN},
        transport=api.transport(),
        sleep=sleeps.append,
        now=api.clock,
    )

    page = connector.pull(None)

    assert external_ids([page]) == expected
    assert len(sleeps) == 2
    assert len(api.requests) == 3


def test_5xx_that_persists_is_an_upstream_error() -> None:
    api = fake()
    seed(api, 1)
    api.faults.add("500", times=4)

    with pytest.raises(UpstreamError):
        connector_for(api).pull(None)


def test_deleted_tickets_are_kept_and_marked() -> None:
    api = fake()
    keep, gone = seed(api, 2, settle=False)
    api.delete_ticket(int(gone))
    api.advance(EXPORT_LAG + 5)

    page = connector_for(api).pull(None)

    by_id = {item.external_id: item for item in page.items}
    assert by_id[gone].raw["andon"]["deleted"] is True
    assert by_id[gone].raw["andon"]["status"] == "deleted"
    assert by_id[keep].raw["andon"]["deleted"] is False


def test_requester_public_comments_become_follow_up_messages() -> None:
    api = fake()
    requester = api.add_user("Grace Customer", "grace@customer.example")
    ticket = api.add_ticket("Export fails", "It fails", requester=requester)
    ticket_id = ticket["id"]
    agent_reply = api.add_comment(ticket_id, "Have you tried again?", author_id=api.agent["id"])
    note = api.add_comment(ticket_id, "my own private remark", public=False)
    follow_up = api.add_comment(ticket_id, "Yes, still broken")
    quiet = api.add_ticket("Only a description", "Nothing more")
    deleted = api.add_ticket("Spam", "spam")
    api.add_comment(deleted["id"], "more spam")
    api.delete_ticket(deleted["id"])
    api.advance(EXPORT_LAG + 5)

    pages, cursor = drain(connector_for(api, comments=True), None)

    messages = [item for page in pages for item in page.items if item.kind == "message"]
    assert [item.external_id for item in messages] == [f"{ticket_id}-c{follow_up['id']}"]
    (message,) = messages
    assert message.text == "Yes, still broken"
    assert message.thread_id == str(ticket_id)
    assert message.author.id == str(requester["id"])
    assert message.author.display_name == "Grace Customer"
    assert message.raw["andon"]["ticket_id"] == ticket_id
    tickets = [item.external_id for page in pages for item in page.items if item.kind == "ticket"]
    assert tickets == [str(ticket_id), str(quiet["id"]), str(deleted["id"])]
    assert agent_reply["id"] != note["id"]
    comment_paths = [r.url.path for r in api.requests if "/comments" in r.url.path]
    # Deleted tickets are not asked for comments.
    assert comment_paths == [
        f"/api/v2/tickets/{ticket_id}/comments.json",
        f"/api/v2/tickets/{quiet['id']}/comments.json",
    ]
    assert cursor is not None
    assert "pending" not in cursor


def test_follow_ups_spanning_comment_pages_and_a_restart() -> None:
    api = fake()
    ticket = api.add_ticket("Long thread", "Start")
    posted = [api.add_comment(ticket["id"], f"ping {n}") for n in range(120)]
    api.advance(EXPORT_LAG + 5)
    connector = connector_for(api, comments=True)

    first = connector.pull(None)  # the ticket page; comments are queued in the cursor
    assert first.has_more is True
    stored = json.dumps(first.next_cursor)
    assert json.loads(stored)["pending"][0]["ticket"] == ticket["id"]

    pages, _ = drain(connector_for(api, comments=True), json.loads(stored))

    expected = [f"{ticket['id']}-c{comment['id']}" for comment in posted]
    assert external_ids(pages) == expected


def test_comment_requests_count_against_the_budget() -> None:
    api = fake()
    for n in range(5):
        api.add_ticket(f"T{n}", "d")
        api.add_comment(api.add_ticket(f"U{n}", "d")["id"], "again")
    api.advance(EXPORT_LAG + 5)
    connector = connector_for(api, comments=True, requests_per_minute=4)

    tickets = connector.pull(None)  # 1 request
    partial = connector.pull(roundtrip(tickets.next_cursor))  # 3 more, then it stops
    sent = len(api.requests)

    assert len(api.requests) == 4
    assert partial.has_more is True
    assert partial.next_cursor is not None
    assert len(partial.next_cursor["pending"]) == 7
    with pytest.raises(RateLimited):
        connector.pull(roundtrip(partial.next_cursor))
    assert len(api.requests) == sent


def test_malformed_records_are_rejected_and_the_rest_kept() -> None:
    api = fake()
    good = seed(api, 1, settle=False)
    api.add_raw("not an object")
    api.add_raw({"subject": "no id", "created_at": "2024-05-13T09:00:00Z"})
    api.add_raw({"id": 99, "subject": "bad date", "created_at": "yesterday-ish"})
    good += seed(api, 1)

    page = connector_for(api).pull(None)

    assert external_ids([page]) == good
    reasons = [reject.reason for reject in page.rejects]
    assert len(reasons) == 3
    assert "not a JSON object" in reasons[0]
    assert "'id'" in reasons[1]
    assert "created_at" in reasons[2]
    assert json.loads(page.rejects[2].payload)["id"] == 99
    assert page.rejects[2].external_id == "99"
    assert page.has_more is False


def test_oauth_bearer_works() -> None:
    api = fake()
    expected = seed(api, 2)
    connector = connector_for(api, oauth=True)
    connector.check()
    assert external_ids([connector.pull(None)]) == expected
    assert api.requests[-1].headers["authorization"].startswith("Bearer ")


def test_refused_token_is_auth_failed_and_never_leaks() -> None:
    api = fake()
    seed(api, 1)
    wrong = "wrong-secret-token-123"
    connector = ZendeskConnector(
        {"subdomain": "acme", "email": api.email, "token_env": TOKEN_ENV},
        env={TOKEN_ENV: wrong},
        transport=api.transport(),
        now=api.clock,
    )

    with pytest.raises(AuthFailed) as caught:
        connector.pull(None)
    with pytest.raises(AuthFailed) as checked:
        connector.check()

    for text in (str(caught.value), str(checked.value), repr(connector)):
        assert wrong not in text
        assert TOKEN not in text


def test_missing_secret_names_the_variable_only() -> None:
    connector = create(
        "zendesk",
        {"subdomain": "acme", "oauth_token_env": OAUTH_TOKEN_ENV},
        env={},
        transport=FakeZendeskApi().transport(),
    )
    with pytest.raises(AuthFailed, match=OAUTH_TOKEN_ENV):
        connector.pull(None)


def test_check_passes_with_good_credentials_and_spends_no_budget() -> None:
    api = fake()
    connector = connector_for(api, requests_per_minute=1)
    connector.check()
    connector.check()
    connector.pull(None)  # the one export request of the minute is still free


@pytest.mark.parametrize(
    "cursor",
    [
        {"after_cursor": 12},
        {"start_time": "yesterday"},
        {"after_cursor": "x", "pending": [{"ticket": "35436"}]},
        {"page": 3},
        {},
    ],
)
def test_corrupt_cursor_is_bad_cursor(cursor: dict[str, Any]) -> None:
    with pytest.raises(BadCursor):
        connector_for(fake()).pull(cursor)


def test_cursor_refused_upstream_is_bad_cursor() -> None:
    with pytest.raises(BadCursor, match="InvalidPaginationParameter"):
        connector_for(fake()).pull({"after_cursor": "bm90LWEtY3Vyc29y!"})


def test_too_recent_start_time_from_a_skewed_clock_is_rejected() -> None:
    api = fake()
    start_time = int(api.now.timestamp()) + 3600  # fine by our clock, too recent upstream
    connector = ZendeskConnector(
        {"subdomain": "acme", "email": api.email, "token_env": TOKEN_ENV,
         "start_time": start_time},
        env={TOKEN_ENV: TOKEN},
        transport=api.transport(),
        now=lambda: api.now + timedelta(days=1),
    )  # fmt: skip
    with pytest.raises(RequestRejected, match="Too recent start_time") as caught:
        connector.pull(None)
    assert caught.value.status == 400


@pytest.mark.parametrize(
    "config",
    [
        {"email": "a@b.c", "token_env": "X"},
        {"subdomain": "acme", "email": "a@b.c"},
        {"subdomain": "acme", "token_env": "X", "oauth_token_env": "Y", "email": "a@b.c"},
        {"subdomain": "acme", "oauth_token_env": "Y", "per_page": 5000},
        {"base_url": "ftp://acme", "oauth_token_env": "Y"},
        {"subdomain": "acme", "oauth_token_env": "Y", "comments": "yes"},
    ],
)
def test_invalid_config_is_config_error(config: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        ZendeskConnector(config, env={})

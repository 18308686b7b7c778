"""Mastodon connector against the local fake instance: min_id paging, Link, HTML, boosts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from connectors import registry
from connectors.base import Cursor, Page
from connectors.errors import AuthFailed, BadCursor, ConfigError, ProtocolError, RateLimited
from connectors.mastodon import MastodonConnector, html_to_text
from tests.connectors.fakes import json_response
from tests.connectors.fakes.mastodon_api import BASE_URL, TOKEN, TOKEN_ENV, FakeMastodonApi


@pytest.fixture
def api() -> FakeMastodonApi:
    return FakeMastodonApi()


def make(api: FakeMastodonApi, **config: Any) -> MastodonConnector:
    settings: dict[str, Any] = {"base_url": BASE_URL, "hashtag": "acme", "limit": 4}
    settings.update(config)
    return MastodonConnector(
        settings, env={TOKEN_ENV: TOKEN}, transport=api.transport(), sleep=lambda _: None
    )


def seed(api: FakeMastodonApi, count: int, text: str = "feedback") -> list[dict[str, Any]]:
    ana = api.add_account("ana", display_name="Ana", followers=120)
    return [api.add_status(f"{text} {n}", account=ana) for n in range(count)]


def sync(connector: MastodonConnector, cursor: Cursor | None) -> tuple[list[Page], Cursor | None]:
    pages = []
    for _ in range(50):
        page = connector.pull(cursor)
        pages.append(page)
        cursor = json.loads(json.dumps(page.next_cursor))
        if not page.has_more:
            return pages, cursor
    raise AssertionError("sync did not end")


def ids(pages: list[Page]) -> list[str]:
    return [item.external_id for page in pages for item in page.items]


def test_first_pull_anchors_on_the_newest_page(api: FakeMastodonApi) -> None:
    statuses = seed(api, 6)

    page = make(api).pull(None)

    assert [item.external_id for item in page.items] == [s["id"] for s in statuses[:1:-1]]
    assert page.has_more is False
    assert page.next_cursor == {"min_id": statuses[-1]["id"]}
    params = api.requests[0].url.params
    assert "min_id" not in params
    assert "since_id" not in params
    assert params["limit"] == "4"


def test_min_id_paging_is_gapless_with_more_new_items_than_limit(api: FakeMastodonApi) -> None:
    seed(api, 2)
    anchor = make(api).pull(None).next_cursor
    assert anchor is not None
    new = seed(api, 11, text="burst")

    pages, cursor = sync(make(api), anchor)

    assert [len(page.items) for page in pages] == [4, 4, 3, 0]
    # Each page is the oldest slice above the watermark, newest first inside the page.
    assert ids(pages) == [s["id"] for chunk in (new[0:4], new[4:8], new[8:11]) for s in chunk[::-1]]
    assert cursor == {"min_id": new[-1]["id"]}
    sent = [request.url.params.get("min_id") for request in api.requests[1:]]
    assert sent == [anchor["min_id"], new[3]["id"], new[7]["id"], new[10]["id"]]
    assert all("since_id" not in request.url.params for request in api.requests)


def test_the_fake_reproduces_the_since_id_gap(api: FakeMastodonApi) -> None:
    old = seed(api, 1)
    new = seed(api, 6)
    client = httpx.Client(transport=api.transport(), base_url=BASE_URL)

    body = client.get("/api/v1/timelines/tag/acme", params={"since_id": old[0]["id"], "limit": 4})

    # since_id answers with the newest page: new[0] and new[1] would be lost.
    assert [s["id"] for s in body.json()] == [s["id"] for s in new[:1:-1]]


def test_follows_the_link_header_rather_than_computing_ids() -> None:
    status = {
        "id": "110000000000000100",
        "created_at": "2024-05-13T09:15:00.000Z",
        "content": "<p>hello</p>",
        "account": {"id": "7", "acct": "ana"},
    }
    link = (
        f'<{BASE_URL}/api/v1/timelines/tag/acme?max_id=110000000000000100>; rel="next", '
        f'<{BASE_URL}/api/v1/timelines/tag/acme?min_id=110000000000000150>; rel="prev"'
    )
    transport = httpx.MockTransport(lambda request: json_response(200, [status], {"Link": link}))
    connector = MastodonConnector({"base_url": BASE_URL, "hashtag": "acme"}, transport=transport)

    page = connector.pull({"min_id": "110000000000000001"})

    assert page.next_cursor == {"min_id": "110000000000000150"}
    assert page.has_more is True


def test_ids_compare_as_integers_across_a_digit_boundary() -> None:
    # 2018-05-09T15:15:06Z is where Mastodon ids grew from 17 to 18 digits.
    api = FakeMastodonApi()
    ana = api.add_account("ana")
    before = api.add_status(
        "before", account=ana, created_at=datetime(2018, 5, 9, 15, 15, tzinfo=UTC)
    )
    after = api.add_status(
        "after", account=ana, created_at=datetime(2018, 5, 9, 15, 16, tzinfo=UTC)
    )
    assert len(before["id"]) == 17
    assert len(after["id"]) == 18
    assert before["id"] > after["id"]  # as text the older one looks bigger

    def without_link(request: httpx.Request) -> httpx.Response:
        response = api.handle(request)
        headers = {k: v for k, v in response.headers.items() if k.lower() != "link"}
        return httpx.Response(response.status_code, content=response.content, headers=headers)

    connector = MastodonConnector(
        {"base_url": BASE_URL, "hashtag": "acme"}, transport=httpx.MockTransport(without_link)
    )

    first = connector.pull({"min_id": "1"})
    assert first.next_cursor == {"min_id": after["id"]}
    second = connector.pull(first.next_cursor)
    assert second.items == []
    assert second.has_more is False
    assert second.next_cursor == first.next_cursor


def test_empty_page_keeps_the_cursor(api: FakeMastodonApi) -> None:
    seed(api, 3)
    anchor = make(api).pull(None).next_cursor

    page = make(api).pull(anchor)

    assert page == Page(items=[], next_cursor=anchor, has_more=False)


def test_empty_timeline_on_first_pull(api: FakeMastodonApi) -> None:
    api.known_tags.add("acme")

    page = make(api).pull(None)

    assert page == Page(items=[], next_cursor={}, has_more=False)


@pytest.mark.parametrize(
    ("html", "text"),
    [
        (
            '<p>Love the new <a href="https://example.social/tags/acme" class="mention hashtag" '
            'rel="tag">#<span>acme</span></a> dashboard</p>',
            "Love the new #acme dashboard",
        ),
        ("<p>line one<br>line two<br />line three</p>", "line one\nline two\nline three"),
        ("<p>first   para</p><p>second\n para</p>", "first para\n\nsecond para"),
        ("<p>export &amp; import &lt;3 &#8212; caf&eacute;</p>", "export & import <3 \u2014 café"),
        (
            '<p><span class="h-card"><a href="https://example.social/@acme" class="u-url '
            'mention">@<span>acme</span></a></span> see <a href="https://acme.example/x/y"><span '
            'class="invisible">https://</span><span class="">acme.example/x/y</span><span '
            'class="invisible"></span></a></p>',
            "@acme see https://acme.example/x/y",
        ),
        ("", ""),
    ],
)
def test_html_to_text(html: str, text: str) -> None:
    assert html_to_text(html) == text


def test_normalises_a_status(api: FakeMastodonApi) -> None:
    ana = api.add_account("ana", display_name="Ana", followers=120, domain="other.example")
    root = api.add_status("root", account=ana)
    reply = api.add_status(
        "<p>The export is <b>slow</b></p>",
        html=True,
        account=ana,
        in_reply_to=root,
        spoiler_text="export rant",
        language="de",
        favourites=5,
        reblogs=2,
        replies=1,
    )
    reply["edited_at"] = "2024-05-13T10:00:00.000Z"

    page = make(api).pull(None)

    item = next(i for i in page.items if i.external_id == reply["id"])
    assert item.channel == "mastodon"
    assert item.kind == "post"
    assert item.text == "The export is slow"
    assert item.title == "export rant"
    assert item.author.id == ana["id"]
    assert item.author.handle == "ana@other.example"
    assert item.author.display_name == "Ana"
    assert item.author.followers == 120
    assert item.metrics == {"likes": 5, "reposts": 2, "replies": 1}
    assert item.thread_id == root["id"]
    assert item.lang == "de"
    assert item.url == reply["url"]
    assert item.created_at == datetime.fromisoformat(reply["created_at"].replace("Z", "+00:00"))
    assert item.updated_at == datetime(2024, 5, 13, 10, 0, tzinfo=UTC)
    plain = next(i for i in page.items if i.external_id == root["id"])
    assert plain.title is None
    assert plain.thread_id is None


def test_boosts_resolve_to_the_original_once(api: FakeMastodonApi) -> None:
    ana = api.add_account("ana")
    bob = api.add_account("bob")
    cy = api.add_account("cy")
    original = api.add_status("acme rocks", account=ana)
    boost = api.boost(original, by=bob)
    api.boost(original, by=cy)

    page = make(api).pull(None)

    (item,) = page.items
    assert item.external_id == original["id"]
    assert item.author.handle == "ana"
    assert item.text == "acme rocks"
    assert item.metrics["reposts"] == 2
    assert page.next_cursor is not None
    assert page.next_cursor["min_id"] != original["id"]  # the watermark is the boost's id
    assert int(page.next_cursor["min_id"]) > int(boost["id"])


def test_boosts_can_be_skipped(api: FakeMastodonApi) -> None:
    ana = api.add_account("ana")
    original = api.add_status("acme rocks", account=ana)
    anchor = make(api).pull(None).next_cursor
    boost = api.boost(original, by=api.add_account("bob"))

    page = make(api, boosts="skip").pull(anchor)

    assert page.items == []
    assert page.rejects == []
    assert page.next_cursor == {"min_id": boost["id"]}


def test_mentions_page_on_notification_ids(api: FakeMastodonApi) -> None:
    ana = api.add_account("ana")
    first = api.add_status("@acme hello", account=ana, tags=())
    api.notify("mention", account=ana, status=first)
    connector = make(api, mode="mentions", token_env=TOKEN_ENV, limit=2)
    anchor = connector.pull(None).next_cursor
    statuses = [api.add_status(f"@acme ping {n}", account=ana, tags=()) for n in range(5)]
    notes = [api.notify("mention", account=ana, status=status) for status in statuses]
    api.notify("favourite", account=ana, status=statuses[0])
    api.notify("follow", account=ana)

    pages, cursor = sync(connector, anchor)

    assert sorted(ids(pages)) == sorted(s["id"] for s in statuses)
    assert cursor == {"min_id": notes[-1]["id"]}
    request = api.requests[-1]
    assert request.url.path == "/api/v1/notifications"
    assert request.url.params.get_list("types[]") == ["mention"]
    assert request.headers["authorization"] == f"Bearer {TOKEN}"


def test_malformed_statuses_are_rejected_and_the_page_kept(api: FakeMastodonApi) -> None:
    ana = api.add_account("ana")
    good = api.add_status("fine", account=ana)
    no_date = api.add_status("x", account=ana, wire_edit=lambda s: s.pop("created_at"))
    bad_date = api.add_status("x", account=ana, wire_edit=lambda s: s.update(created_at="soon"))
    no_account = api.add_status("x", account=ana, wire_edit=lambda s: s.update(account=None))

    page = make(api).pull(None)

    assert [item.external_id for item in page.items] == [good["id"]]
    reasons = {reject.external_id: reject.reason for reject in page.rejects}
    assert reasons == {
        no_account["id"]: "missing 'account'",
        bad_date["id"]: "invalid 'created_at' or 'edited_at' 'soon'",
        no_date["id"]: "missing 'created_at'",
    }
    assert json.loads(page.rejects[0].payload)["account"] is None
    assert page.next_cursor == {"min_id": no_account["id"]}


def test_invalid_token_is_auth_failed_without_the_token(api: FakeMastodonApi) -> None:
    seed(api, 1)
    secret = "wrong-secret-token-value"
    connector = MastodonConnector(
        {"base_url": BASE_URL, "hashtag": "acme", "token_env": "MASTO"},
        env={"MASTO": secret},
        transport=api.transport(),
    )

    with pytest.raises(AuthFailed, match="access token is invalid") as caught:
        connector.pull(None)

    assert secret not in str(caught.value)
    assert secret not in repr(connector)


def test_missing_token_variable_is_auth_failed(api: FakeMastodonApi) -> None:
    connector = MastodonConnector(
        {"base_url": BASE_URL, "mode": "mentions", "token_env": "MASTO_TOKEN"},
        env={},
        transport=api.transport(),
    )

    with pytest.raises(AuthFailed, match="MASTO_TOKEN"):
        connector.check()
    assert api.requests == []


def test_private_tag_timeline_needs_a_token() -> None:
    api = FakeMastodonApi(public_tag_timeline=False)
    seed(api, 2)

    with pytest.raises(AuthFailed):
        MastodonConnector(
            {"base_url": BASE_URL, "hashtag": "acme"}, transport=api.transport()
        ).check()
    make(api, token_env=TOKEN_ENV).check()


def test_unknown_hashtag_is_a_config_error(api: FakeMastodonApi) -> None:
    seed(api, 1)

    with pytest.raises(ConfigError, match=r"#nosuchtag does not exist on https://example\.social"):
        make(api, hashtag="#nosuchtag").pull(None)


def test_rate_limit_reads_the_iso_reset(api: FakeMastodonApi) -> None:
    seed(api, 1)
    api.rate_limit_after(0)

    with pytest.raises(RateLimited) as caught:
        make(api).pull(None)

    assert 250 < caught.value.retry_after <= 300


def test_non_array_body_is_a_protocol_error() -> None:
    transport = httpx.MockTransport(lambda request: json_response(200, {"error": "odd"}))
    connector = MastodonConnector({"base_url": BASE_URL, "hashtag": "acme"}, transport=transport)

    with pytest.raises(ProtocolError, match="expected a JSON array"):
        connector.pull(None)


@pytest.mark.parametrize(
    "cursor", [{"min_id": "abc"}, {"min_id": 12}, {"since_id": "1"}, {"min_id": "-1"}]
)
def test_unusable_cursor_is_bad_cursor(api: FakeMastodonApi, cursor: Cursor) -> None:
    with pytest.raises(BadCursor):
        make(api).pull(cursor)


@pytest.mark.parametrize(
    "config",
    [
        {"hashtag": "acme"},
        {"base_url": "example.social", "hashtag": "acme"},
        {"base_url": BASE_URL},
        {"base_url": BASE_URL, "hashtag": "a/b"},
        {"base_url": BASE_URL, "mode": "mentions"},
        {"base_url": BASE_URL, "hashtag": "acme", "limit": 41},
        {"base_url": BASE_URL, "hashtag": "acme", "boosts": "keep"},
        {"base_url": BASE_URL, "mode": "public", "hashtag": "acme"},
    ],
)
def test_invalid_config_is_config_error(config: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        MastodonConnector(config, env={})


def test_registered_under_mastodon(api: FakeMastodonApi) -> None:
    connector = registry.create(
        "mastodon", {"base_url": BASE_URL, "hashtag": "acme"}, transport=api.transport()
    )

    assert isinstance(connector, MastodonConnector)


def test_fake_sends_link_and_limit_headers(api: FakeMastodonApi) -> None:
    statuses = seed(api, 3)
    client = httpx.Client(transport=api.transport(), base_url=BASE_URL)

    full = client.get("/api/v1/timelines/tag/acme", params={"limit": 2})
    empty = client.get("/api/v1/timelines/tag/acme", params={"min_id": statuses[-1]["id"]})

    assert [s["id"] for s in full.json()] == [statuses[2]["id"], statuses[1]["id"]]
    assert full.links["next"]["url"].endswith(f"limit=2&max_id={statuses[1]['id']}")
    assert full.links["prev"]["url"].endswith(f"limit=2&min_id={statuses[2]['id']}")
    assert empty.json() == []
    assert "link" not in empty.headers
    for response in (full, empty):
        assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"} <= set(
            response.headers
        )

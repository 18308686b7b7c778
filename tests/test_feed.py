"""The resumable feed and the exports."""

from __future__ import annotations

import csv
import io
import json

from fastapi.testclient import TestClient

from app.config import Settings
from tests.test_signal import sync_demo


def pull_all(client: TestClient, queue: str, cursor: str | None = None) -> tuple[list[int], str]:
    ids: list[int] = []
    while True:
        params: dict[str, str | int] = {"limit": 40}
        if cursor:
            params["after"] = cursor
        page = client.get(f"/feed/{queue}", params=params).json()
        ids += [entry["item"]["id"] for entry in page["entries"]]
        if page["next_cursor"] == cursor:
            return ids, cursor or ""
        cursor = page["next_cursor"]


def test_the_feed_delivers_each_arrival_once_and_resumes(
    client: TestClient, settings: Settings
) -> None:
    settings.feed_settle_seconds = 0.0
    sync_demo(client)
    routed = client.get("/items", params={"queue": "product", "limit": 500}).json()["items"]

    first, cursor = pull_all(client, "product")
    assert sorted(first) == sorted(item["id"] for item in routed)
    assert len(first) == len(set(first))
    again, same = pull_all(client, "product", cursor)
    assert (again, same) == ([], cursor), "nothing new: nothing returned, cursor kept"

    triage = client.get("/items", params={"queue": "triage", "limit": 1}).json()["items"][0]
    moved = client.post(
        f"/entries/{triage['entry']['id']}/reroute", json={"queue": "product", "reason": "idea"}
    )
    assert moved.status_code == 200, moved.text
    new, _ = pull_all(client, "product", cursor)
    assert new == [triage["id"]]

    assert client.get("/feed/product", params={"after": "!!"}).status_code == 422
    assert client.get("/feed/nowhere").status_code == 422


def test_the_feed_holds_back_unsettled_events(client: TestClient, settings: Settings) -> None:
    settings.feed_settle_seconds = 3600.0
    sync_demo(client)
    page = client.get("/feed/product").json()
    assert page["entries"] == []


def test_exports_as_csv_and_ndjson_for_a_time_range(client: TestClient) -> None:
    sync_demo(client)
    window = {"from": "2026-11-10T00:00:00Z", "to": "2026-11-15T00:00:00Z"}
    expected = [
        item
        for item in client.get("/items", params={"queue": "service", "limit": 500}).json()["items"]
        if "2026-11-10" <= item["created_at"][:10] < "2026-11-15"
    ]
    assert expected

    ndjson = client.get("/feed/service/export", params={**window, "format": "ndjson"})
    assert ndjson.headers["content-type"].startswith("application/x-ndjson")
    rows = [json.loads(line) for line in ndjson.text.splitlines()]
    assert sorted(row["id"] for row in rows) == sorted(item["id"] for item in expected)
    assert all(row["queue"] == "service" for row in rows)

    exported = client.get("/feed/service/export", params={**window, "format": "csv"})
    assert exported.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(exported.text)))
    assert [int(row["id"]) for row in table] == [row["id"] for row in rows]
    assert {row["channel"] for row in table} <= {
        "twitter", "email", "mastodon", "zendesk", "canny", "fider", "freshdesk"
    }  # fmt: skip

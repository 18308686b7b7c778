"""The HTTP API as a client sees it, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete

from app.items.models import Classification
from app.queues.models import QueueEntry
from tests.conftest import api_key

PROBLEM = "application/problem+json"


def synced_demo(client: TestClient) -> dict:  # type: ignore[type-arg]
    created = client.post(
        "/sources",
        json={"name": "demo", "kind": "demo", "config": {"anchor": "2026-11-20T00:00:00Z"}},
    )
    assert created.status_code == 201, created.text
    run = client.post("/sources/demo/sync")
    assert run.status_code == 200, run.text
    body: dict = run.json()  # type: ignore[type-arg]
    return body


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_signal_shows_demo_items_per_queue(client: TestClient) -> None:
    run = synced_demo(client)
    assert run["status"] == "ok"
    assert run["new"] >= 300

    response = client.get(
        "/signal", params={"from": "2026-10-01T00:00:00Z", "to": "2026-11-21T00:00:00Z"}
    )

    assert response.status_code == 200
    body = response.json()
    assert body["bucket"] == "day"
    assert sum(total["count"] for total in body["totals"].values()) == run["new"]
    for total in body["totals"].values():
        assert total["negative"] + total["neutral"] + total["positive"] == total["count"]
        assert -1.0 <= total["mean_compound"] <= 1.0
    days = {point["bucket_start"][:10] for point in body["series"]}
    assert len(days) >= 25, "demo items are spread over 30 days"

    hourly = client.get(
        "/signal",
        params={"bucket": "hour", "from": "2026-11-17T00:00:00Z", "to": "2026-11-18T00:00:00Z"},
    ).json()
    assert all(point["bucket_start"][:10] == "2026-11-17" for point in hourly["series"])
    by_channel = client.get(
        "/signal", params={"group_by": "channel", "from": "2026-10-01T00:00:00Z"}
    ).json()
    assert {point["channel"] for point in by_channel["series"]} >= {"twitter", "zendesk"}


def test_items_filters_and_cursor_pagination(client: TestClient) -> None:
    run = synced_demo(client)

    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 100}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/items", params=params).json()
        seen.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == run["new"] == len(set(seen))
    assert seen == sorted(seen, reverse=True)

    negatives = client.get("/items", params={"sentiment": "negative", "limit": 500}).json()
    assert negatives["items"]
    assert all(item["sentiment"]["label"] == "negative" for item in negatives["items"])

    tickets = client.get("/items", params={"channel": "zendesk", "limit": 500}).json()["items"]
    assert tickets
    assert all(item["channel"] == "zendesk" for item in tickets)

    for queue in ("product", "sales"):
        routed = client.get("/items", params={"queue": queue, "limit": 500}).json()["items"]
        assert routed
        assert all(item["queue"] == queue for item in routed)

    since = datetime(2026, 11, 15, tzinfo=UTC)
    recent = client.get("/items", params={"since": since.isoformat(), "limit": 500}).json()
    assert recent["items"]
    assert all(datetime.fromisoformat(item["created_at"]) >= since for item in recent["items"])


def test_item_detail_has_routing_reason_and_raw(client: TestClient) -> None:
    synced_demo(client)
    first = client.get("/items", params={"limit": 1}).json()["items"][0]

    detail = client.get(f"/items/{first['id']}").json()

    assert detail["raw"]["id"] == detail["external_id"]
    assert detail["route"]["reason"].startswith("model:")
    assert detail["route"]["queue"] in {"product", "marketing", "sales", "service"}
    assert set(detail["route"]["scores"]) == {"product", "marketing", "sales", "service"}
    assert detail["entry"]["state"] == "open"


def test_every_listed_item_equals_its_detail_without_the_payload(
    client: TestClient, engine: Engine
) -> None:
    """GET /items reads plain columns; GET /items/{id} the mapped objects: the same answer.

    With a claimed entry (holder and lease), a resolved one, an item with no entry and one
    with neither entry nor verdict among them."""
    synced_demo(client)
    agent = {"Authorization": f"Bearer {api_key(engine, 'lister', 'agent')}"}
    held = client.post("/queues/service/claim", headers=agent).json()["entry"]
    done = client.post("/queues/product/claim", headers=agent).json()["entry"]
    resolved = client.post(f"/entries/{done['id']}/resolve", json={"note": "ok"}, headers=agent)
    assert resolved.status_code == 200, resolved.text
    listed = []
    cursor = None
    while True:
        params = {"limit": 37, **({"cursor": cursor} if cursor else {})}
        page = client.get("/items", params=params).json()
        listed.extend(page["items"])
        if (cursor := page["next_cursor"]) is None:
            break
    bare, unrouted = listed[3]["id"], listed[4]["id"]
    with engine.begin() as connection:  # as after an operator's clean-up: rows gone
        connection.execute(delete(QueueEntry).where(QueueEntry.item_id.in_([bare, unrouted])))
        connection.execute(delete(Classification).where(Classification.item_id == bare))
    listed[3:5] = [
        client.get("/items", params={"limit": 1, "cursor": cursor_before(client, item)}).json()[
            "items"
        ][0]
        for item in (bare, unrouted)
    ]

    assert len(listed) == len({item["id"] for item in listed}) >= 300
    for item in listed:
        detail = client.get(f"/items/{item['id']}").json()
        assert detail.pop("raw") is not None
        assert item == detail
    by_id = {item["id"]: item for item in listed}
    assert by_id[held["item_id"]]["entry"]["claimed_by"] == "lister"
    assert by_id[held["item_id"]]["entry"]["lease_expires_at"] is not None
    assert by_id[done["item_id"]]["entry"]["state"] == "resolved"
    assert by_id[bare]["entry"] is None
    assert by_id[bare]["route"] is None
    assert by_id[bare]["sentiment"] is None
    assert by_id[unrouted]["entry"] is None
    assert by_id[unrouted]["route"] is not None


def cursor_before(client: TestClient, item_id: int) -> str:
    """A cursor whose page starts at ``item_id`` (the cursor names the id after it)."""
    from app.pagination import encode_cursor

    return encode_cursor({"before": item_id + 1})


def test_errors_are_problem_json(client: TestClient) -> None:
    missing = client.get("/items/999999")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == PROBLEM
    assert missing.json()["detail"] == "no item 999999"

    bad_filter = client.get("/items", params={"queue": "nowhere"})
    assert bad_filter.status_code == 422
    assert bad_filter.headers["content-type"] == PROBLEM
    assert "queue" in bad_filter.json()["detail"]

    bad_cursor = client.get("/items", params={"cursor": "!!!"})
    assert bad_cursor.status_code == 422
    assert "cursor" in bad_cursor.json()["detail"]

    backwards = client.get(
        "/signal", params={"from": "2026-11-10T00:00:00Z", "to": "2026-11-01T00:00:00Z"}
    )
    assert backwards.status_code == 422
    assert backwards.json()["detail"] == "'from' must be before 'to'"

    unknown_route = client.get("/nowhere")
    assert unknown_route.status_code == 404
    assert unknown_route.headers["content-type"] == PROBLEM


def test_queues_report_depth(client: TestClient) -> None:
    run = synced_demo(client)

    queues = {row["queue"]: row for row in client.get("/queues").json()}

    assert set(queues) == {"product", "marketing", "sales", "service", "triage"}
    assert sum(row["open"] for row in queues.values()) == run["new"]
    assert all(row["oldest_open_at"] for row in queues.values() if row["open"])


def test_sources_crud_and_runs(client: TestClient, tmp_path) -> None:  # type: ignore[no-untyped-def]
    export = tmp_path / "feedback.jsonl"
    export.write_text('{"id": "1", "text": "Refund still not here after 3 weeks"}\n')

    created = client.post(
        "/sources",
        json={
            "name": "export",
            "kind": "jsonl",
            "config": {"path": str(export)},
            "interval_seconds": 60,
        },
    )
    assert created.status_code == 201
    assert created.json()["status"] == "ok"

    duplicate = client.post(
        "/sources", json={"name": "export", "kind": "jsonl", "config": {"path": str(export)}}
    )
    assert duplicate.status_code == 409
    assert duplicate.headers["content-type"] == PROBLEM

    unknown = client.post("/sources", json={"name": "x", "kind": "carrier-pigeon"})
    assert unknown.status_code == 422
    assert "carrier-pigeon" in unknown.json()["detail"]

    leaked = client.post(
        "/sources",
        json={
            "name": "tw",
            "kind": "jsonl",
            "config": {"path": str(export), "api_token": "s3cr3t"},
        },
    )
    assert leaked.status_code == 422
    assert "s3cr3t" not in leaked.text
    assert "api_token" in leaked.json()["detail"]

    bad_name = client.post("/sources", json={"name": "Bad Name!", "kind": "jsonl"})
    assert bad_name.status_code == 422

    run = client.post("/sources/export/sync").json()
    assert (run["status"], run["new"]) == ("ok", 1)
    runs = client.get("/sources/export/runs").json()
    assert [r["id"] for r in runs] == [run["id"]]
    assert client.get("/sources/export").json()["cursor"] is not None

    patched = client.patch("/sources/export", json={"enabled": False})
    assert patched.json()["enabled"] is False
    assert client.post("/sources/export/check").json()["ok"] is True

    assert client.delete("/sources/export").status_code == 204
    assert client.get("/sources/export").status_code == 404
    assert client.post("/sources/export/sync").status_code == 404

"""The demand signal on both databases: rollups kept by deltas equal a recount."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.db import unit_of_work
from app.items.models import Item
from app.items.service import store_page
from app.learning.service import Classifier
from app.signal.service import DemandWeights, demand_weight, recompute, stored
from app.sources.models import Source
from connectors.base import Author, SourceItem

ANCHOR = "2026-11-20T00:00:00Z"


def sync_demo(client: TestClient) -> int:
    created = client.post(
        "/sources", json={"name": "demo", "kind": "demo", "config": {"anchor": ANCHOR}}
    )
    assert created.status_code == 201, created.text
    run = client.post("/sources/demo/sync").json()
    assert run["status"] == "ok", run
    return int(run["new"])


def assert_rollups_match(factory: sessionmaker[Session]) -> None:
    with factory() as session:
        kept, recount = stored(session), recompute(session)
    assert kept.rollups == recount.rollups
    assert kept.buckets == recount.buckets


def test_demand_weight_is_documented_formula() -> None:
    weights = DemandWeights(votes=1.0, likes=0.2, reposts=0.2, reach=1.0, reach_floor=1000)
    assert demand_weight({"votes": 40}, None, weights) == 41.0
    assert demand_weight({"likes": 10, "reposts": 5}, 999, weights) == 4.0
    assert demand_weight({}, 100_000, weights) == 3.0  # two tenfolds above the floor
    assert demand_weight({"votes": 2}, None, DemandWeights(votes=0.5)) == 2.0


def test_rollups_equal_a_recount_after_reroutes_and_reclassification(
    client: TestClient, factory: sessionmaker[Session], classifier: Classifier
) -> None:
    new = sync_demo(client)
    assert_rollups_match(factory)

    # Re-route: a triage decision and a claimed product item sent to sales.
    triage = client.get("/items", params={"queue": "triage", "limit": 3}).json()["items"]
    assert triage, "the demo always leaves a few items for triage"
    for item in triage:
        moved = client.post(
            f"/entries/{item['entry']['id']}/reroute",
            json={"queue": "service", "reason": "billing is service"},
        )
        assert moved.status_code == 200, moved.text
    claimed = client.post("/queues/product/claim")
    assert claimed.status_code == 200, claimed.text
    entry_id = claimed.json()["entry"]["id"]
    rerouted = client.post(
        f"/entries/{entry_id}/reroute", json={"queue": "sales", "reason": "a pricing question"}
    )
    assert rerouted.status_code == 200, rerouted.text
    assert_rollups_match(factory)

    # Re-classification: upstream edits the text (and the votes) of stored items.
    with unit_of_work(factory) as session:
        source_id = session.scalar(select(Source.id).where(Source.name == "demo"))
        assert source_id is not None
        edited = session.scalars(select(Item).order_by(Item.id).limit(12)).all()
        changes = [
            SourceItem(
                channel=item.channel,
                kind=item.kind,
                external_id=item.external_id,
                title=item.title,
                text="Refund please: you charged my card twice and nobody answers" + str(item.id),
                created_at=item.created_at + timedelta(hours=30),
                author=Author(id=item.author_id, handle=item.author_handle),
                metrics={"votes": 7, "likes": 3},
            )
            for item in edited
        ]
        counts = store_page(session, source_id, changes, classifier)
        assert counts.updated == 12
    assert_rollups_match(factory)

    totals = client.get("/signal", params={"from": "2026-10-01T00:00:00Z"}).json()["totals"]
    assert sum(total["count"] for total in totals.values()) == new


def test_signal_counts_distinct_authors_per_bucket_and_demand_once(
    client: TestClient, factory: sessionmaker[Session], classifier: Classifier
) -> None:
    day = datetime(2026, 11, 3, tzinfo=UTC)
    with unit_of_work(factory) as session:
        source = Source(name="posts", kind="jsonl", config={})
        session.add(source)
        session.flush()
        text = "my parcel never arrived and support will not answer my emails"
        posts = [
            # one customer writes three times that day (the same words: one demand) ...
            SourceItem(
                channel="twitter",
                kind="post",
                external_id=f"a{n}",
                text=text,
                created_at=day + timedelta(hours=9 + n),
                author=Author(id="1", handle="ann"),
            )
            for n in range(3)
        ] + [
            # ... and two others once each.
            SourceItem(
                channel="twitter",
                kind="post",
                external_id=f"b{n}",
                text=text,
                created_at=day + timedelta(hours=9, minutes=10),
                author=Author(id=str(10 + n), handle=f"other{n}"),
            )
            for n in range(2)
        ]
        store_page(session, source.id, posts, classifier)

    params = {"from": "2026-11-03T00:00:00Z", "to": "2026-11-04T00:00:00Z"}
    daily = client.get("/signal", params={**params, "bucket": "day"}).json()
    (point,) = daily["series"]
    assert (point["count"], point["authors"]) == (5, 3)
    assert point["demand"] == 3.0, "ann's repeats are duplicates: her demand counts once"
    hourly = client.get("/signal", params={**params, "bucket": "hour"}).json()
    assert [(p["bucket_start"][11:13], p["count"], p["authors"]) for p in hourly["series"]] == [
        ("09", 3, 3),
        ("10", 1, 1),
        ("11", 1, 1),
    ]
    by_channel = client.get("/signal", params={**params, "group_by": "channel"}).json()
    assert [(p["channel"], p["authors"]) for p in by_channel["series"]] == [("twitter", 3)]
    two_channels = client.get(
        "/signal", params={**params, "channel": ["twitter", "zendesk"]}
    ).json()
    assert [p["authors"] for p in two_channels["series"]] == [3]
    assert_rollups_match(factory)

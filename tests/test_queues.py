"""Pull queues over HTTP: claim order, leases, acting on entries, WIP limits, statistics.

Runs on SQLite and PostgreSQL. Time passing is simulated by moving a lease's end into the
past (or calling ``expire_leases`` with a later ``now``), never by sleeping.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.db import unit_of_work, utcnow
from app.items.models import Classification, Item
from app.items.service import classify_items
from app.learning.service import Classifier
from app.main import create_app
from app.queues import priority
from app.queues.models import Correction, QueueEntry
from app.queues.service import expire_leases
from app.signal.models import SignalRollup
from app.sources.models import Source
from tests.conftest import api_key

PROBLEM = "application/problem+json"


@dataclass
class Spec:
    queue: str = "service"
    sentiment: str = "neutral"
    compound: float = 0.0
    followers: int = 0
    votes: int = 0
    channel: str = "zendesk"
    waited_minutes: float = 0.0
    text: str = "where is my order"


def seed(factory: sessionmaker[Session], specs: Sequence[Spec]) -> list[int]:
    """Items, verdicts and open entries, inserted in bulk; the entry ids in order."""
    now = utcnow()
    weights = priority.Weights()
    with unit_of_work(factory) as session:
        source_id = session.scalar(select(Source.id).where(Source.name == "seed"))
        if source_id is None:
            source = Source(name="seed", kind="demo", config={})
            session.add(source)
            session.flush()
            source_id = source.id
        offset = int(session.scalar(select(func.count(Item.id))) or 0)
        item_ids = list(
            session.scalars(
                insert(Item).returning(Item.id, sort_by_parameter_order=True),
                [
                    {
                        "source_id": source_id,
                        "external_id": f"seed-{offset + n}",
                        "channel": spec.channel,
                        "kind": "ticket",
                        "text": f"{spec.text} #{offset + n}",
                        "author_followers": spec.followers,
                        "created_at": now - timedelta(minutes=spec.waited_minutes),
                        "metrics": {"votes": spec.votes} if spec.votes else {},
                        "raw": {},
                        "content_hash": f"h{offset + n}",
                    }
                    for n, spec in enumerate(specs)
                ],
            )
        )
        session.execute(
            insert(Classification),
            [
                {
                    "item_id": item_id,
                    "sentiment": spec.sentiment,
                    "compound": spec.compound,
                    "queue": spec.queue if spec.queue != "triage" else "service",
                    "confidence": 0.9,
                    "triage": spec.queue == "triage",
                    "reason": "seed",
                    "scores": {},
                    "model_version": "seed",
                    "sentiment_version": "seed",
                    "content_hash": "h",
                }
                for item_id, spec in zip(item_ids, specs, strict=True)
            ],
        )
        items = {
            item.id: item for item in session.scalars(select(Item).where(Item.id.in_(item_ids)))
        }
        verdicts = {
            v.item_id: v
            for v in session.scalars(
                select(Classification).where(Classification.item_id.in_(item_ids))
            )
        }
        rows = []
        for item_id, spec in zip(item_ids, specs, strict=True):
            since = now - timedelta(minutes=spec.waited_minutes)
            entry = QueueEntry(item_id=item_id, queue=spec.queue, state="open", created_at=since)
            entry.waiting_since = since
            priority.assign(entry, items[item_id], verdicts[item_id], weights)
            rows.append(
                {
                    "item_id": item_id,
                    "queue": spec.queue,
                    "state": "open",
                    "routed_by": "model",
                    "priority": entry.priority,
                    "priority_breakdown": entry.priority_breakdown,
                    "rank": entry.rank,
                    "waiting_since": since,
                    "created_at": since,
                    "updated_at": since,
                }
            )
        return list(
            session.scalars(
                insert(QueueEntry).returning(QueueEntry.id, sort_by_parameter_order=True), rows
            )
        )


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def make_client(settings: Settings, classifier: Classifier, engine: Engine) -> Iterator[Any]:
    """Start the app with changed settings: ``make_client(wip_per_agent=2)``."""
    clients: list[TestClient] = []

    def start(**changes: Any) -> TestClient:
        app = create_app(settings.model_copy(update=changes), classifier=classifier)
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def agents(engine: Engine) -> dict[str, dict[str, str]]:
    return {
        "ann": bearer(api_key(engine, "ann", "agent")),
        "bob": bearer(api_key(engine, "bob", "agent")),
        "sam": bearer(api_key(engine, "sam", "agent", ["service"])),
        "tia": bearer(api_key(engine, "tia", "agent", ["triage"])),
        "vic": bearer(api_key(engine, "vic", "viewer")),
    }


def lapse(factory: sessionmaker[Session], entry_id: int) -> None:
    """The entry's lease ran out a second ago."""
    with unit_of_work(factory) as session:
        session.execute(
            update(QueueEntry)
            .where(QueueEntry.id == entry_id)
            .values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )


def claim(client: TestClient, queue: str, who: dict[str, str]) -> Any:
    return client.post(f"/queues/{queue}/claim", headers=who)


def test_claims_follow_priority_then_age_and_an_empty_queue_answers_204(
    client: TestClient, factory: sessionmaker[Session], agents: dict[str, dict[str, str]]
) -> None:
    ids = seed(
        factory,
        [
            Spec(sentiment="positive", compound=0.6, channel="canny"),  # lowest
            Spec(sentiment="negative", compound=-0.8, followers=50_000),  # highest
            Spec(sentiment="neutral", waited_minutes=30),  # same as the next, but older
            Spec(sentiment="neutral"),
        ],
    )

    order = []
    for _ in ids:
        response = claim(client, "service", agents["ann"])
        assert response.status_code == 200, response.text
        body = response.json()
        order.append(body["entry"]["id"])
        assert body["entry"]["claimed_by"] == "ann"
        assert body["item"]["id"] == body["entry"]["item_id"]
        assert "raw" in body["item"]
        breakdown = body["entry"]["priority_breakdown"]
        assert set(breakdown) == {"sentiment", "reach", "votes", "age", "channel"}
        assert body["entry"]["priority"] == pytest.approx(sum(breakdown.values()), abs=1e-3)
        resolved = client.post(
            f"/entries/{body['entry']['id']}/resolve", json={"note": "done"}, headers=agents["ann"]
        )
        assert resolved.status_code == 200, resolved.text

    assert order == [ids[1], ids[2], ids[3], ids[0]]
    empty = claim(client, "service", agents["ann"])
    assert empty.status_code == 204
    assert empty.content == b""


def test_age_raises_priority_until_an_old_entry_overtakes_a_louder_one(
    client: TestClient, factory: sessionmaker[Session], agents: dict[str, dict[str, str]]
) -> None:
    loud, old = seed(
        factory,
        [
            Spec(sentiment="negative", compound=-0.5),
            Spec(sentiment="neutral", waited_minutes=60 * 48),
        ],
    )
    first = claim(client, "service", agents["ann"]).json()["entry"]
    assert first["id"] == old
    assert first["priority_breakdown"]["age"] == pytest.approx(4.8, abs=0.01)
    assert claim(client, "service", agents["ann"]).json()["entry"]["id"] == loud


def test_lease_expiry_returns_the_entry_and_the_old_holder_gets_409(
    client: TestClient,
    factory: sessionmaker[Session],
    agents: dict[str, dict[str, str]],
) -> None:
    (entry_id,) = seed(factory, [Spec()])
    held = claim(client, "service", agents["ann"]).json()["entry"]
    lease_end = datetime.fromisoformat(held["lease_expires_at"])
    assert timedelta(minutes=14) < lease_end - datetime.now(UTC) <= timedelta(minutes=15)
    assert claim(client, "service", agents["bob"]).status_code == 204

    lapse(factory, entry_id)  # fifteen minutes pass

    taken = claim(client, "service", agents["bob"])
    assert taken.status_code == 200
    assert taken.json()["entry"]["id"] == entry_id
    assert taken.json()["entry"]["claimed_by"] == "bob"

    late = client.post(f"/entries/{entry_id}/resolve", json={"note": "x"}, headers=agents["ann"])
    assert late.status_code == 409
    assert late.headers["content-type"] == PROBLEM
    assert late.json()["held_by"] == "bob"
    assert late.json()["lease_expires_at"] is not None

    events = client.get("/audit").json()["events"]
    expired = [e for e in events if e["action"] == "entry.expire"]
    assert expired[0]["entity_id"] == str(entry_id)
    assert expired[0]["before"]["claimed_by"] == "ann"
    assert expired[0]["after"]["state"] == "open"


def test_expire_leases_reopens_lapsed_claims_for_the_scheduler(
    client: TestClient, factory: sessionmaker[Session], agents: dict[str, dict[str, str]]
) -> None:
    seed(factory, [Spec(), Spec()])
    first = claim(client, "service", agents["ann"]).json()["entry"]["id"]
    with unit_of_work(factory) as session:
        assert expire_leases(session, utcnow()) == 0
        assert expire_leases(session, utcnow() + timedelta(minutes=16)) == 1
    with factory() as session:
        entry = session.get(QueueEntry, first)
        assert entry is not None
        assert (entry.state, entry.claimed_by, entry.lease_expires_at) == ("open", None, None)


def test_only_the_lease_holder_acts_and_heartbeat_extends_the_lease(
    client: TestClient, factory: sessionmaker[Session], agents: dict[str, dict[str, str]]
) -> None:
    seed(factory, [Spec()])
    entry = claim(client, "service", agents["ann"]).json()["entry"]
    path = f"/entries/{entry['id']}"
    attempts = {
        "heartbeat": None,
        "resolve": {"note": "mine now"},
        "release": None,
        "dismiss": {"reason": "spam"},
        "reroute": {"queue": "sales", "reason": "pricing"},
        "sentiment": {"label": "negative"},
    }
    for action, body in attempts.items():
        response = client.post(f"{path}/{action}", json=body, headers=agents["bob"])
        assert response.status_code == 409, (action, response.text)
        assert response.json()["held_by"] == "ann"
        held_until = datetime.fromisoformat(response.json()["lease_expires_at"])
        assert held_until == datetime.fromisoformat(entry["lease_expires_at"])

    with unit_of_work(factory) as session:  # most of the lease has gone
        session.execute(
            update(QueueEntry)
            .where(QueueEntry.id == entry["id"])
            .values(lease_expires_at=utcnow() + timedelta(minutes=1))
        )
    renewed = client.post(f"{path}/heartbeat", headers=agents["ann"])
    assert renewed.status_code == 200
    remaining = datetime.fromisoformat(renewed.json()["lease_expires_at"]) - datetime.now(UTC)
    assert remaining > timedelta(minutes=14)


def test_release_resolve_and_dismiss_are_audited_before_and_after(
    client: TestClient, factory: sessionmaker[Session], agents: dict[str, dict[str, str]]
) -> None:
    first, second = seed(factory, [Spec(waited_minutes=5), Spec()])
    assert claim(client, "service", agents["ann"]).json()["entry"]["id"] == first
    released = client.post(f"/entries/{first}/release", headers=agents["ann"])
    assert released.json()["state"] == "open"
    assert released.json()["claimed_by"] is None

    assert claim(client, "service", agents["bob"]).json()["entry"]["id"] == first
    no_note = client.post(f"/entries/{first}/resolve", json={"note": ""}, headers=agents["bob"])
    assert no_note.status_code == 422
    done = client.post(
        f"/entries/{first}/resolve", json={"note": "refunded"}, headers=agents["bob"]
    )
    assert (done.json()["state"], done.json()["note"]) == ("resolved", "refunded")
    again = client.post(f"/entries/{first}/resolve", json={"note": "twice"}, headers=agents["bob"])
    assert again.status_code == 409
    assert again.json()["state"] == "resolved"

    assert claim(client, "service", agents["bob"]).json()["entry"]["id"] == second
    dismissed = client.post(
        f"/entries/{second}/dismiss", json={"reason": "spam"}, headers=agents["bob"]
    )
    assert (dismissed.json()["state"], dismissed.json()["note"]) == ("dismissed", "spam")

    events = client.get("/audit", params={"limit": 500}).json()["events"]
    actions = [(e["actor"], e["action"], e["entity_id"]) for e in reversed(events)]
    assert [a for a in actions if a[1].startswith("entry.")] == [
        ("ann", "entry.claim", str(first)),
        ("ann", "entry.release", str(first)),
        ("bob", "entry.claim", str(first)),
        ("bob", "entry.resolve", str(first)),
        ("bob", "entry.claim", str(second)),
        ("bob", "entry.dismiss", str(second)),
    ]
    resolve = next(e for e in events if e["action"] == "entry.resolve")
    assert resolve["before"]["state"] == "claimed"
    assert resolve["after"] == {
        "queue": "service",
        "state": "resolved",
        "claimed_by": "bob",
        "lease_expires_at": None,
        "note": "refunded",
    }
    assert datetime.fromisoformat(resolve["at"]).tzinfo is not None


def routed_item(client: TestClient, factory: sessionmaker[Session], classifier: Classifier) -> int:
    """One item that went through the real pipeline (so the signal counts it); its id."""
    with unit_of_work(factory) as session:
        source = Source(name="real", kind="demo", config={})
        session.add(source)
        session.flush()
        item = Item(
            source_id=source.id,
            external_id="real-1",
            channel="twitter",
            kind="post",
            text="the invoice charged me twice, I want a refund of the double payment",
            created_at=datetime(2026, 11, 1, 12, tzinfo=UTC),
            metrics={},
            raw={},
            content_hash="r1",
        )
        session.add(item)
        session.flush()
        classify_items(session, [item], classifier)
        return item.id


def signal_by_queue(factory: sessionmaker[Session]) -> dict[str, tuple[int, int]]:
    with factory() as session:
        rows = session.execute(
            select(
                SignalRollup.queue, func.sum(SignalRollup.count), func.sum(SignalRollup.negative)
            ).group_by(SignalRollup.queue)
        ).all()
    return {queue: (int(count), int(negative)) for queue, count, negative in rows if count}


def test_reroute_records_a_correction_moves_the_signal_and_sticks(
    client: TestClient,
    factory: sessionmaker[Session],
    classifier: Classifier,
    agents: dict[str, dict[str, str]],
) -> None:
    item_id = routed_item(client, factory, classifier)
    entry = client.get(f"/items/{item_id}").json()["entry"]
    source_queue = entry["queue"]
    target = "product" if source_queue != "product" else "marketing"
    assert signal_by_queue(factory).get(source_queue, (0, 0))[0] == 1

    if source_queue != "triage":
        not_held = client.post(
            f"/entries/{entry['id']}/reroute",
            json={"queue": target, "reason": "feature"},
            headers=agents["ann"],
        )
        assert not_held.status_code == 409
    claimed = claim(client, source_queue, agents["ann"]).json()["entry"]
    assert claimed["id"] == entry["id"]
    moved = client.post(
        f"/entries/{entry['id']}/reroute",
        json={"queue": target, "reason": "it is a feature request"},
        headers=agents["ann"],
    )
    assert moved.status_code == 200, moved.text
    new = moved.json()
    assert (new["queue"], new["state"], new["routed_by"]) == (target, "open", "agent")
    assert new["id"] != entry["id"]
    assert new["priority_breakdown"]["sentiment"] == claimed["priority_breakdown"]["sentiment"]

    with factory() as session:
        old = session.get(QueueEntry, entry["id"])
        assert old is not None
        assert old.state == "rerouted"
        assert old.closed_at is not None
        correction = session.scalars(select(Correction)).one()
        assert (correction.field, correction.old_value, correction.new_value) == (
            "queue",
            source_queue,
            target,
        )
        assert correction.actor == "ann"
        assert correction.reason == "it is a feature request"
        assert correction.text.startswith("the invoice charged me twice")
    signal = signal_by_queue(factory)
    assert signal.get(source_queue, (0, 0))[0] == 0
    assert signal[target][0] == 1
    assert client.get(f"/items/{item_id}").json()["queue"] == target

    with unit_of_work(factory) as session:  # a re-classification leaves the person's decision
        item = session.get(Item, item_id)
        assert item is not None
        classify_items(session, [item], classifier)
    assert client.get(f"/items/{item_id}").json()["queue"] == target


def test_triage_entries_are_assigned_in_one_click_by_triage_agents(
    client: TestClient, factory: sessionmaker[Session], agents: dict[str, dict[str, str]]
) -> None:
    (entry_id,) = seed(factory, [Spec(queue="triage")])
    body = {"queue": "sales", "reason": "asks for a quote"}
    scoped_elsewhere = client.post(f"/entries/{entry_id}/reroute", json=body, headers=agents["sam"])
    assert scoped_elsewhere.status_code == 403
    assigned = client.post(f"/entries/{entry_id}/reroute", json=body, headers=agents["tia"])
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["queue"] == "sales"
    with factory() as session:
        assert session.scalars(select(Correction.new_value)).all() == ["sales"]


def test_sentiment_correction_is_a_label_and_moves_signal_and_priority(
    client: TestClient,
    factory: sessionmaker[Session],
    classifier: Classifier,
    agents: dict[str, dict[str, str]],
) -> None:
    item_id = routed_item(client, factory, classifier)
    item = client.get(f"/items/{item_id}").json()
    queue, old_label = item["queue"], item["sentiment"]["label"]
    new_label = "positive" if old_label != "positive" else "negative"
    entry = claim(client, queue, agents["ann"]).json()["entry"]
    negatives_before = signal_by_queue(factory)[queue][1]

    fixed = client.post(
        f"/entries/{entry['id']}/sentiment",
        json={"label": new_label, "reason": "sarcasm"},
        headers=agents["ann"],
    )
    assert fixed.status_code == 200, fixed.text
    assert (
        fixed.json()["priority_breakdown"]["sentiment"] != entry["priority_breakdown"]["sentiment"]
    )
    assert client.get(f"/items/{item_id}").json()["sentiment"]["label"] == new_label
    negatives_after = signal_by_queue(factory)[queue][1]
    assert negatives_after - negatives_before == (1 if new_label == "negative" else -1) * (
        1 if "negative" in (new_label, old_label) else 0
    )
    with factory() as session:
        correction = session.scalars(select(Correction)).one()
        assert (correction.field, correction.old_value, correction.new_value) == (
            "sentiment",
            old_label,
            new_label,
        )
        assert "refund" in correction.text
    same = client.post(
        f"/entries/{entry['id']}/sentiment", json={"label": new_label}, headers=agents["ann"]
    )
    assert same.status_code == 422


def test_wip_limits_per_agent_and_per_queue_answer_429(
    make_client: Any,
    engine: Engine,
    factory: sessionmaker[Session],
    agents: dict[str, dict[str, str]],
) -> None:
    seed(factory, [Spec() for _ in range(4)] + [Spec(queue="sales") for _ in range(2)])
    client = make_client(wip_per_agent=2, wip_per_queue={"sales": 1})

    assert claim(client, "service", agents["ann"]).status_code == 200
    assert claim(client, "service", agents["ann"]).status_code == 200
    over = claim(client, "service", agents["ann"])
    assert over.status_code == 429
    assert over.headers["content-type"] == PROBLEM
    assert (over.json()["limit"], over.json()["max"]) == ("agent", 2)
    assert "per agent" in over.json()["detail"]

    assert claim(client, "sales", agents["bob"]).status_code == 200
    cat = bearer(api_key(engine, "cat", "agent"))
    full = claim(client, "sales", cat)
    assert full.status_code == 429
    assert (full.json()["limit"], full.json()["max"]) == ("queue", 1)
    assert claim(client, "service", cat).status_code == 200


def test_queue_statistics(
    client: TestClient, factory: sessionmaker[Session], agents: dict[str, dict[str, str]]
) -> None:
    seed(factory, [Spec(waited_minutes=90), Spec(waited_minutes=60), Spec(waited_minutes=30)])
    seed(factory, [Spec(queue="sales", waited_minutes=10)])
    first = claim(client, "service", agents["ann"]).json()["entry"]["id"]
    client.post(f"/entries/{first}/resolve", json={"note": "ok"}, headers=agents["ann"])
    claim(client, "service", agents["ann"])
    claim(client, "service", agents["bob"])

    service = client.get("/queues/service", headers=agents["vic"])
    assert service.status_code == 200
    stats = service.json()
    assert (stats["open"], stats["depth"], stats["claimed"], stats["resolved"]) == (0, 0, 2, 1)
    assert stats["wip"] == {"ann": 1, "bob": 1}
    assert stats["arrivals_per_hour"] == pytest.approx(3 / 24, abs=1e-3)
    assert stats["resolutions_per_hour"] == pytest.approx(1 / 24, abs=1e-3)
    assert 30 * 60 <= stats["median_wait_seconds"] <= 61 * 60
    assert stats["oldest_waiting_seconds"] is None
    assert stats["limits"] == {"agent": 5, "queue": None}

    listing = {row["queue"]: row for row in client.get("/queues").json()}
    assert set(listing) == {"product", "marketing", "sales", "service", "triage"}
    assert listing["sales"]["depth"] == listing["sales"]["open"] == 1
    assert 9 * 60 <= listing["sales"]["oldest_waiting_seconds"] <= 11 * 60
    assert listing["sales"]["median_wait_seconds"] is None
    missing = client.get("/queues/nowhere")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == PROBLEM


def test_priority_weights_are_documented_and_admins_change_them(
    client: TestClient, factory: sessionmaker[Session], agents: dict[str, dict[str, str]]
) -> None:
    loud, famous = seed(
        factory,
        [Spec(sentiment="negative", compound=-0.9), Spec(followers=1_000_000)],
    )
    weights = client.get("/priority", headers=agents["vic"]).json()
    assert weights["sentiment"] == 4.0
    assert "age_per_hour" in weights["formula"]
    refused = client.put("/priority", json={"reach": 10}, headers=agents["ann"])
    assert refused.status_code == 403

    changed = client.put("/priority", json={"reach": 10, "sentiment": 1})
    assert changed.status_code == 200
    assert (changed.json()["reach"], changed.json()["votes"]) == (10.0, 2.0)
    first = claim(client, "service", agents["ann"]).json()["entry"]
    assert first["id"] == famous
    assert first["priority_breakdown"]["reach"] == pytest.approx(10.0)
    events = client.get("/audit").json()["events"]
    audit = next(event for event in events if event["action"] == "priority.update")
    assert audit["actor"] == "test-admin"
    assert (audit["before"]["reach"], audit["after"]["reach"]) == (2.0, 10.0)
    assert loud != famous


def claims_counted(client: TestClient, queue: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(f'andon_claims_total{{queue="{queue}"}}'):
            return float(line.split()[-1])
    return 0.0


def test_a_granted_claim_is_counted_in_metrics_an_empty_one_is_not(
    client: TestClient, factory: sessionmaker[Session], agents: dict[str, dict[str, str]]
) -> None:
    seed(factory, [Spec(queue="service")])
    before = claims_counted(client, "service")

    assert claim(client, "service", agents["ann"]).status_code == 200
    assert claim(client, "service", agents["bob"]).status_code == 204

    assert claims_counted(client, "service") == before + 1


def test_the_claim_and_resolve_answers_match_get_entry_on_every_backend(
    client: TestClient, factory: sessionmaker[Session], agents: dict[str, dict[str, str]]
) -> None:
    # On PostgreSQL claim and resolve build their answers from plain rows of SQL text; GET
    # /entries/{id} from ORM objects. Every field must agree, a verdict or none.
    ids = seed(factory, [Spec(sentiment="negative", compound=-0.7, followers=12), Spec()])
    with unit_of_work(factory) as session:
        entries = session.scalars(select(QueueEntry).where(QueueEntry.id.in_(ids))).all()
        item_of = {entry.id: entry.item_id for entry in entries}
        session.execute(
            update(Item)
            .where(Item.id == item_of[ids[0]])
            .values(
                title="Late order",
                author_id="u1",
                author_handle="@ann",
                author_name="Ann",
                url="https://example.com/t/1",
                lang="en",
                thread_id="t1",
                raw={"id": 1, "nested": {"tags": ["a", "b"]}},
                metrics={"likes": 3},
                updated_at=utcnow(),
            )
        )
        session.execute(delete(Classification).where(Classification.item_id == item_of[ids[1]]))

    def without_live_age(entry: dict[str, Any]) -> dict[str, Any]:
        # The priority's age term is computed at answer time: it moves between two answers.
        breakdown = {k: v for k, v in entry["priority_breakdown"].items() if k != "age"}
        rest = {k: v for k, v in entry.items() if k not in ("priority", "priority_breakdown")}
        return {**rest, "priority_breakdown": breakdown}

    for _ in ids:
        claimed = claim(client, "service", agents["ann"])
        assert claimed.status_code == 200, claimed.text
        body = claimed.json()
        entry_id = body["entry"]["id"]
        shown = client.get(f"/entries/{entry_id}", headers=agents["ann"]).json()
        assert body["item"] == shown["item"]
        assert without_live_age(body["entry"]) == without_live_age(shown["entry"])
        assert (body["item"]["route"] is None) == (entry_id == ids[1])
        assert body["entry"]["lease_expires_at"].endswith("Z")

        resolved = client.post(
            f"/entries/{entry_id}/resolve", json={"note": "done"}, headers=agents["ann"]
        )
        assert resolved.status_code == 200, resolved.text
        after = client.get(f"/entries/{entry_id}", headers=agents["ann"]).json()["entry"]
        assert without_live_age(resolved.json()) == without_live_age(after)
        assert after["state"] == "resolved"


def test_on_postgresql_the_usual_claim_and_close_take_the_event_loop_path(
    client: TestClient,
    factory: sessionmaker[Session],
    engine: Engine,
    agents: dict[str, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # app.queues.fast serves the usual claim, resolve and dismiss on PostgreSQL; a lapsed
    # lease in the queue and a miss go to the general path, which handles them. SQLite:
    # every claim and close is the general path.
    from app.queues import router

    general: list[str] = []
    for name in ("_claim", "_close_unit"):
        original = getattr(router, name)

        def counted(*args: Any, _original: Any = original, _name: str = name) -> Any:
            general.append(_name)
            return _original(*args)

        monkeypatch.setattr(router, name, counted)
    postgres = engine.dialect.name == "postgresql"
    first, second, third = seed(factory, [Spec(), Spec(), Spec()])

    taken = claim(client, "service", agents["ann"]).json()["entry"]
    assert taken["id"] == first
    resolved = client.post(f"/entries/{first}/resolve", json={"note": "ok"}, headers=agents["ann"])
    assert resolved.json()["state"] == "resolved"
    assert claim(client, "service", agents["ann"]).json()["entry"]["id"] == second
    whole_second = (utcnow() + timedelta(minutes=10)).replace(microsecond=0)
    with unit_of_work(factory) as session:  # a heartbeat's lease, without a fraction
        session.execute(
            update(QueueEntry).where(QueueEntry.id == second).values(lease_expires_at=whole_second)
        )
    dismissed = client.post(
        f"/entries/{second}/dismiss", json={"reason": "spam"}, headers=agents["ann"]
    )
    assert dismissed.json()["state"] == "dismissed"
    assert general == ([] if postgres else ["_claim", "_close_unit", "_claim", "_close_unit"])
    # The audit rows are the general path's: times as Python's isoformat() writes them.
    events = client.get("/audit", params={"limit": 50}).json()["events"]
    row = {(e["action"], e["entity_id"]): e for e in events}
    claimed, closed = row[("entry.claim", str(first))], row[("entry.resolve", str(first))]
    assert closed["before"] == {**claimed["after"], "note": None}
    assert closed["after"] == {
        **claimed["after"],
        "state": "resolved",
        "lease_expires_at": None,
        "note": "ok",
    }
    lease = datetime.fromisoformat(claimed["after"]["lease_expires_at"])
    assert claimed["after"]["lease_expires_at"] == lease.isoformat()
    assert lease == datetime.fromisoformat(taken["lease_expires_at"])
    dismiss = row[("entry.dismiss", str(second))]
    assert dismiss["before"]["lease_expires_at"] == whole_second.isoformat()
    assert dismiss["after"] == {
        **dismiss["before"],
        "state": "dismissed",
        "lease_expires_at": None,
        "note": "spam",
    }

    # Bob's lease on the third lapses: Ann's claim goes the general way, which expires it.
    general.clear()
    assert claim(client, "service", agents["bob"]).json()["entry"]["id"] == third
    lapse(factory, third)  # fifteen minutes pass
    again = claim(client, "service", agents["ann"])
    assert again.json()["entry"]["id"] == third
    assert general == (["_claim"] if postgres else ["_claim", "_claim"])
    events = client.get("/audit", params={"limit": 50}).json()["events"]
    expired = [e for e in events if e["action"] == "entry.expire"]
    assert [(e["entity_id"], e["before"]["claimed_by"]) for e in expired] == [(str(third), "bob")]

    # A miss: the general path tells an empty queue (204) from a limit.
    general.clear()
    assert claim(client, "service", agents["bob"]).status_code == 204
    assert general == ["_claim"]
    # A close the fast path may not make: the general path answers why.
    conflict = client.post(f"/entries/{third}/resolve", json={"note": "x"}, headers=agents["bob"])
    assert conflict.status_code == 409
    assert conflict.json()["held_by"] == "ann"

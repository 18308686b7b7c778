"""The learning loop with a database: rules API, corrections as labels, re-classification."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from app.db import unit_of_work, utcnow
from app.items.models import Classification, Item
from app.items.service import store_page
from app.learning import service
from app.learning.models import TrainingRun
from app.learning.service import Classifier
from app.queues.models import Correction, QueueEntry
from app.signal import service as signal
from app.sources.models import Source
from classifiers.artifacts import ModelStore
from tests.conftest import api_key
from tests.support import make_item

TEXTS = [
    "my order never arrived and support will not answer",
    "please add a dark mode to the dashboard",
    "how much is the team plan for 40 seats?",
]


def add_items(factory: sessionmaker[Session], classifier: Classifier) -> list[int]:
    with unit_of_work(factory) as session:
        source = Source(name="feed", kind="jsonl", config={})
        session.add(source)
        session.flush()
        items = [make_item(n, text) for n, text in enumerate(TEXTS)]
        store_page(session, source.id, items, classifier)
    with factory() as session:
        return list(session.scalars(select(Item.id).order_by(Item.id)))


def entry_of(session: Session, item_id: int) -> QueueEntry:
    return session.scalars(
        select(QueueEntry).where(QueueEntry.item_id == item_id, QueueEntry.state != "rerouted")
    ).one()


def test_rules_api_versions_every_change_and_is_admin_only(
    client: TestClient, engine: Engine
) -> None:
    assert client.get("/rules").json() == {"version": 0, "rules": []}
    made = client.post(
        "/rules", json={"pattern_type": "keyword", "pattern": "refund", "queue": "service"}
    )
    assert made.status_code == 201, made.text
    rule = made.json()
    assert (rule["version"], rule["created_by"], rule["priority"]) == (1, "test-admin", 100)
    patched = client.patch(f"/rules/{rule['id']}", json={"queue": "sales", "priority": 5})
    assert patched.json()["version"] == 2
    assert client.get("/rules").json()["version"] == 2
    bad = client.post("/rules", json={"pattern_type": "regex", "pattern": "(", "queue": "sales"})
    assert bad.status_code == 422
    assert "does not compile" in bad.json()["detail"]
    assert client.patch("/rules/999", json={"queue": "sales"}).status_code == 404

    viewer = api_key(engine, "someone", "viewer")
    headers = {"Authorization": f"Bearer {viewer}"}
    assert client.get("/rules", headers=headers).status_code == 200
    denied = client.post(
        "/rules",
        json={"pattern_type": "keyword", "pattern": "x", "queue": "sales"},
        headers=headers,
    )
    assert denied.status_code == 403
    assert client.delete(f"/rules/{rule['id']}", headers=headers).status_code == 403

    deleted = client.delete(f"/rules/{rule['id']}")
    assert deleted.json() == {"id": rule["id"], "version": 3}
    assert client.get("/rules").json() == {"version": 3, "rules": []}


def test_reclassify_applies_rules_without_yanking_claimed_work(
    factory: sessionmaker[Session], classifier: Classifier
) -> None:
    ids = add_items(factory, classifier)
    with unit_of_work(factory) as session:
        claimed = entry_of(session, ids[1])
        claimed.state, claimed.claimed_by = "claimed", "agent-1"
        claimed.lease_expires_at = utcnow() + timedelta(minutes=15)
        before_claimed = claimed.queue
        rule = service.create_rule(
            session, pattern_type="source", pattern="feed", queue="marketing", actor="t"
        )
    progress = service.reclassify(factory, classifier, batch_size=2)
    assert (progress.total, progress.done, progress.batches) == (3, 3, 2)
    with factory() as session:
        first = entry_of(session, ids[0])
        assert (first.queue, first.state) == ("marketing", "open")
        verdict = session.get(Classification, ids[0])
        assert verdict is not None
        assert verdict.reason == f"rule {rule.id} (v1): source 'feed'"
        held = entry_of(session, ids[1])
        assert (held.queue, held.state, held.claimed_by) == (before_claimed, "claimed", "agent-1")
    future = utcnow() + timedelta(days=3650)
    assert service.reclassify(factory, classifier, since=future).done == 0


def test_reclassify_keeps_peoples_decisions_and_the_signal_exact(
    factory: sessionmaker[Session], classifier: Classifier
) -> None:
    ids = add_items(factory, classifier)
    with unit_of_work(factory) as session:
        rerouted = entry_of(session, ids[0])
        rerouted.queue, rerouted.routed_by = "product", "agent"  # a person's decision
        verdict = session.get_one(Classification, ids[2])
        fixed = "negative" if verdict.sentiment != "negative" else "positive"
        verdict.sentiment = fixed
        session.add(Correction(item_id=ids[2], field="sentiment", new_value=fixed, text=TEXTS[2]))
    with unit_of_work(factory) as session:  # the signal as the corrections left it
        signal.rebuild(session)
        service.create_rule(
            session, pattern_type="source", pattern="feed", queue="marketing", actor="t"
        )

    progress = service.reclassify(factory, classifier, batch_size=2)

    assert progress.done == 3
    with factory() as session:
        assert entry_of(session, ids[0]).queue == "product", "a person's routing stays"
        assert entry_of(session, ids[1]).queue == "marketing", "the model's moves"
        assert entry_of(session, ids[2]).queue == "marketing"
        assert session.get_one(Classification, ids[2]).sentiment == fixed, "a person's sentiment"
        assert session.get_one(Classification, ids[1]).reason.startswith("rule ")
        assert signal.stored(session) == signal.recompute(session)


def test_corrections_are_labels_and_training_records_a_challenge(
    factory: sessionmaker[Session], classifier: Classifier, tmp_path: Path
) -> None:
    ids = add_items(factory, classifier)
    with unit_of_work(factory) as session:
        for item_id, field, value in [
            (ids[0], "queue", "sales"),
            (ids[0], "queue", "service"),  # the later correction wins
            (ids[1], "sentiment", "positive"),
            (ids[2], "queue", "triage"),  # not a label: nobody said where it belongs
        ]:
            session.add(
                Correction(
                    item_id=item_id, field=field, new_value=value, text=TEXTS[ids.index(item_id)]
                )
            )
    with factory() as session:
        labels = service.correction_examples(session)
    assert [(e.text, e.queue, e.sentiment) for e in labels] == [
        (TEXTS[0], "service", None),
        (TEXTS[1], None, "positive"),
    ]

    store = ModelStore(tmp_path / "models")
    with unit_of_work(factory) as session:
        first = service.train_and_challenge(store, threshold=0.45, session=session)
    assert first.promoted
    assert first.corrections == 2
    assert store.active_version() == first.version
    with unit_of_work(factory) as session:
        second = service.train_and_challenge(store, threshold=0.45, session=session, force=True)
    assert second.champion == first.version
    assert second.challenge.champion_f1 is not None
    with factory() as session:
        runs = session.scalars(select(TrainingRun).order_by(TrainingRun.id)).all()
        assert [(r.promoted, r.forced, r.trigger) for r in runs] == [
            (True, False, "cli"),
            (True, True, "cli"),
        ]
        assert runs[1].champion_version == first.version


def test_models_api_lists_diffs_and_rolls_back(
    client: TestClient, engine: Engine, model_dir: Path
) -> None:
    store = ModelStore(model_dir)
    listed = client.get("/models").json()
    assert listed
    active = store.active_version()
    assert [m["version"] for m in listed if m["active"]] == [active]
    assert "macro_f1" in listed[-1]["metrics"]["holdout"]
    version = listed[-1]["version"]
    diff = client.get(f"/models/{version}/diff/{version}").json()
    assert diff["macro_f1"]["change"] == 0
    assert client.get("/models/nope/diff/nope").status_code == 404
    viewer = api_key(engine, "viewer", "viewer")
    denied = client.post(
        f"/models/{version}/activate", headers={"Authorization": f"Bearer {viewer}"}
    )
    assert denied.status_code == 403
    activated = client.post(f"/models/{version}/activate")
    assert activated.status_code == 200, activated.text
    assert activated.json()["active"] is True
    assert store.active_version() == version
    assert client.post("/models/nope/activate").status_code == 404

"""Sentiment in the learning loop: labels train a challenger, the promotion rule, rollback.

Label files are small and synthetic (written here, not the shared data). Every test works
on its own copy of the session's model directory (the seed-trained router and sentiment
default are already there), so nothing it promotes reaches the shared classifier.
"""

from __future__ import annotations

import itertools
import json
import random
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from app import jobs
from app.config import Settings
from app.db import unit_of_work
from app.items.models import Classification
from app.items.service import store_page
from app.learning import service
from app.learning.models import TrainingRun
from app.learning.service import Classifier, load_classifier
from app.main import create_app
from app.queues.models import QueueEntry
from app.sources.models import Source
from classifiers.artifacts import ModelStore
from classifiers.sentiment import SENTIMENT_STORE, active_sentiment, load_sentiment
from classifiers.train import Example, in_holdout
from tests.conftest import api_key
from tests.support import make_item
from tests.test_cli import andon

SUBJECTS = (
    "the new patch",
    "this headset",
    "the ranked mode",
    "season four",
    "the latest skin",
    "the map rework",
    "this controller",
    "the battle pass",
)
PREDICATES = {
    "positive": ("is great", "is awesome", "is amazing", "works perfectly", "is wonderful"),
    "negative": ("is terrible", "is awful", "is horrible", "is the worst", "is a disaster"),
    "neutral": (
        "drops on thursday",
        "is listed in the store",
        "comes in two colours",
        "is on the roadmap",
        "ships next week",
    ),
}
TAILS = ("fr", "ngl", "tbh", "imo", "this week", "on console")
FLIP = {"positive": "negative", "negative": "positive", "neutral": "positive"}


def texts_of(label: str) -> list[str]:
    return [
        f"{subject} {predicate} {tail}"
        for subject, predicate, tail in itertools.product(SUBJECTS, PREDICATES[label], TAILS)
    ]


def good_labels() -> list[Example]:
    """40 correct labels per sentiment (about a fifth fall in the held-out split)."""
    return [
        Example(text=text, sentiment=label, origin="good.jsonl")
        for label in PREDICATES
        for text in texts_of(label)[:40]
    ]


def wrong_labels() -> list[Example]:
    """Hundreds of deliberately wrong labels, all on the training side of the split."""
    return [
        Example(text=text, sentiment=FLIP[label], origin="wrong.jsonl")
        for label in PREDICATES
        for text in texts_of(label)[40:]
        if not in_holdout(text)
    ]


def write_labels(path: Path, examples: list[Example], queue: str | None = None) -> Path:
    with path.open("w", encoding="utf-8") as out:
        for example in examples:
            row = {"text": example.text, "sentiment": example.sentiment}
            if queue is not None:
                row["queue"] = queue
            out.write(json.dumps(row) + "\n")
    return path


@pytest.fixture
def models(tmp_path: Path, model_dir: Path, classifier: Classifier) -> Path:
    """A private copy of the session's models (trained once by the ``classifier`` fixture)."""
    copy = tmp_path / "models"
    shutil.copytree(model_dir, copy)
    return copy


def test_no_sentiment_labels_no_new_version(models: Path) -> None:
    store = service.sentiment_store(models)
    before = [meta.version for meta in store.versions()]
    routing_only = [Example(text="please add a dark mode", queue="product")]
    outcome = service.train_sentiment_challenge(models, routing_only)
    assert outcome.version is None
    assert not outcome.promoted
    assert outcome.reason == "no sentiment labels beyond the seed: sentiment model unchanged"
    assert [meta.version for meta in store.versions()] == before


def test_promotion_rule_force_rollback_and_start_up(models: Path) -> None:
    store = service.sentiment_store(models)
    default = store.active_version()
    assert default is not None
    classifier = load_classifier(models, 0.45, workers=1)
    default_scorer = classifier.sentiment.version

    # The held-out labels are right (the seed default scores them well); hundreds of
    # training labels are wrong.
    labels = [*good_labels(), *wrong_labels()]
    wrong = service.train_sentiment_challenge(models, labels, classifier=classifier)
    assert wrong.challenge is not None
    assert wrong.champion == default
    assert wrong.challenge.champion_f1 is not None
    assert wrong.challenge.challenger_f1 < wrong.challenge.champion_f1
    assert wrong.challenge.challenger_recall is not None
    assert not wrong.promoted
    assert "macro-F1 dropped; kept the active model" in wrong.reason
    assert store.active_version() == default, "a worse challenger is not promoted"
    assert classifier.sentiment.version == default_scorer
    assert wrong.version in [meta.version for meta in store.versions()], "saved to inspect"

    forced = service.train_sentiment_challenge(models, labels, force=True, classifier=classifier)
    assert forced.promoted
    assert forced.reason.endswith("forced")
    assert store.active_version() == forced.version
    assert classifier.sentiment.version != default_scorer, "the promoted model is swapped in"
    forced_scorer = classifier.sentiment.version

    # A service starting now loads the active (learned) version, not the seed default.
    started, version = active_sentiment(models)
    assert version == forced.version
    assert started.version == forced_scorer
    assert load_classifier(models, 0.45, workers=1).sentiment.version == forced_scorer

    service.activate_sentiment(classifier, store, default)  # roll back
    assert store.active_version() == default
    assert classifier.sentiment.version == default_scorer
    assert load_sentiment(models).version == default_scorer
    service.activate_sentiment(classifier, store, str(forced.version))  # and forward again
    assert load_sentiment(models).version == forced_scorer

    # An active version this scikit-learn cannot load: the seed default, which is made active.
    meta_path = models / SENTIMENT_STORE / str(forced.version) / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["sklearn_version"] = "0.0.1"
    meta_path.write_text(json.dumps(meta))
    assert load_sentiment(models).version == default_scorer
    assert store.active_version() == default, "the pointer names the version in use"


@pytest.fixture
def own_client(
    engine: Engine, database_url: str, models: Path
) -> Iterator[tuple[TestClient, Classifier]]:
    """An admin client on a private model directory with its own classifier."""
    classifier = load_classifier(models, 0.45, workers=1)
    settings = Settings(database_url=database_url, model_dir=models, scheduler=False, demo=False)
    app = create_app(settings, classifier=classifier, start_scheduler=False)
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {api_key(engine, 'admin', 'admin')}"
        yield client, classifier


def test_sentiment_corrections_train_the_challenger_through_the_api(
    own_client: tuple[TestClient, Classifier],
    factory: sessionmaker[Session],
    engine: Engine,
    models: Path,
) -> None:
    client, classifier = own_client
    default = service.sentiment_store(models).active_version()
    default_scorer = classifier.sentiment.version
    texts = [example.text for example in good_labels()][::4]  # 30 items, all three labels
    with unit_of_work(factory) as session:
        source = Source(name="feed", kind="jsonl", config={})
        session.add(source)
        session.flush()
        store_page(session, source.id, [make_item(n, t) for n, t in enumerate(texts)], classifier)
    with factory() as session:
        entries = session.execute(
            select(QueueEntry.id, Classification.sentiment).join(
                Classification, Classification.item_id == QueueEntry.item_id
            )
        ).all()
    assert len(entries) == len(texts)
    for entry_id, label in entries:  # an agent (here: admin) fixes every item's sentiment
        fixed = "negative" if label != "negative" else "positive"
        answer = client.post(f"/entries/{entry_id}/sentiment", json={"label": fixed})
        assert answer.status_code == 200, answer.text
    with factory() as session:
        corrections = service.correction_examples(session)
    assert len([e for e in corrections if e.sentiment]) == len(texts)
    on_train_side = sum(1 for text in texts if not in_holdout(text))

    trained = client.post("/models/train", json={})
    assert trained.status_code == 200, trained.text
    body = trained.json()["sentiment"]
    assert body["labels"] == len(texts)
    assert body["champion"] == default
    assert body["version"] is not None
    assert body["reason"].startswith("challenger macro-F1")
    assert body["blend"].startswith("words 0.25 of the blend")  # too few labels to choose it

    listed = client.get("/models", params={"kind": "sentiment"}).json()
    assert {m["kind"] for m in listed} == {"sentiment"}
    challenger = next(m for m in listed if m["version"] == body["version"])
    assert challenger["training"]["labels"] == on_train_side
    assert challenger["training"]["corrections"] == len(texts)
    assert challenger["metrics"]["challenge"]["champion"] == default
    assert challenger["parent"] == default
    assert body["version"] not in [m["version"] for m in client.get("/models").json()]
    store = service.sentiment_store(models)
    if body["promoted"]:
        assert store.active_version() == body["version"]
        assert classifier.sentiment.version != default_scorer
    else:
        assert store.active_version() == default
    with factory() as session:
        runs = session.scalars(select(TrainingRun).order_by(TrainingRun.id)).all()
        assert [(run.kind, run.trigger) for run in runs] == [
            ("routing", "api"),
            ("sentiment", "api"),
        ]
        assert runs[1].challenger_version == body["version"]
        assert runs[1].labels == len(texts)

    diff = client.get(
        f"/models/{default}/diff/{body['version']}", params={"kind": "sentiment"}
    ).json()
    assert diff["kind"] == "sentiment"
    assert diff["labels"] == {"from": 0, "to": on_train_side, "change": on_train_side}
    assert diff["challenge"]["macro_f1"]["to"] == body["challenger_f1"]
    rolled = client.post(f"/models/{default}/activate", params={"kind": "sentiment"})
    assert rolled.status_code == 200, rolled.text
    assert (rolled.json()["kind"], rolled.json()["active"]) == ("sentiment", True)
    assert store.active_version() == default
    assert classifier.sentiment.version == default_scorer
    assert client.get(f"/models/{default}").status_code == 404, "not a router version"
    assert client.get("/models", params={"kind": "mood"}).status_code == 422
    viewer = api_key(engine, "viewer", "viewer")
    denied = client.post(
        f"/models/{default}/activate",
        params={"kind": "sentiment"},
        headers={"Authorization": f"Bearer {viewer}"},
    )
    assert denied.status_code == 403

    # The scheduled retrain runs the same path: the same corrections train both models.
    assert jobs.retrain(factory, classifier, models, 0.45)
    with factory() as session:
        runs = session.scalars(select(TrainingRun).order_by(TrainingRun.id)).all()
        assert [(run.kind, run.trigger, run.labels) for run in runs[2:]] == [
            ("routing", "schedule", 0),
            ("sentiment", "schedule", len(texts)),
        ]
        assert runs[3].champion_version == default


def test_andon_train_states_both_outcomes_and_models_kind(tmp_path: Path, models: Path) -> None:
    env = {"ANDON_MODEL_DIR": str(models), "ANDON_DATABASE_URL": f"sqlite:///{tmp_path}/a.db"}
    assert andon("migrate", env=env).returncode == 0
    store = ModelStore(models / SENTIMENT_STORE)
    default = store.active_version()
    labels = write_labels(tmp_path / "labels.jsonl", good_labels(), queue="product")

    trained = andon("train", "--labels", str(labels), env=env)
    assert trained.returncode == 0, trained.stderr
    lines = trained.stdout.splitlines()
    assert lines[0].startswith("model ")  # the router's outcome (promoted or not) comes first
    assert "(120 labels beyond the seed, 0 from corrections)" in lines[0]
    [sentiment_line] = [line for line in lines if line.startswith("sentiment model ")]
    version = sentiment_line.split()[2]
    assert "active;" in sentiment_line
    assert f"({len(good_labels())} sentiment labels beyond the seed, 0 from corrections)" in (
        sentiment_line
    )
    assert "macro-recall" in trained.stdout
    # 120 labels, about 96 on the train side: too few to choose the blend by
    assert "words 0.25 of the blend (the default: fewer than 100 labels" in sentiment_line
    assert store.active_version() == version

    listed = andon("models", "list", "--kind", "sentiment", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "recall" in listed.stdout
    [row] = [line for line in listed.stdout.splitlines() if version in line]
    cells = [cell.strip() for cell in row.split("│")[1:-1]]
    train_side = sum(1 for example in good_labels() if not in_holdout(example.text))
    assert (cells[0], cells[1], cells[4], cells[5]) == ("*", str(train_side), "yes", version)
    holdout = store.meta(version).metrics["holdout"]
    assert cells[2:4] == [f"{holdout['macro_f1']:.3f}", f"{holdout['macro_recall']:.3f}"]
    assert str(default) in listed.stdout
    assert version not in andon("models", "list", env=env).stdout

    diff = andon("models", "diff", str(default), version, "--kind", "sentiment", env=env)
    assert diff.returncode == 0, diff.stderr
    assert json.loads(diff.stdout)["kind"] == "sentiment"

    missing = andon("models", "activate", "nope", "--kind", "sentiment", env=env)
    assert missing.returncode == 1
    assert missing.stderr.strip() == f"andon: no model version 'nope' in {store.directory}"
    rolled = andon("models", "activate", str(default), "--kind", "sentiment", env=env)
    assert rolled.returncode == 0, rolled.stderr
    assert rolled.stdout.strip() == f"sentiment model {default} active"
    assert store.active_version() == default

    again = andon("train", env=env)  # no label file, no corrections: nothing for sentiment
    assert again.returncode == 0, again.stderr
    assert "sentiment: no sentiment labels beyond the seed: sentiment model unchanged" in (
        again.stdout
    )
    assert store.active_version() == default


SLANG = {  # gamers' words: VADER reads "sick" and "insane" as negative, "mid" as nothing
    "positive": ("is sick", "is insane", "is savage", "is wicked", "is lethal", "is ridiculous"),
    "negative": ("is mid", "is cooked", "fell off", "is a no from me", "is washed", "is cap"),
    "neutral": ("dropped today", "is out now", "is live", "comes out friday", "got a patch",
                "is on sale"),
}  # fmt: skip
THINGS = ("the new season", "this skin", "the ranked map", "the battle pass", "the collab drop",
          "the patch", "this deck", "the raid boss", "the soundtrack", "the new hero",
          "the event", "this controller")  # fmt: skip
SLANG_TAILS = ("", " ngl", " fr", " tbh", " lol", " no cap")


def slang_labels(count: int) -> list[Example]:
    every = [
        Example(text=f"{thing} {phrase}{tail}", sentiment=label, origin="slang.jsonl")
        for label, phrases in SLANG.items()
        for thing, phrase, tail in itertools.product(THINGS, phrases, SLANG_TAILS)
    ]
    random.Random(0).shuffle(every)
    return every[:count]


def test_the_blend_follows_the_labels_when_there_are_enough() -> None:
    from classifiers import train
    from classifiers.sentiment import HYBRID_WORDS_WEIGHT

    labels = slang_labels(300)  # about 230 on the train side
    chosen = train.train_sentiment(labels)
    params = chosen.meta.training["params"]
    searched = chosen.meta.training["words_weight_search"]
    assert set(searched) == {f"{share:g}" for share in train.WORDS_WEIGHTS}
    # the lexicon is wrong about these words: the words model must weigh more than by default
    assert params["words_weight"] > HYBRID_WORDS_WEIGHT
    assert searched[f"{params['words_weight']:g}"] == max(searched.values())

    default = train.train_sentiment(labels, search=False)
    assert default.meta.training["params"]["words_weight"] == HYBRID_WORDS_WEIGHT
    assert default.meta.training["words_weight_search"] == {}
    held = chosen.meta.metrics["holdout"]["macro_f1"]
    # measured: 0.96 against 0.59 on the held-out labels
    assert held > default.meta.metrics["holdout"]["macro_f1"] + 0.1

    few = train.train_sentiment(good_labels())  # under SEARCH_MIN_LABELS on the train side
    assert few.meta.training["labels"] < train.SEARCH_MIN_LABELS
    assert few.meta.training["params"]["words_weight"] == HYBRID_WORDS_WEIGHT
    assert few.meta.training["words_weight_search"] == {}

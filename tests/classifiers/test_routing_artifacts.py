"""Router artifacts record their format; a stale one is refused and retrained, never run."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

from app.learning.service import load_router
from classifiers.artifacts import ROUTER_FORMAT, ArtifactError, ModelMeta, ModelStore
from classifiers.routing import QUEUES
from classifiers.train import Example, train_router

TINY = [
    Example(text=text, queue=queue)
    for queue, texts in {
        "product": ["please add dark mode", "add an export button", "tags would be great"],
        "marketing": ["loved your new ad", "unsubscribe me", "great campaign"],
        "sales": ["how much is the pro plan", "quote for 50 seats", "talk to sales"],
        "service": ["my order never arrived", "I was charged twice", "cannot log in"],
    }.items()
    for text in texts * 3
]


def _stale_artifact(store: ModelStore) -> str:
    """A router saved the way format 1 saved it: a FeatureUnion, no ``router_format``."""
    texts = [example.text for example in TINY]
    pipeline = Pipeline(
        [
            ("features", FeatureUnion([("words", TfidfVectorizer())])),
            ("model", LogisticRegression()),
        ]
    ).fit(texts, [example.queue for example in TINY])
    meta = ModelMeta(version="20240101-000000-stale000", created_at="2024-01-01T00:00:00+00:00")
    store.save(pipeline, meta, activate=True)
    data = json.loads((store.directory / meta.version / "meta.json").read_text())
    del data["router_format"]  # as written before formats were recorded
    (store.directory / meta.version / "meta.json").write_text(json.dumps(data))
    return meta.version


def test_a_trained_router_records_its_format(tmp_path: Path) -> None:
    result = train_router(TINY, holdout=0.25)
    assert result.meta.router_format == ROUTER_FORMAT
    store = ModelStore(tmp_path)
    store.save(result.router.pipeline, result.meta)
    pipeline, meta = store.load(result.meta.version)
    assert meta.router_format == ROUTER_FORMAT
    assert pipeline.predict(["quote for 50 seats"])[0] in QUEUES


def test_a_router_of_another_format_is_refused(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    stale = _stale_artifact(store)
    with pytest.raises(ArtifactError, match=rf"router format 1, this is {ROUTER_FORMAT}; retrain"):
        store.load(stale)
    # another kind of artifact (the sentiment model) has no router format to check
    meta = ModelMeta(
        version="sentiment-x", created_at="2024-01-01T00:00:00+00:00", kind="sentiment"
    )
    store.save(joblib.load(tmp_path / stale / "model.joblib"), meta)
    pipeline, loaded = store.load("sentiment-x")
    assert (loaded.kind, loaded.router_format) == ("sentiment", None)
    assert isinstance(pipeline, Pipeline)


def test_the_service_retrains_instead_of_loading_a_stale_router(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "models")
    stale = _stale_artifact(store)
    router = load_router(store.directory, 0.45)
    assert router.version != stale
    assert store.active_version() == router.version
    assert store.meta(router.version).router_format == ROUTER_FORMAT
    assert {meta.version for meta in store.versions()} == {stale, router.version}
    route = router.route("I was charged twice for my order and want a refund")
    assert route.queue == "service"
    assert route.reason.startswith("model: ")

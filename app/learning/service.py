"""The models in use: loaded once at start-up, shared by the API, the runner and the CLI.

If no router is stored yet (a fresh install) or the stored one was written by another
scikit-learn version, the router is trained from the seed corpus and saved, so the
service always starts with a model whose behaviour it can vouch for.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from classifiers.artifacts import ArtifactError, ModelStore
from classifiers.routing import Route, Router
from classifiers.sentiment import Sentiment, SentimentScorer
from classifiers.train import load_examples, seed_paths, train_router

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Verdict:
    sentiment: Sentiment
    route: Route


class Classifier:
    """Sentiment and routing for batches of texts."""

    def __init__(self, router: Router, sentiment: SentimentScorer | None = None) -> None:
        self.router = router
        self.sentiment = sentiment or SentimentScorer()

    @property
    def model_version(self) -> str:
        return self.router.version

    @property
    def sentiment_version(self) -> str:
        return str(self.sentiment.version)

    def classify(self, texts: Sequence[str]) -> list[Verdict]:
        sentiments = self.sentiment.score_batch(texts)
        routes = self.router.route_batch(texts)
        return [
            Verdict(sentiment=sentiment, route=route)
            for sentiment, route in zip(sentiments, routes, strict=True)
        ]


def train_seed_router(store: ModelStore, threshold: float) -> Router:
    """Train the router on the seed corpus, save it and make it the active version."""
    paths = seed_paths()
    if not paths:
        raise ArtifactError("no seed corpus found in classifiers/data/seed")
    result = train_router(load_examples(paths), threshold=threshold)
    store.save(result.router.pipeline, result.meta, activate=True)
    log.info("trained router %s on the seed corpus", result.meta.version)
    return result.router


def load_router(model_dir: Path, threshold: float) -> Router:
    """The active router; trained from the seed corpus when none is usable."""
    store = ModelStore(model_dir)
    version = store.active_version()
    if version is not None:
        try:
            pipeline, meta = store.load(version)
        except ArtifactError as exc:
            log.warning("active model unusable (%s); retraining from the seed corpus", exc)
        else:
            return Router(
                pipeline, version=meta.version, threshold=threshold, thresholds=meta.thresholds
            )
    return train_seed_router(store, threshold)


def load_classifier(model_dir: Path, threshold: float) -> Classifier:
    return Classifier(load_router(model_dir, threshold))

"""Routing: which team should act on a piece of feedback.

A scikit-learn pipeline (TF-IDF over word and character n-grams, then a linear model)
gives a probability per queue. The best queue always comes back, with its confidence;
when the confidence is below the queue's threshold the item is flagged for ``triage``
so a person decides. The reason names the words that weighed most for the decision.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

from classifiers.text import normalise

QUEUES: tuple[str, ...] = ("product", "marketing", "sales", "service")
TRIAGE = "triage"
DEFAULT_THRESHOLD = 0.45


@dataclass(frozen=True, slots=True)
class Route:
    queue: str
    """The best of the four queues, even when ``triage`` is true."""
    confidence: float
    triage: bool
    reason: str
    scores: Mapping[str, float] = field(default_factory=dict)


def build_pipeline(*, c: float = 4.0, random_state: int = 0) -> Pipeline:
    """The untrained router: word 1–2-grams and character 2–5-grams, logistic regression."""
    features = FeatureUnion(
        [
            (
                "words",
                TfidfVectorizer(
                    preprocessor=normalise,
                    ngram_range=(1, 2),
                    min_df=1,
                    sublinear_tf=True,
                    token_pattern=r"(?u)\b\w[\w']*\b",
                ),
            ),
            (
                "chars",
                TfidfVectorizer(
                    preprocessor=normalise,
                    analyzer="char_wb",
                    ngram_range=(2, 5),
                    min_df=2,
                    sublinear_tf=True,
                    max_features=200_000,
                ),
            ),
        ]
    )
    model = LogisticRegression(
        C=c, max_iter=3000, class_weight="balanced", random_state=random_state
    )
    return Pipeline([("features", features), ("model", model)])


class Router:
    """A trained pipeline plus the thresholds that decide triage."""

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        version: str,
        threshold: float = DEFAULT_THRESHOLD,
        thresholds: Mapping[str, float] | None = None,
        explain_terms: int = 3,
    ) -> None:
        self.pipeline = pipeline
        self.version = version
        self.threshold = threshold
        self.thresholds = dict(thresholds or {})
        self.explain_terms = explain_terms
        self.labels_: list[str] = [str(label) for label in pipeline.classes_]
        features: FeatureUnion = pipeline.named_steps["features"]
        words: TfidfVectorizer = features.transformer_list[0][1]
        self._n_word_features = len(words.vocabulary_)
        self._word_names = words.get_feature_names_out()

    def threshold_for(self, queue: str) -> float:
        return self.thresholds.get(queue, self.threshold)

    def route_batch(self, texts: Sequence[str]) -> list[Route]:
        if not texts:
            return []
        features = self.pipeline.named_steps["features"].transform(list(texts))
        model: LogisticRegression = self.pipeline.named_steps["model"]
        probabilities = model.predict_proba(features)
        best = probabilities.argmax(axis=1)
        word_block = features[:, : self._n_word_features].tocsr()
        routes = []
        for row, column in enumerate(best):
            queue = self.labels_[column]
            confidence = float(probabilities[row, column])
            triage = confidence < self.threshold_for(queue)
            terms = self._top_terms(word_block, row, model.coef_, int(column))
            reason = f"model: {', '.join(terms)}" if terms else "model: no known words"
            scores = {
                label: round(float(p), 4)
                for label, p in zip(self.labels_, probabilities[row], strict=True)
            }
            routes.append(
                Route(
                    queue=queue,
                    confidence=round(confidence, 4),
                    triage=triage,
                    reason=reason,
                    scores=scores,
                )
            )
        return routes

    def route(self, text: str) -> Route:
        return self.route_batch([text])[0]

    def _top_terms(self, block: Any, row: int, coef: np.ndarray, column: int) -> list[str]:
        start, end = block.indptr[row], block.indptr[row + 1]
        indices = block.indices[start:end]
        if len(indices) == 0:
            return []
        weights = coef[column if coef.shape[0] > 1 else 0, indices]
        contributions = block.data[start:end] * weights
        order = np.argsort(-contributions)
        return [
            str(self._word_names[indices[i]])
            for i in order[: self.explain_terms]
            if contributions[i] > 0
        ]

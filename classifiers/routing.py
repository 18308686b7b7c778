"""Routing: which team should act on a piece of feedback.

The decision for each item, in order:

1. **Rules** an operator wrote (``classifiers.rules``): the first matching rule decides;
   the reason names the rule and the rule-set version.
2. **Language**: a text confidently detected in a language the model was not trained on
   goes to triage with that reason (``classifiers.language``).
3. **The model**: TF-IDF over word and character n-grams (``classifiers.features``), a
   linear SVM, and probabilities calibrated by cross-validation (sigmoid / Platt scaling).
   The best queue always comes back with its confidence; below that queue's threshold the
   item is flagged for ``triage`` so a person decides. The reason names the words that
   weighed most, content words before function words.

A batch is routed with array operations end to end: one feature transform, one product for
the calibrated ensemble (``CalibratedLinear``), one language pass (``detect_batch``) and one
pass over the word features for all the explanations; Python runs once per text only to
build its ``Route``.

``Route.queue`` is always the best of the four queues, even when ``triage`` is true (a rule
that sends an item to triage keeps the model's best queue there).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC

from classifiers.features import RouterFeatures
from classifiers.language import DEFAULT_SUPPORTED, Language, detect_batch
from classifiers.rules import EMPTY_RULES, ItemFacts, RuleSet

QUEUES: tuple[str, ...] = ("product", "marketing", "sales", "service")
PLACEHOLDERS = frozenset({"0", "xurlx", "xuserx", "xemailx"})
_FUNCTION_WORDS = """
i me my mine myself we us our ours you your yours u ur he him his she her it its they them
their this that these those a an the to of for in on at by with from into about as and or
but if so than then there here is am are was were be been being do does did doing have has
had having can could would will shall should may might must im ive id dont cant wont isnt
what which who whom when where why how all any some just also very too up out over again
not no yes please pls
ich mich mir mein meine wir uns unser unsere sie ihr ihre ihnen du dein der die das den dem
des ein eine einen einem einer und oder aber zu von für mit auf an in im ist sind war bin
habe haben hat kann können könnten würde wäre bitte nicht kein keine es um
yo me mi mis nosotros nuestro nuestra usted su sus el la los las un una unos unas y o pero
de del a al en con por para es son fue soy tengo tiene puedo puede podría quiero no se lo
le que favor
je moi mon ma mes nous notre nos vous votre vos il elle ils le la les un une des et ou mais
de du à au aux en avec pour par sur est sont suis ai avez a peux pouvez pourriez voudrais
ne pas se ce qui que merci
"""
# English, then German, Spanish and French: pronouns, articles, prepositions, conjunctions,
# auxiliaries and modals, politeness
FUNCTION_WORDS = frozenset(_FUNCTION_WORDS.split())
"""Words that explain no routing decision to a person ("i", "for a", "of the"): a reason
names them only when no other word pushed the item towards its queue."""
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
    lang: str | None = None
    rule_id: int | None = None
    rule_version: int | None = None


def build_features() -> RouterFeatures:
    """Word 1–2-grams and character 2–5-grams within words (see ``classifiers.features``)."""
    return RouterFeatures(char_ngrams=(2, 5), char_min_df=2, char_max_features=200_000)


def build_pipeline(
    *, c: float = 0.5, calibrate: bool = True, folds: int = 5, random_state: int = 0
) -> Pipeline:
    """The untrained router: word 1–2-grams and character 2–5-grams into a linear model.

    With ``calibrate`` (the default) the model is a linear SVM whose scores are turned into
    probabilities by sigmoid calibration fitted on ``folds`` cross-validation folds, so a
    confidence of 0.8 means right about 80% of the time on data like the training data. It
    scored as well as logistic regression in seed cross-validation and across domains, and
    trains three times faster. Without calibration (too few examples per queue for folds)
    it is a class-balanced logistic regression.
    """
    model: Any
    if calibrate:
        svm = LinearSVC(C=c, class_weight="balanced", random_state=random_state)
        model = CalibratedClassifierCV(svm, method="sigmoid", cv=folds, ensemble=True)
    else:
        model = LogisticRegression(
            C=4.0, max_iter=3000, class_weight="balanced", random_state=random_state
        )
    return Pipeline([("features", build_features()), ("model", model)])


def linear_weights(model: Any) -> np.ndarray:
    """Per-class feature weights of the linear model (averaged over calibration folds)."""
    if isinstance(model, CalibratedClassifierCV):
        parts = [np.asarray(part.estimator.coef_) for part in model.calibrated_classifiers_]
        return np.asarray(np.mean(parts, axis=0))
    return np.asarray(model.coef_)


class CalibratedLinear:
    """``predict_proba`` of a sigmoid-calibrated linear SVM ensemble in one matrix product.

    ``CalibratedClassifierCV(LinearSVC, method="sigmoid", ensemble=True)`` holds one SVM and
    one sigmoid per queue for each calibration fold; its ``predict_proba`` validates the
    input and multiplies it by each fold's weights in turn, which costs more than the
    product itself on a batch of short texts. Here every fold's weights are one matrix: one
    product, then the same arithmetic as scikit-learn (sigmoid per queue, normalised per
    fold, averaged over folds). ``of`` returns None for any other model (the pipeline's own
    ``predict_proba`` is used); the tests check both agree.
    """

    def __init__(
        self,
        weights: np.ndarray,
        intercepts: np.ndarray,
        slopes: np.ndarray,
        offsets: np.ndarray,
        n_classes: int,
    ) -> None:
        self.weights = weights
        """(features, folds × columns): every fold's SVM weights side by side."""
        self.intercepts = intercepts
        self.slopes = slopes
        """(folds, columns): each sigmoid's ``a``; ``offsets`` its ``b``."""
        self.offsets = offsets
        self.n_classes = n_classes

    @classmethod
    def of(cls, model: Any) -> CalibratedLinear | None:
        if not isinstance(model, CalibratedClassifierCV):
            return None
        classes = np.asarray(model.classes_)
        weights, intercepts, slopes, offsets = [], [], [], []
        for part in model.calibrated_classifiers_:
            estimator = part.estimator
            if (
                getattr(part, "method", None) != "sigmoid"
                or not isinstance(estimator, LinearSVC)
                or not np.array_equal(np.asarray(estimator.classes_), classes)
                or not all(hasattr(c, "a_") and hasattr(c, "b_") for c in part.calibrators)
            ):
                return None
            weights.append(np.asarray(estimator.coef_, dtype=np.float64).T)
            intercepts.append(np.asarray(estimator.intercept_, dtype=np.float64))
            slopes.append([float(c.a_) for c in part.calibrators])
            offsets.append([float(c.b_) for c in part.calibrators])
        return cls(
            np.hstack(weights),
            np.concatenate(intercepts),
            np.asarray(slopes, dtype=np.float64),
            np.asarray(offsets, dtype=np.float64),
            len(classes),
        )

    def predict_proba(self, features: Any) -> np.ndarray:
        folds, columns = self.slopes.shape
        scores = np.asarray(features @ self.weights) + self.intercepts
        scores = scores.reshape(len(scores), folds, columns)
        # sklearn's _SigmoidCalibration: expit(-(a * score + b))
        calibrated = 1.0 / (1.0 + np.exp(self.slopes * scores + self.offsets))
        total = np.zeros((len(scores), self.n_classes))
        for fold in range(folds):
            part = calibrated[:, fold, :]
            if self.n_classes == 2:
                proba = np.column_stack([1.0 - part[:, 0], part[:, 0]])
            else:
                denominator = part.sum(axis=1)[:, np.newaxis]
                proba = np.full_like(part, 1 / self.n_classes)
                np.divide(part, denominator, out=proba, where=denominator != 0)
            proba[(proba > 1.0) & (proba <= 1.0 + 1e-5)] = 1.0
            total += proba
        total /= folds
        return total


def _made_of(terms: Sequence[str], words: frozenset[str]) -> np.ndarray:
    """Per term, whether every token of it is one of ``words``."""
    return np.array([all(token in words for token in term.split()) for term in terms], dtype=bool)


class Router:
    """A trained pipeline, the thresholds that decide triage, and the supported languages."""

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        version: str,
        threshold: float = DEFAULT_THRESHOLD,
        thresholds: Mapping[str, float] | None = None,
        languages: Sequence[str] | None = DEFAULT_SUPPORTED,
        explain_terms: int = 3,
    ) -> None:
        features = pipeline.named_steps.get("features")
        if not isinstance(features, RouterFeatures):
            raise TypeError(
                f"router pipeline's features are {type(features).__name__}, not RouterFeatures "
                "(an artifact of an older format: retrain it)"
            )
        self.pipeline = pipeline
        self.version = version
        self.threshold = threshold
        self.thresholds = dict(thresholds or {})
        self.languages: frozenset[str] | None = (
            frozenset(languages) if languages is not None else None
        )
        self.explain_terms = explain_terms
        self.labels_: list[str] = [str(label) for label in pipeline.classes_]
        self._features = features
        self._model = pipeline.named_steps["model"]
        self._fused = CalibratedLinear.of(self._model)
        self._n_word_features = features.n_word_features
        self._word_names: list[str] = [str(name) for name in features.word_names()]
        # "0", "xurlx" ... are normalisation placeholders: they explain nothing to a person
        self._explainable = ~_made_of(self._word_names, PLACEHOLDERS)
        # terms made of function words and placeholders only ("for a", "of 0"): named last
        self._secondary = _made_of(self._word_names, FUNCTION_WORDS | PLACEHOLDERS)
        weights = linear_weights(self._model)[:, : self._n_word_features]
        if weights.shape[0] == 1:  # two queues: one weight vector, for the second label
            weights = np.vstack([-weights[0], weights[0]])
        self._word_weights = weights

    def threshold_for(self, queue: str) -> float:
        return self.thresholds.get(queue, self.threshold)

    def supports(self, language: Language) -> bool:
        return self.languages is None or language.code is None or language.code in self.languages

    def route_batch(
        self,
        texts: Sequence[str],
        *,
        facts: Sequence[ItemFacts] | None = None,
        rules: RuleSet = EMPTY_RULES,
    ) -> list[Route]:
        """Route a batch. ``facts`` (one per text) feed rules and the language hint."""
        if not texts:
            return []
        texts = list(texts)
        if facts is not None and len(facts) != len(texts):
            raise ValueError("facts and texts differ in length")
        features, words = self._features.transform_with_words(texts)
        probabilities = self.predict_proba(features)
        best = probabilities.argmax(axis=1)
        explained = self._explain(words, best)
        if len(rules) and facts is None:
            facts = [ItemFacts(text=text) for text in texts]
        matches = rules.match_batch(facts) if facts is not None else [None] * len(texts)
        languages = detect_batch(texts, None if facts is None else [one.lang for one in facts])
        labels = self.labels_
        floors = [self.thresholds.get(label, self.threshold) for label in labels]
        routes = []
        for column, odds, terms, language, match in zip(
            best.tolist(), probabilities.tolist(), explained, languages, matches, strict=True
        ):
            queue = labels[column]
            scores = dict(zip(labels, [round(p, 4) for p in odds], strict=True))
            confidence = scores[queue]
            if match is not None:
                to_triage = match.rule.queue == TRIAGE
                routes.append(
                    Route(
                        queue=queue if to_triage else match.rule.queue,
                        confidence=confidence if to_triage else 1.0,
                        triage=to_triage,
                        reason=match.reason,
                        scores=scores,
                        lang=language.code,
                        rule_id=match.rule.id,
                        rule_version=rules.version,
                    )
                )
                continue
            reason = f"model: {', '.join(terms)}" if terms else "model: no known words"
            if self.supports(language):
                triage = confidence < floors[column]
            else:
                supported = ", ".join(sorted(self.languages or ()))
                reason = (
                    f"language {language.code!r} not supported (supported: {supported}); {reason}"
                )
                triage = True
            routes.append(Route(queue, confidence, triage, reason, scores, language.code))
        return routes

    def predict_proba(self, features: Any) -> np.ndarray:
        """Calibrated probabilities per queue (columns in ``labels_`` order)."""
        if self._fused is not None:
            return self._fused.predict_proba(features)
        return np.asarray(self._model.predict_proba(features))

    def route(self, text: str) -> Route:
        return self.route_batch([text])[0]

    def predict(self, texts: Sequence[str]) -> list[str]:
        """The best queue per text, model only (no rules, no language check): for evaluation."""
        return [str(label) for label in self.pipeline.predict(list(texts))]

    def _explain(self, words: Any, best: np.ndarray) -> list[list[str]]:
        """Per row, up to ``explain_terms`` words that pushed it most towards its best queue.

        ``words`` is the word block of the features. A word's push is its TF-IDF value times
        the linear model's weight for that queue; only positive pushes count, and
        placeholder-only terms are never named. Terms of function words only ("i", "for
        a") come after every other term that pushed: they are named only to fill the
        reason when fewer content words pushed. One pass over the batch's non-zeros, not
        one per row.
        """
        rows = np.repeat(np.arange(words.shape[0]), np.diff(words.indptr))
        columns, values = words.indices, words.data
        push = values * self._word_weights[best[rows], columns]
        keep = (push > 0) & self._explainable[columns]
        rows, columns, push = rows[keep], columns[keep], push[keep]
        # by row, content terms first, strongest push first
        order = np.lexsort((-push, self._secondary[columns], rows))
        rows, columns = rows[order], columns[order]
        rank = np.arange(len(rows)) - np.searchsorted(rows, rows)
        keep = rank < self.explain_terms
        rows, columns = rows[keep], columns[keep]
        names = self._word_names
        terms: list[list[str]] = [[] for _ in range(words.shape[0])]
        for row, column in zip(rows.tolist(), columns.tolist(), strict=True):
            terms[row].append(names[column])
        return terms

"""Training the router and the sentiment model from labelled JSON Lines.

The shipped models are trained on the project's own seed corpora (``classifiers/data/seed``,
written by hand under ``classifiers/data/GUIDE.md``; sentiment also ``classifiers/data/
sentiment``). Agent corrections and imported label files are added on top by the learning
loop in ``app``: a row with a ``queue`` trains the router, a row with a ``sentiment`` the
sentiment model, a row with both trains both.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from classifiers.artifacts import ROUTER_FORMAT, ModelMeta, new_version
from classifiers.evaluate import routing_report, sentiment_report
from classifiers.language import supported_languages
from classifiers.routing import DEFAULT_THRESHOLD, QUEUES, Router, build_pipeline
from classifiers.sentiment import (
    HYBRID_C,
    HYBRID_TAG,
    HYBRID_WORDS_WEIGHT,
    LABELS_ORIGIN,
    SENTIMENT_LABELS,
    CareScores,
    HybridSentimentModel,
    HybridState,
    SentimentLabel,
    SentimentScorer,
    load_seed_weighted,
)
from classifiers.text import compose, normalise

SEED_DIR = Path(__file__).parent / "data" / "seed"
SEED_PREFIX = "seed:"


class LabelFileError(ValueError):
    """A labelled file cannot be read; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    queue: str | None = None
    sentiment: str | None = None
    channel: str | None = None
    kind: str | None = None
    lang: str | None = None
    origin: str = ""


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, object)``; raise ``LabelFileError`` on a bad line."""
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise LabelFileError(f"{path}: cannot open ({exc.strerror})") from None
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                raise LabelFileError(f"{path}:{number}: invalid JSON ({exc.msg})") from None
            if not isinstance(value, dict):
                raise LabelFileError(f"{path}:{number}: expected a JSON object")
            yield number, value


def load_examples(paths: Iterable[Path]) -> list[Example]:
    """Read labelled examples; a line needs ``text`` and a valid ``queue`` or ``sentiment``."""
    examples = []
    for path in paths:
        origin = SEED_PREFIX if path.parent.resolve() == SEED_DIR.resolve() else ""
        for number, record in read_jsonl(path):
            text = record.get("text")
            if not isinstance(text, str) or not text.strip():
                raise LabelFileError(f"{path}:{number}: missing or empty 'text'")
            queue = record.get("queue")
            sentiment = record.get("sentiment")
            if queue is not None and queue not in QUEUES:
                raise LabelFileError(
                    f"{path}:{number}: queue {queue!r} is not one of {', '.join(QUEUES)}"
                )
            if sentiment is not None and sentiment not in SENTIMENT_LABELS:
                raise LabelFileError(
                    f"{path}:{number}: sentiment {sentiment!r} is not one of "
                    f"{', '.join(SENTIMENT_LABELS)}"
                )
            title = record.get("title") if isinstance(record.get("title"), str) else None
            examples.append(
                Example(
                    text=compose(text, title),
                    queue=queue,
                    sentiment=sentiment,
                    channel=record.get("channel"),
                    kind=record.get("kind"),
                    lang=record.get("lang"),
                    origin=f"{origin}{path.name}:{number}",
                )
            )
    return examples


def seed_paths() -> list[Path]:
    return sorted(SEED_DIR.glob("*.jsonl"))


def digest(examples: Sequence[Example]) -> str:
    sha = hashlib.sha256()
    for example in examples:
        sha.update(f"{example.queue}\t{example.text}\n".encode())
    return sha.hexdigest()


HOLDOUT_FRACTION = 0.2
TARGET_PRECISION = 0.9
MAX_THRESHOLD = 0.8
MIN_FOR_THRESHOLD = 10
# Corrections and imported labels come from the deployment's own domain, which the seed
# corpus may not cover: for the router each weighs as much as ten seed examples. On the
# learning curve (bench/learning_curve.py, two development domains, 100 / 300 / 1,000
# labels) 3 beat 1 on the 2,472-example seed; on the 2,973-example seed (2026-12-04) 10 beat
# 3 at every size on both (tickets 0.563 / 0.522 / 0.615 -> 0.578 / 0.558 / 0.647, bitext
# 0.716 / 0.864 / 0.956 -> 0.727 / 0.890 / 0.961), 6 fell between, and 20 lost on tickets
# (0.519 / 0.558 / 0.620). The champion/challenger check still guards every promotion.
LABEL_WEIGHT = 10.0
SENTIMENT_LABEL_WEIGHT = 3.0
"""A sentiment label's weight in seed examples (TweetEval's curve: 10 was no better than 3
at the ¼ blend; SENTIMENT.md)."""


def in_holdout(text: str, fraction: float = HOLDOUT_FRACTION) -> bool:
    """Whether an example belongs to the fixed held-out split.

    The split is a hash of the normalised text, so it never changes between runs or model
    versions: an example held out once is held out for every champion and challenger, and
    no model version is ever fitted on it.
    """
    if fraction <= 0:
        return False
    bucket = int(hashlib.sha256(normalise(text).encode()).hexdigest()[:8], 16) % 10_000
    return bucket < fraction * 10_000


def split_examples(
    examples: Sequence[Example], fraction: float = HOLDOUT_FRACTION
) -> tuple[list[Example], list[Example]]:
    """``(train, holdout)`` over the examples that carry a queue."""
    return hash_split([e for e in examples if e.queue is not None], fraction)


def hash_split(
    examples: Sequence[Example], fraction: float = HOLDOUT_FRACTION
) -> tuple[list[Example], list[Example]]:
    """``(train, holdout)`` by the fixed hash of each example's text (``in_holdout``)."""
    train: list[Example] = []
    holdout: list[Example] = []
    for example in examples:
        (holdout if in_holdout(example.text, fraction) else train).append(example)
    return train, holdout


def pick_thresholds(
    truth: Sequence[str],
    predicted: Sequence[str],
    confidence: Sequence[float],
    *,
    floor: float,
    target: float = TARGET_PRECISION,
) -> dict[str, float]:
    """Per queue, the lowest confidence from which the model's picks reach ``target`` precision.

    Chosen on the held-out split; never below ``floor`` (the configured triage threshold),
    never above ``MAX_THRESHOLD``; a queue with too few held-out picks keeps the floor.
    """
    thresholds: dict[str, float] = {}
    for queue in QUEUES:
        picks = sorted(
            (c, t == queue)
            for t, p, c in zip(truth, predicted, confidence, strict=True)
            if p == queue
        )
        if len(picks) < MIN_FOR_THRESHOLD:
            continue
        chosen = MAX_THRESHOLD
        for candidate in np.arange(floor, MAX_THRESHOLD + 1e-9, 0.05):
            kept = [right for c, right in picks if c >= candidate]
            if len(kept) >= MIN_FOR_THRESHOLD / 2 and sum(kept) / len(kept) >= target:
                chosen = float(candidate)
                break
        thresholds[queue] = round(max(floor, chosen), 2)
    return thresholds


def score_router(router: Router, holdout: Sequence[Example]) -> dict[str, Any]:
    """Macro-F1 (best queue, threshold-free) and the triage rate on held-out examples."""
    texts = [example.text for example in holdout]
    truth = [str(example.queue) for example in holdout]
    routes = router.route_batch(texts)
    report = routing_report(truth, [route.queue for route in routes], QUEUES)
    report["triage_rate"] = (
        round(sum(1 for route in routes if route.triage) / len(routes), 4) if routes else 0.0
    )
    return report


@dataclass(frozen=True, slots=True)
class TrainResult:
    router: Router
    meta: ModelMeta


def _folds(targets: Sequence[str]) -> int:
    smallest = min(targets.count(queue) for queue in set(targets))
    return min(5, smallest)


def train_router(
    examples: Sequence[Example],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    holdout: float = HOLDOUT_FRACTION,
    random_state: int = 0,
    parent: str | None = None,
    label_weight: float = LABEL_WEIGHT,
) -> TrainResult:
    """Fit the router on the examples that carry a queue, except the fixed held-out split.

    The held-out split (``in_holdout``) scores the model and sets the per-queue triage
    thresholds; it is never trained on, so the next challenger is compared on examples
    neither model has seen. Examples whose ``origin`` is not the seed corpus (corrections,
    imported labels) weigh ``label_weight`` times a seed example.
    """
    train, held = split_examples(examples, holdout)
    if len({example.queue for example in held}) < 2:  # too few to hold any out
        train, held = train + held, []
    queues = sorted({str(example.queue) for example in train})
    if len(queues) < 2:
        raise ValueError("training needs examples of at least two queues")
    texts = [example.text for example in train]
    targets = [str(example.queue) for example in train]
    weights = [1.0 if example.origin.startswith(SEED_PREFIX) else label_weight for example in train]
    folds = _folds(targets)
    pipeline = build_pipeline(calibrate=folds >= 2, folds=max(folds, 2), random_state=random_state)
    pipeline.fit(texts, targets, model__sample_weight=np.asarray(weights))
    everything = [example for example in examples if example.queue is not None]
    # Languages the corpus covers (held-out part included: it is about the corpus, and a
    # 20% hold-out would otherwise drop a language that has just enough examples).
    languages = supported_languages(
        [(example.lang, str(example.queue)) for example in everything], queues
    )
    version = new_version(digest(everything))
    router = Router(pipeline, version=version, threshold=threshold, languages=languages or None)
    metrics: dict[str, Any] = {}
    thresholds: dict[str, float] = {}
    if held:
        truth = [str(example.queue) for example in held]
        routes = router.route_batch([example.text for example in held])
        thresholds = pick_thresholds(
            truth,
            [route.queue for route in routes],
            [route.confidence for route in routes],
            floor=threshold,
        )
        router.thresholds = thresholds
        metrics["holdout"] = score_router(router, held)
    meta = ModelMeta(
        version=version,
        created_at=datetime.now(UTC).isoformat(),
        labels=[str(label) for label in pipeline.classes_],
        threshold=threshold,
        thresholds=thresholds,
        languages=languages,
        router_format=ROUTER_FORMAT,
        metrics=metrics,
        training={
            "examples": len(train),
            "holdout_examples": len(held),
            "per_queue": {queue: targets.count(queue) for queue in queues},
            "labels": sum(1 for example in train if not example.origin.startswith(SEED_PREFIX)),
            "label_weight": label_weight,
            "calibration": f"sigmoid, {folds}-fold" if folds >= 2 else "none",
            "digest": digest(everything),
        },
        parent=parent,
    )
    return TrainResult(router=router, meta=meta)


@dataclass(frozen=True, slots=True)
class Challenge:
    """The outcome of a challenger against the active model on the same held-out split.

    Sentiment challenges also report macro-recall (routing ones leave it None)."""

    promote: bool
    challenger_f1: float
    champion_f1: float | None
    holdout_examples: int
    reason: str
    challenger_recall: float | None = None
    champion_recall: float | None = None


def promotion(challenger_f1: float, champion_f1: float, *, force: bool) -> tuple[bool, str]:
    """The one promotion rule of both models: (promote?, why)."""
    if force:
        return True, "forced"
    if challenger_f1 >= champion_f1:
        return True, "macro-F1 did not drop; promoted"
    return False, "macro-F1 dropped; kept the active model"


def challenge(
    challenger: Router, champion: Router | None, examples: Sequence[Example], *, force: bool = False
) -> Challenge:
    """Score both models on the held-out split of ``examples``; promote if macro-F1 holds.

    Neither model was fitted on that split (both were trained by ``train_router``, which
    never fits on it). With no champion, or ``force``, the challenger is promoted.
    """
    _, held = split_examples(examples)
    if not held:
        return Challenge(True, 0.0, None, 0, "no held-out examples; promoted")
    challenger_f1 = float(score_router(challenger, held)["macro_f1"])
    if champion is None:
        return Challenge(True, challenger_f1, None, len(held), "no active model; promoted")
    champion_f1 = float(score_router(champion, held)["macro_f1"])
    promote, verdict = promotion(challenger_f1, champion_f1, force=force)
    return Challenge(
        promote,
        challenger_f1,
        champion_f1,
        len(held),
        f"challenger {challenger_f1:.4f} vs active {champion_f1:.4f} on {len(held)} "
        f"held-out examples: {verdict}",
    )


# --- sentiment ------------------------------------------------------------------------------


def split_sentiment(
    labels: Sequence[Example], fraction: float = HOLDOUT_FRACTION
) -> tuple[list[Example], list[Example]]:
    """``(train, holdout)`` over the labels that carry a sentiment, by the fixed hash split.

    Only labels (corrections, imported files) are split: the seed-trained default is fitted
    on the whole seed corpus, so no seed example is unseen by every model. Every challenger
    is fitted on the seed plus the train side, so the held-out labels are unseen by all.
    """
    return hash_split([e for e in labels if e.sentiment is not None], fraction)


def score_sentiment(scorer: SentimentScorer, holdout: Sequence[Example]) -> dict[str, Any]:
    """Macro-F1, macro-recall and accuracy of ``scorer`` on held-out sentiment labels."""
    guesses = scorer.score_batch([example.text for example in holdout])
    truth = [str(example.sentiment) for example in holdout]
    report = sentiment_report(truth, [guess.label for guess in guesses], SENTIMENT_LABELS)
    report.pop("confusion", None)
    return report


WORDS_WEIGHTS = (HYBRID_WORDS_WEIGHT, 0.5, 0.75)
"""The words model's shares of the hybrid's blend a challenger may take (the seed default
first). ¼ transfers best to text unlike the seed (SENTIMENT.md); with enough of the
deployment's own labels the words carry more: on the learning curve (``bench
learning_curve``, three public files as the domain) ¾ scored best at 1,000 labels on all
three."""
SEARCH_MIN_LABELS = 100
"""Fewest sentiment labels on the train side for the blend to be chosen among
``WORDS_WEIGHTS`` (below it the folds are too small to tell them apart: the default stays)."""
SEARCH_FOLDS = 3
SEARCH_MARGIN = 0.005
"""Macro-F1 a share must gain over the default, averaged over the folds, to be taken."""


def choose_words_weight(
    seed: tuple[Sequence[str], Sequence[SentimentLabel], Sequence[float]],
    seed_scores: Sequence[CareScores],
    labels: Sequence[Example],
    label_scores: Sequence[CareScores],
    label_weight: float,
) -> tuple[float, dict[str, float]]:
    """The words share of the blend for a challenger, by cross-validation on its labels.

    The labels (the train side only: the held-out split stays unseen) are cut into
    ``SEARCH_FOLDS`` folds by a hash of their text; each fold is scored by a hybrid fitted on
    the seed plus the other folds, at every share of ``WORDS_WEIGHTS`` (the blend is applied
    at prediction, so one fit per fold serves them all). The default is kept unless another
    share's mean macro-F1 is ``SEARCH_MARGIN`` higher. Returns the share and each share's
    mean macro-F1 (empty when there were too few labels to search).
    """
    if len(labels) < SEARCH_MIN_LABELS:
        return HYBRID_WORDS_WEIGHT, {}
    texts, targets, weights = seed
    folds = [
        int(hashlib.sha256(e.text.encode()).hexdigest()[:8], 16) % SEARCH_FOLDS for e in labels
    ]
    scores: dict[float, list[float]] = {share: [] for share in WORDS_WEIGHTS}
    for fold in range(SEARCH_FOLDS):
        fit = [i for i, f in enumerate(folds) if f != fold]
        held = [i for i, f in enumerate(folds) if f == fold]
        if not held or not fit:
            return HYBRID_WORDS_WEIGHT, {}
        state = HybridState.train(
            [*texts, *(labels[i].text for i in fit)],
            [*targets, *(cast_label(labels[i].sentiment) for i in fit)],
            [*seed_scores, *(label_scores[i] for i in fit)],
            [*weights, *(label_weight for _ in fit)],
            HYBRID_C,
            HYBRID_WORDS_WEIGHT,
        )
        truth = [str(labels[i].sentiment) for i in held]
        held_texts = [labels[i].text for i in held]
        held_scores = [label_scores[i] for i in held]
        for share in WORDS_WEIGHTS:
            state.words_weight = share
            guesses = state.predict_proba(held_texts, held_scores).argmax(axis=1)
            report = sentiment_report(truth, [state.classes_[g] for g in guesses], SENTIMENT_LABELS)
            scores[share].append(float(report["macro_f1"]))
    means = {share: float(np.mean(values)) for share, values in scores.items()}
    best = max(WORDS_WEIGHTS, key=lambda share: means[share])
    if means[best] - means[HYBRID_WORDS_WEIGHT] < SEARCH_MARGIN:
        best = HYBRID_WORDS_WEIGHT
    return best, {f"{share:g}": round(mean, 4) for share, mean in means.items()}


@dataclass(frozen=True, slots=True)
class SentimentTrainResult:
    scorer: SentimentScorer
    model: HybridSentimentModel
    meta: ModelMeta


def train_sentiment(
    labels: Sequence[Example],
    *,
    seed_paths: Iterable[Path] | None = None,
    parent: str | None = None,
    label_weight: float = SENTIMENT_LABEL_WEIGHT,
    holdout: float = HOLDOUT_FRACTION,
    base: SentimentScorer | None = None,
    search: bool = True,
) -> SentimentTrainResult:
    """Fit the hybrid on the sentiment seed corpora plus the train side of ``labels``.

    Seed records keep their per-corpus weights (``load_seed_weighted``, averaging 1); a label
    weighs ``label_weight`` (``SENTIMENT_LABEL_WEIGHT``: labels come from the deployment's
    own domain). The held-out side of ``labels`` is scored, never fitted. With ``search``
    and at least ``SEARCH_MIN_LABELS`` labels on the train side, the words share of the
    blend is chosen by cross-validation on them (``choose_words_weight``).
    """
    train, held = split_sentiment(labels, holdout)
    seed_texts, seed_labels, seed_weights = load_seed_weighted(seed_paths)
    texts = [*seed_texts, *(example.text for example in train)]
    targets: list[SentimentLabel] = [
        *seed_labels,
        *(cast_label(example.sentiment) for example in train),
    ]
    weights = [*seed_weights, *(label_weight for _ in train)]
    base = base or SentimentScorer()
    share = HYBRID_WORDS_WEIGHT
    searched: dict[str, float] = {}
    scores: list[CareScores] | None = None  # computed once, for the search and the fit
    if search and len(train) >= SEARCH_MIN_LABELS:
        scores = [base.care_scores(text) for text in texts]
        share, searched = choose_words_weight(
            (seed_texts, seed_labels, seed_weights),
            scores[: len(seed_texts)],
            train,
            scores[len(seed_texts) :],
            label_weight,
        )
    model = HybridSentimentModel(words_weight=share).fit(texts, targets, base, weights, scores)
    scorer = SentimentScorer(lexicon=base.lexicon, model=model)
    version = new_version(model.digest)  # like a router's; the seed default is hybrid-3-<digest>
    metrics: dict[str, Any] = {}
    if held:
        metrics["holdout"] = score_sentiment(scorer, held)
    meta = ModelMeta(
        version=version,
        created_at=datetime.now(UTC).isoformat(),
        kind="sentiment",
        labels=list(SENTIMENT_LABELS),
        metrics=metrics,
        training={
            "examples": len(texts),
            "holdout_examples": len(held),
            "per_label": {label: targets.count(label) for label in SENTIMENT_LABELS},
            "labels": len(train),
            "label_weight": label_weight,
            "scorer": base.version,
            "params": model.params(),
            "words_weight_search": searched,
            "tag": HYBRID_TAG,
            "digest": model.digest,
            "origin": LABELS_ORIGIN,
        },
        parent=parent,
    )
    return SentimentTrainResult(scorer=scorer, model=model, meta=meta)


def cast_label(value: str | None) -> SentimentLabel:
    if value not in SENTIMENT_LABELS:
        raise ValueError(f"sentiment {value!r} is not one of {', '.join(SENTIMENT_LABELS)}")
    return value


def challenge_sentiment(
    challenger: SentimentScorer,
    champion: SentimentScorer | None,
    labels: Sequence[Example],
    *,
    force: bool = False,
) -> Challenge:
    """Score both scorers on the held-out sentiment labels; promote if macro-F1 holds.

    The same rule as the router's ``challenge``: with no held-out labels, no champion, or
    ``force``, the challenger is promoted. Macro-recall is reported next to macro-F1.
    """
    _, held = split_sentiment(labels)
    if not held:
        return Challenge(True, 0.0, None, 0, "no held-out sentiment labels; promoted")
    mine = score_sentiment(challenger, held)
    challenger_f1, challenger_recall = float(mine["macro_f1"]), float(mine["macro_recall"])
    if champion is None:
        return Challenge(
            True,
            challenger_f1,
            None,
            len(held),
            "no active sentiment model; promoted",
            challenger_recall=challenger_recall,
        )
    theirs = score_sentiment(champion, held)
    champion_f1, champion_recall = float(theirs["macro_f1"]), float(theirs["macro_recall"])
    promote, verdict = promotion(challenger_f1, champion_f1, force=force)
    return Challenge(
        promote,
        challenger_f1,
        champion_f1,
        len(held),
        f"challenger macro-F1 {challenger_f1:.4f} (macro-recall {challenger_recall:.4f}) vs "
        f"active {champion_f1:.4f} ({champion_recall:.4f}) on {len(held)} held-out "
        f"sentiment labels: {verdict}",
        challenger_recall=challenger_recall,
        champion_recall=champion_recall,
    )

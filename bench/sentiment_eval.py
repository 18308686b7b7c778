"""Sentiment benchmark: stock VADER vs Andon's care scorer vs its learned layers, in one table.

    .venv/bin/python -m bench.sentiment_eval [--data ../shared/data] [--folds 5]

Rows, for each scorer: every ``sentiment_*.jsonl`` in the data directory, the demo items'
own labels (``connectors/data/demo.jsonl``, written separately from the seed corpus, never
trained on), and the seed corpus itself (the learned layers by k-fold cross-validation; the
lexicon scorers simply score it). Columns: accuracy, macro-recall, per-class recall.

The public files are read here, at benchmark time only; nothing fitted on them is written
anywhere. The learned layers are trained on the project's own seed corpus
(``classifiers/data/seed``), never on these files.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from sklearn.metrics import accuracy_score, recall_score
from sklearn.model_selection import StratifiedKFold

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from classifiers.sentiment import (
    SEED_DIR,
    SENTIMENT_LABELS,
    CareSentimentModel,
    HybridSentimentModel,
    SentimentLabel,
    SentimentScorer,
    load_seed_weighted,
    seed_paths,
)
from classifiers.text import compose

ROOT = Path(__file__).resolve().parents[1]
# ../shared/data beside the checkout, or beside the folder of worktrees.
DEFAULT_DATA = next(
    (p / "shared" / "data" for p in ROOT.parents if (p / "shared" / "data").is_dir()),
    ROOT.parent / "shared" / "data",
)
DEMO = ROOT / "connectors" / "data" / "demo.jsonl"

Predict = Callable[[list[str]], list[str]]
Fit = Callable[[list[str], list[SentimentLabel], list[float]], Predict]
Model = CareSentimentModel | HybridSentimentModel


def read_labelled(path: Path) -> tuple[list[str], list[str]]:
    texts, labels = [], []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            if record.get("sentiment") in SENTIMENT_LABELS:
                texts.append(record["text"])
                labels.append(record["sentiment"])
    return texts, labels


def read_demo(path: Path) -> tuple[list[str], list[str]]:
    """Demo items as the app classifies them (subject line + body) with their own labels."""
    texts, labels = [], []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            label = (record.get("labels") or {}).get("sentiment")
            if label in SENTIMENT_LABELS:
                texts.append(compose(record["text"], record.get("title")))
                labels.append(label)
    return texts, labels


def metrics(truth: Sequence[str], predicted: Sequence[str]) -> list[float]:
    per_class = recall_score(
        truth, predicted, labels=list(SENTIMENT_LABELS), average=None, zero_division=0
    )
    macro = recall_score(
        truth, predicted, labels=list(SENTIMENT_LABELS), average="macro", zero_division=0
    )
    return [float(accuracy_score(truth, predicted)), float(macro), *map(float, per_class)]


def cross_validated(
    fit: Fit, texts: list[str], labels: list[SentimentLabel], weights: list[float], folds: int
) -> list[str]:
    predicted = [""] * len(texts)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
    for train, test in splitter.split(texts, labels):
        predict = fit(
            [texts[i] for i in train], [labels[i] for i in train], [weights[i] for i in train]
        )
        for i, label in zip(test, predict([texts[i] for i in test]), strict=True):
            predicted[i] = label
    return predicted


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="folder of sentiment_*.jsonl"
    )
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds on seed")
    args = parser.parse_args(argv)

    seed_texts, seed_labels, seed_weights = load_seed_weighted()
    if not seed_texts:
        print("the seed corpus (classifiers/data) has no sentiment labels", file=sys.stderr)
        return 1
    care_texts, care_labels, _ = load_seed_weighted(
        [path for path in seed_paths() if path.parent == SEED_DIR]  # the care corpus alone
    )
    datasets: dict[str, tuple[list[str], list[str]]] = {}
    for path in sorted(args.data.glob("sentiment_*.jsonl")):
        datasets[path.stem.removeprefix("sentiment_")] = read_labelled(path)
    if not datasets:
        print(f"note: no sentiment_*.jsonl in {args.data}; demo and seed only", file=sys.stderr)
    datasets["demo (own labels)"] = read_demo(DEMO)

    stock = SentimentScorer(care=False)
    care = SentimentScorer()

    def labels_of(scorer: SentimentScorer) -> Predict:
        return lambda texts: [s.label for s in scorer.score_batch(texts)]

    def train(
        make: Callable[[], Model],
        texts: list[str],
        labels: list[SentimentLabel],
        weights: list[float] | None,
    ) -> SentimentScorer:
        return SentimentScorer(lexicon=care.lexicon, model=make().fit(texts, labels, care, weights))

    def learned(make: Callable[[], Model]) -> Fit:
        return lambda texts, labels, weights: labels_of(train(make, texts, labels, weights))

    def before() -> HybridSentimentModel:
        return HybridSentimentModel(words_weight=0.5)

    fixed: dict[str, Predict] = {"stock VADER": labels_of(stock), "Andon care": labels_of(care)}
    trained: dict[str, Fit] = {
        "care+LR": learned(CareSentimentModel),
        "hybrid": learned(HybridSentimentModel),
    }
    hybrid = train(HybridSentimentModel, seed_texts, seed_labels, seed_weights)
    full = {
        # The previous default (hybrid-2): care seed only, words half of the blend.
        "hybrid-2": labels_of(train(before, care_texts, care_labels, None)),
        "care+LR": labels_of(train(CareSentimentModel, seed_texts, seed_labels, seed_weights)),
        "hybrid": labels_of(hybrid),
    }
    print(f"stock:  {stock.version}\ncare:   {care.version}\nhybrid: {hybrid.version}")
    print(
        f"learned layers trained on {len(seed_texts)} seed records (hybrid-2: the "
        f"{len(care_texts)} care records only); seed row = {args.folds}-fold CV"
    )

    header = (
        f"| {'data':22} | {'n':>5} | {'scorer':12} | {'acc':>5} | {'macroR':>6} "
        f"| {'R-neg':>5} | {'R-neu':>5} | {'R-pos':>5} |"
    )
    print(header)
    print("|" + "|".join("-" * (len(cell)) for cell in header.split("|")[1:-1]) + "|")

    def row(data: str, n: int, name: str, truth: Sequence[str], predicted: Sequence[str]) -> None:
        acc, macro, r_neg, r_neu, r_pos = metrics(truth, predicted)
        print(
            f"| {data:22} | {n:5d} | {name:12} | {acc:5.3f} | {macro:6.3f} "
            f"| {r_neg:5.3f} | {r_neu:5.3f} | {r_pos:5.3f} |",
            flush=True,
        )

    for data, (texts, truth) in datasets.items():
        for name, predict in {**fixed, **full}.items():
            row(data, len(texts), name, truth, predict(texts))
    for name, predict in fixed.items():
        row("seed (scored)", len(seed_texts), name, seed_labels, predict(seed_texts))
    for name, fit in trained.items():
        predicted = cross_validated(fit, seed_texts, seed_labels, seed_weights, args.folds)
        row(f"seed ({args.folds}-fold CV)", len(seed_texts), name, seed_labels, predicted)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Sentiment benchmark: stock VADER vs Andon's care scorer (and its learned layer) on public data.

    .venv/bin/python bench/sentiment_eval.py [--data ../shared/data] [--no-learned]

Prints one table: for every ``sentiment_*.jsonl`` in the data directory, accuracy, macro-recall
and per-class recall of each scorer. The public files are read here, at benchmark time only;
nothing fitted on them is written anywhere. The learned layer is trained on the project's own
seed corpus (``classifiers/data/seed``), never on these files.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from sklearn.metrics import accuracy_score, recall_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from classifiers.sentiment import (
    SENTIMENT_LABELS,
    SentimentScorer,
    load_seed,
    train_care_model,
)

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def read_labelled(path: Path) -> tuple[list[str], list[str]]:
    texts, labels = [], []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            if record.get("sentiment") in SENTIMENT_LABELS:
                texts.append(record["text"])
                labels.append(record["sentiment"])
    return texts, labels


def metrics(truth: Sequence[str], predicted: Sequence[str]) -> list[float]:
    per_class = recall_score(
        truth, predicted, labels=list(SENTIMENT_LABELS), average=None, zero_division=0
    )
    macro = recall_score(
        truth, predicted, labels=list(SENTIMENT_LABELS), average="macro", zero_division=0
    )
    return [float(accuracy_score(truth, predicted)), float(macro), *map(float, per_class)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="folder of sentiment_*.jsonl"
    )
    parser.add_argument("--no-learned", action="store_true", help="skip the learned layer")
    args = parser.parse_args(argv)

    files = sorted(args.data.glob("sentiment_*.jsonl"))
    if not files:
        print(f"no sentiment_*.jsonl in {args.data}", file=sys.stderr)
        return 1

    scorers: dict[str, Callable[[list[str]], list[str]]] = {}
    stock = SentimentScorer(care=False)
    care = SentimentScorer()
    scorers["stock VADER"] = lambda texts: [s.label for s in stock.score_batch(texts)]
    scorers["Andon care"] = lambda texts: [s.label for s in care.score_batch(texts)]
    notes = [f"stock: {stock.version}", f"care:  {care.version}"]
    seed_texts, _ = load_seed()
    if not args.no_learned and seed_texts:
        learned = train_care_model()
        scorers["Andon care+LR"] = lambda texts: [s.label for s in learned.score_batch(texts)]
        notes.append(f"care+LR: {learned.version} (trained on {len(seed_texts)} seed records)")

    header = (
        f"{'file':34} {'n':>6} {'scorer':14} {'acc':>6} {'macroR':>7} "
        f"{'R-neg':>6} {'R-neu':>6} {'R-pos':>6} {'sec':>5}"
    )
    print("\n".join(notes))
    print(header)
    print("-" * len(header))
    for path in files:
        texts, truth = read_labelled(path)
        for name, predict in scorers.items():
            started = time.perf_counter()
            predicted = predict(texts)
            elapsed = time.perf_counter() - started
            acc, macro, r_neg, r_neu, r_pos = metrics(truth, predicted)
            print(
                f"{path.name:34} {len(texts):6d} {name:14} {acc:6.3f} {macro:7.3f} "
                f"{r_neg:6.3f} {r_neu:6.3f} {r_pos:6.3f} {elapsed:5.1f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Evaluation reports for routing and sentiment, as plain dictionaries.

Routing: per-queue precision / recall / F1, macro-F1, accuracy and the confusion matrix.
Sentiment: accuracy, macro-recall (the usual metric for three-way tweet sentiment),
macro-F1 (what the learning loop's promotion rule compares), per-label recall and F1 and
the confusion matrix.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sklearn.metrics import confusion_matrix, precision_recall_fscore_support


def _confusion(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> Any:
    matrix = confusion_matrix(y_true, y_pred, labels=list(labels))
    return {
        truth: {guess: int(matrix[i, j]) for j, guess in enumerate(labels)}
        for i, truth in enumerate(labels)
    }


def routing_report(
    y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]
) -> dict[str, Any]:
    """Per-queue precision/recall/F1 over the queues present in ``y_true``."""
    if len(y_true) != len(y_pred):
        raise ValueError("y_true and y_pred differ in length")
    present = [label for label in labels if label in set(y_true)]
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=present, zero_division=0
    )
    per_queue = {
        label: {
            "precision": round(float(precision[i]), 4),
            "recall": round(float(recall[i]), 4),
            "f1": round(float(f1[i]), 4),
            "support": int(support[i]),
        }
        for i, label in enumerate(present)
    }
    correct = sum(1 for truth, guess in zip(y_true, y_pred, strict=True) if truth == guess)
    return {
        "n": len(y_true),
        "accuracy": round(correct / len(y_true), 4) if y_true else 0.0,
        "macro_f1": round(float(sum(f1) / len(present)), 4) if present else 0.0,
        "per_queue": per_queue,
        "confusion": _confusion(y_true, y_pred, labels),
    }


def sentiment_report(
    y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, macro-recall and macro-F1 over the sentiment labels present in ``y_true``."""
    if len(y_true) != len(y_pred):
        raise ValueError("y_true and y_pred differ in length")
    present = [label for label in labels if label in set(y_true)]
    _, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=present, zero_division=0
    )
    correct = sum(1 for truth, guess in zip(y_true, y_pred, strict=True) if truth == guess)
    return {
        "n": len(y_true),
        "accuracy": round(correct / len(y_true), 4) if y_true else 0.0,
        "macro_recall": round(float(sum(recall) / len(present)), 4) if present else 0.0,
        "macro_f1": round(float(sum(f1) / len(present)), 4) if present else 0.0,
        "recall": {label: round(float(recall[i]), 4) for i, label in enumerate(present)},
        "f1": {label: round(float(f1[i]), 4) for i, label in enumerate(present)},
        "support": {label: int(support[i]) for i, label in enumerate(present)},
        "confusion": _confusion(y_true, y_pred, labels),
    }


def format_routing(report: dict[str, Any]) -> str:
    lines = [
        f"routing: n={report['n']}  accuracy={report['accuracy']:.3f}  "
        f"macro-F1={report['macro_f1']:.3f}",
        f"  {'queue':<10} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>8}",
    ]
    for queue, row in report["per_queue"].items():
        lines.append(
            f"  {queue:<10} {row['precision']:>9.3f} {row['recall']:>7.3f} "
            f"{row['f1']:>6.3f} {row['support']:>8}"
        )
    lines.extend(_format_confusion(report["confusion"]))
    return "\n".join(lines)


def format_sentiment(report: dict[str, Any]) -> str:
    recalls = "  ".join(f"{label}={value:.3f}" for label, value in report["recall"].items())
    lines = [
        f"sentiment: n={report['n']}  accuracy={report['accuracy']:.3f}  "
        f"macro-recall={report['macro_recall']:.3f}",
        f"  recall: {recalls}",
    ]
    lines.extend(_format_confusion(report["confusion"]))
    return "\n".join(lines)


def _format_confusion(confusion: dict[str, dict[str, int]]) -> list[str]:
    labels = list(confusion)
    width = max(10, *(len(label) + 1 for label in labels))
    lines = ["  confusion (rows: truth, columns: predicted)"]
    lines.append("  " + " " * width + "".join(f"{label:>{width}}" for label in labels))
    for truth in labels:
        cells = "".join(f"{confusion[truth][guess]:>{width}}" for guess in labels)
        lines.append(f"  {truth:<{width}}{cells}")
    return lines

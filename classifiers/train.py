"""Training the router from labelled JSON Lines.

The shipped model is trained on the project's own seed corpus (``classifiers/data/seed``,
written by hand under ``classifiers/data/GUIDE.md``). Agent corrections and imported label
files are added on top by the learning loop in ``app``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sklearn.model_selection import train_test_split

from classifiers.artifacts import ModelMeta, new_version
from classifiers.evaluate import routing_report
from classifiers.routing import DEFAULT_THRESHOLD, QUEUES, Router, build_pipeline
from classifiers.sentiment import SENTIMENT_LABELS
from classifiers.text import compose

SEED_DIR = Path(__file__).parent / "data" / "seed"


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
                    origin=f"{path.name}:{number}",
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


@dataclass(frozen=True, slots=True)
class TrainResult:
    router: Router
    meta: ModelMeta


def train_router(
    examples: Sequence[Example],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    holdout: float = 0.2,
    random_state: int = 0,
    parent: str | None = None,
) -> TrainResult:
    """Fit the router on ``examples`` that carry a queue.

    Metrics come from a stratified held-out split fitted separately; the returned model is
    then fitted on every example.
    """
    labelled = [example for example in examples if example.queue is not None]
    queues = sorted({str(example.queue) for example in labelled})
    if len(queues) < 2:
        raise ValueError("training needs examples of at least two queues")
    texts = [example.text for example in labelled]
    targets = [str(example.queue) for example in labelled]
    metrics: dict[str, Any] = {}
    if holdout > 0 and len(labelled) >= 20:
        train_x, test_x, train_y, test_y = train_test_split(
            texts, targets, test_size=holdout, stratify=targets, random_state=random_state
        )
        probe = build_pipeline(random_state=random_state).fit(train_x, train_y)
        metrics["holdout"] = routing_report(test_y, list(probe.predict(test_x)), QUEUES)
    pipeline = build_pipeline(random_state=random_state).fit(texts, targets)
    version = new_version(digest(labelled))
    meta = ModelMeta(
        version=version,
        created_at=datetime.now(UTC).isoformat(),
        labels=[str(label) for label in pipeline.classes_],
        threshold=threshold,
        metrics=metrics,
        training={
            "examples": len(labelled),
            "per_queue": {queue: targets.count(queue) for queue in queues},
            "digest": digest(labelled),
        },
        parent=parent,
    )
    return TrainResult(router=Router(pipeline, version=version, threshold=threshold), meta=meta)

"""Learning curve: how fast labels from a new domain improve the router and the sentiment model.

    .venv/bin/python -m bench --only learning_curve      (or: python bench/learning_curve.py)

For each public routing file the seed corpus does not cover (synthetic support tickets,
Bitext customer-service requests), a fixed hash split keeps 40% of the file as the test set;
the router is trained on the seed corpus plus 0, 100, 300 and 1,000 labels drawn (seeded)
from the other 60%, as `andon train --labels` would (a label weighs ten seed examples),
and scored on the test set: macro-F1 over the file's queues and the triage rate.

Sentiment, the same way on TweetEval's validation tweets (the seed corpora hold no tweets):
the hybrid is trained on the sentiment seed plus 0, 100, 300 and 1,000 of the file's labels
(``classifiers.train.train_sentiment``, what `andon train` fits), and scored on the test
40%: macro-recall and macro-F1, next to stock VADER on the same rows (the ratio column).
The public files are read here only; nothing trained on them is kept. The data directory is
``ANDON_SHARED_DATA``, default ``<repo>/../shared/data``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, bench/ would be first on the path and its modules (signal.py) would
# shadow the standard library's: put the repository root there instead.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

from bench import Row  # noqa: E402

DATA = Path(os.environ.get("ANDON_SHARED_DATA", ROOT.parent / "shared" / "data"))
FILES = ("routing_tickets_sample.jsonl", "routing_bitext.jsonl")
SENTIMENT_FILE = "sentiment_tweeteval_val.jsonl"
SIZES = (0, 100, 300, 1_000)


def _test_side(text: str) -> bool:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) % 100 < 40


def curve(path: Path, sizes: tuple[int, ...]) -> list[tuple[int, float, float, int]]:
    from classifiers.evaluate import routing_report
    from classifiers.routing import QUEUES
    from classifiers.text import compose
    from classifiers.train import Example, load_examples, seed_paths, train_router

    rows = [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]
    rows = [r for r in rows if r.get("queue") in QUEUES]
    pool = [r for r in rows if not _test_side(r["text"])]
    test = [r for r in rows if _test_side(r["text"])]
    random.Random(0).shuffle(pool)
    seed = load_examples(seed_paths())
    texts = [compose(r["text"], r.get("title")) for r in test]
    truth = [r["queue"] for r in test]
    results = []
    for size in sizes:
        labels = [
            Example(text=compose(r["text"], r.get("title")), queue=r["queue"], origin="bench")
            for r in pool[:size]
        ]
        router = train_router([*seed, *labels], holdout=0).router
        routes = router.route_batch(texts)
        report = routing_report(truth, [route.queue for route in routes], QUEUES)
        triage = sum(route.triage for route in routes) / len(routes)
        results.append((size, float(report["macro_f1"]), triage, len(test)))
    return results


def sentiment_curve(
    path: Path, sizes: tuple[int, ...]
) -> tuple[dict[str, float], list[tuple[int, dict[str, float]]], int]:
    """Stock VADER's scores and, per size, the trained hybrid's on the test side."""
    from classifiers.evaluate import sentiment_report
    from classifiers.sentiment import SENTIMENT_LABELS, SentimentScorer
    from classifiers.train import Example, train_sentiment

    rows = [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]
    rows = [r for r in rows if r.get("sentiment") in SENTIMENT_LABELS]
    pool = [r for r in rows if not _test_side(r["text"])]
    test = [r for r in rows if _test_side(r["text"])]
    random.Random(0).shuffle(pool)
    texts = [r["text"] for r in test]
    truth = [r["sentiment"] for r in test]

    def scores(scorer: SentimentScorer) -> dict[str, float]:
        report = sentiment_report(
            truth, [s.label for s in scorer.score_batch(texts)], SENTIMENT_LABELS
        )
        return {"macro_recall": report["macro_recall"], "macro_f1": report["macro_f1"]}

    stock = scores(SentimentScorer(care=False))
    base = SentimentScorer()
    results = []
    for size in sizes:
        labels = [
            Example(text=r["text"], sentiment=r["sentiment"], origin="bench") for r in pool[:size]
        ]
        trained = train_sentiment(labels, holdout=0, base=base)
        figures = scores(trained.scorer)
        figures["words_weight"] = float(trained.meta.training["params"]["words_weight"])
        results.append((size, figures))
    return stock, results, len(test)


def sentiment_rows(sizes: tuple[int, ...]) -> list[Row]:
    path = DATA / SENTIMENT_FILE
    if not path.is_file():
        return [Row("learning", SENTIMENT_FILE, float("nan"), "macro-F1", note=f"{path} missing")]
    stock, points, n = sentiment_curve(path, sizes)
    out = [
        Row(
            "learning",
            f"{SENTIMENT_FILE}: stock VADER",
            stock["macro_f1"],
            "macro-F1",
            note=f"macro-recall {stock['macro_recall']:.3f}, test n={n}",
        )
    ]
    for size, figures in points:
        out.append(
            Row(
                "learning",
                f"{SENTIMENT_FILE}: sentiment seed + {size:,} labels",
                figures["macro_f1"],
                "macro-F1",
                reference="stock VADER",
                ratio=figures["macro_f1"] / stock["macro_f1"] if stock["macro_f1"] else None,
                note=f"macro-recall {figures['macro_recall']:.3f} (VADER "
                f"{stock['macro_recall']:.3f}), words {figures['words_weight']:g} of the "
                f"blend, test n={n}",
            )
        )
    return out


def run(args: argparse.Namespace) -> list[Row]:
    sizes = (0, 100) if getattr(args, "quick", False) else SIZES
    out: list[Row] = []
    for name in FILES:
        path = DATA / name
        if not path.is_file():
            out.append(Row("learning", name, float("nan"), "macro-F1", note=f"{path} missing"))
            continue
        points = curve(path, sizes)
        base = points[0][1]
        for size, f1, triage, n in points:
            out.append(
                Row(
                    "learning",
                    f"{name}: seed + {size:,} labels",
                    f1,
                    "macro-F1",
                    reference="seed only",
                    ratio=f1 / base if base else None,
                    note=f"triage {triage:.1%}, test n={n}",
                )
            )
    out.extend(sentiment_rows(sizes))
    return out


if __name__ == "__main__":
    for row in run(argparse.Namespace(quick="--quick" in sys.argv)):
        print(f"{row.measure:<50} {row.value:.3f} {row.unit}  {row.note}")

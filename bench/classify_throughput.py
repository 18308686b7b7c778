"""Throughput of `andon classify` on 20,000 texts next to stock VADER alone, in one run.

    .venv/bin/python -m bench --only classify_throughput
    .venv/bin/python bench/classify_throughput.py           (the same, standalone)

Texts come from ``bench.texts`` (generated, seeded). The router is trained first into a
throw-away model directory (not timed); then the same texts are scored by stock VADER's
``polarity_scores`` (the reference), by ``Classifier.classify`` in batches of 512 in this
process, and by the real ``andon classify`` command in a subprocess (start-up and model
load included), each timed once.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, bench/ would be first on the path and its modules (signal.py) would
# shadow the standard library's (subprocess imports signal): put the repository root there
# instead, before anything else is imported.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

from bench import Row, verify  # noqa: E402
from bench.texts import text_for  # noqa: E402
from classifiers.text import compose  # noqa: E402

BATCH = 512


def run(args: argparse.Namespace) -> list[Row]:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    from app.learning.service import load_classifier

    count = 2_000 if getattr(args, "quick", False) else 20_000
    texts = [text_for(i)[0] for i in range(count)]
    with tempfile.TemporaryDirectory(prefix="andon-bench-classify-") as folder:
        base = Path(folder)
        classifier = load_classifier(base / "models", 0.45)  # trains once, not timed
        source = base / "in.jsonl"
        source.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))

        analyzer = SentimentIntensityAnalyzer()
        started = time.perf_counter()
        for text in texts:
            analyzer.polarity_scores(text)
        vader = count / (time.perf_counter() - started)

        sentiment_rows = _sentiment_rows(classifier.sentiment, count)

        started = time.perf_counter()
        for start in range(0, count, BATCH):
            classifier.classify(texts[start : start + BATCH])
        in_process = count / (time.perf_counter() - started)

        env = {k: v for k, v in os.environ.items() if not k.startswith("ANDON_")}
        env["ANDON_MODEL_DIR"] = str(base / "models")
        output = base / "out.jsonl"
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "app", "classify", "-i", str(source), "-o", str(output)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        command = count / (time.perf_counter() - started)
        verify(done.returncode == 0, f"andon classify failed: {done.stderr.strip()[-300:]}")
        lines = output.read_text().splitlines()
        verify(len(lines) == count, f"andon classify wrote {len(lines)} of {count} lines")
        verify("route" in json.loads(lines[0])["andon"], "no route in the output")
    note = "sentiment (VADER + care rules + learned layer) + language + calibrated router"
    return [
        Row(
            "classify",
            f"stock VADER polarity_scores, {count:,} texts",
            vader,
            "texts/s",
            note="reference, same texts, same run",
        ),
        *sentiment_rows,
        Row(
            "classify",
            f"Classifier.classify, batches of {BATCH}",
            in_process,
            "texts/s",
            reference="stock VADER",
            ratio=in_process / vader,
            note=note,
        ),
        Row(
            "classify",
            f"`andon classify` command, {count:,} texts",
            command,
            "texts/s",
            reference="stock VADER",
            ratio=command / vader,
            note="subprocess: start-up, model load and JSON I/O included",
        ),
    ]


def _sentiment_rows(scorer: Any, count: int) -> list[Row]:
    """The default sentiment scorer alone (``score_batch``: pre-pass + VADER + learned layer),
    and the same scorer the straightforward way (reference pre-pass, stock VADER's own
    ``polarity_scores``, scikit-learn's TF-IDF), each against stock VADER on the same texts
    (subject + body, ~150 characters, as the app classifies them). Verified: the two paths
    give identical labels and compounds on every text the reference scores."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    from classifiers.sentiment import HybridSentimentModel

    model = scorer.model
    verify(isinstance(model, HybridSentimentModel), "the default scorer has no hybrid layer")
    texts = [compose(*reversed(text_for(i))) for i in range(count)]

    analyzer = SentimentIntensityAnalyzer()
    started = time.perf_counter()
    for text in texts:
        analyzer.polarity_scores(text)
    vader = count / (time.perf_counter() - started)

    started = time.perf_counter()
    fast: list[Any] = []
    for start in range(0, count, BATCH):
        fast.extend(scorer.score_batch(texts[start : start + BATCH]))
    fast_rate = count / (time.perf_counter() - started)

    reference_count = min(count, 2_000)  # the reference is slow; its rate is per text anyway
    started = time.perf_counter()
    reference: list[Any] = []
    for start in range(0, reference_count, BATCH):
        batch = texts[start : min(start + BATCH, reference_count)]
        scores = [scorer.care_scores_reference(text) for text in batch]
        probabilities = model.state_.predict_proba(batch, scores, reference=True)
        reference.extend(model.results(probabilities))
    reference_rate = reference_count / (time.perf_counter() - started)
    verify(len(fast) == count, f"score_batch returned {len(fast)} of {count}")
    verify(
        fast[:reference_count] == reference,
        "the fast sentiment path differs from the straightforward reference",
    )
    return [
        Row(
            "classify",
            f"stock VADER polarity_scores, {count:,} subject + body texts",
            vader,
            "texts/s",
            note="reference for the two sentiment rows below, same run",
        ),
        Row(
            "classify",
            "sentiment score_batch (default: care pre-pass + VADER + learned layer)",
            fast_rate,
            "texts/s",
            reference="stock VADER",
            ratio=fast_rate / vader,
            note=f"batches of {BATCH}; {count:,} texts",
        ),
        Row(
            "classify",
            "the same, straightforward reference path",
            reference_rate,
            "texts/s",
            reference="stock VADER",
            ratio=reference_rate / vader,
            note=f"identical results verified on {reference_count:,} texts; the code before",
        ),
    ]


if __name__ == "__main__":
    for row in run(argparse.Namespace(quick="--quick" in sys.argv)):
        ratio = f"  ({row.ratio:.2f}× {row.reference})" if row.ratio else ""
        print(f"{row.measure:<48} {row.value:>10,.0f} {row.unit}{ratio}  {row.note}")

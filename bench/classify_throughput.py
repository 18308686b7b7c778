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

from bench import Row, verify  # noqa: E402
from bench.texts import text_for  # noqa: E402

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
    note = "sentiment (VADER + care rules) + language + calibrated router"
    return [
        Row(
            "classify",
            f"stock VADER polarity_scores, {count:,} texts",
            vader,
            "texts/s",
            note="reference, same texts, same run",
        ),
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


if __name__ == "__main__":
    for row in run(argparse.Namespace(quick="--quick" in sys.argv)):
        ratio = f"  ({row.ratio:.2f}× {row.reference})" if row.ratio else ""
        print(f"{row.measure:<48} {row.value:>10,.0f} {row.unit}{ratio}  {row.note}")

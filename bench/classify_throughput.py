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
from collections.abc import Callable  # noqa: E402
from typing import TYPE_CHECKING, Any  # noqa: E402

from bench import Row, verify  # noqa: E402
from bench.texts import text_for  # noqa: E402

BATCH = 512
DATA = Path(os.environ.get("ANDON_SHARED_DATA", ROOT.parent / "shared" / "data"))

if TYPE_CHECKING:
    from classifiers.routing import Router


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
        *routing_rows(classifier.router, count // 4),
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


# --- routing and language, per text (issue 6 / 11) ----------------------------------------

ROUNDS = 5
LANGUAGE_FILE = "routing_tickets_sample.jsonl"
"""Public file with a ``lang`` field (en/de): detection is scored against it when present."""


def _per_text(
    batches: list[list[str]], works: dict[str, Callable[[list[str]], Any]]
) -> dict[str, tuple[float, list[Any]]]:
    """CPU µs per text of each work over the batches, and the results of its last run.

    CPU time of this process, not wall time, so another process's load counts less. The
    works take turns batch by batch, ``ROUNDS`` times, and each (work, batch) keeps its
    fastest run: a disturbance hits the reference and the measured code alike, and the
    least disturbed run is the closest to the code's own cost.
    """
    best = {name: [float("inf")] * len(batches) for name in works}
    results: dict[str, list[Any]] = {name: [None] * len(batches) for name in works}
    for _ in range(ROUNDS):
        for index, batch in enumerate(batches):
            for name, work in works.items():
                started = time.process_time()
                results[name][index] = work(batch)
                best[name][index] = min(best[name][index], time.process_time() - started)
    count = sum(map(len, batches))
    return {name: (sum(best[name]) * 1e6 / count, results[name]) for name in works}


def _batches(texts: list[str]) -> list[list[str]]:
    return [texts[start : start + BATCH] for start in range(0, len(texts), BATCH)]


def _former_language(identifier: Any, text: str) -> str | None:
    """The path ``detect_batch`` replaced: py3langid's ``classify`` on each text."""
    from classifiers.language import MIN_LETTERS, MIN_PROBABILITY

    if sum(1 for char in text if char.isalpha()) < MIN_LETTERS:
        return None
    code, probability = identifier.classify(text)
    return str(code) if probability >= MIN_PROBABILITY else None


def routing_rows(router: Router, count: int) -> list[Row]:
    """Language detection, router features and ``Router.route_batch`` per text, each next
    to stock VADER on the same composed texts (subject + description, as items are
    classified) and to the path it replaced, in one run, best of ``ROUNDS``."""
    from scipy.sparse import hstack
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    from classifiers.language import _identifier, detect_batch
    from classifiers.routing import QUEUES
    from classifiers.text import compose, normalise

    texts = [compose(text, subject) for subject, text in map(text_for, range(count))]
    batches = _batches(texts)
    analyzer = SentimentIntensityAnalyzer()
    identifier = _identifier()
    features = router.pipeline.named_steps["features"]

    def former_language(text: str) -> str | None:
        return _former_language(identifier, text)

    def former_features(batch: list[str]) -> Any:
        # the path RouterFeatures replaced: scikit-learn's transform, normalising per block
        return hstack(
            [
                features.words_.transform([normalise(t) for t in batch]),
                features.chars_.transform([normalise(t) for t in batch]),
            ]
        ).tocsr()

    timed = _per_text(
        batches,
        {
            "vader": lambda b: [analyzer.polarity_scores(t) for t in b],
            "old_language": lambda b: [former_language(t) for t in b],
            "new_language": detect_batch,
            "old_features": former_features,
            "new_features": features.transform,
            "routing": router.route_batch,
        },
    )
    vader, old_language, new_language = (
        timed[k][0] for k in ("vader", "old_language", "new_language")
    )
    old_features, new_features, routing = (
        timed[k][0] for k in ("old_features", "new_features", "routing")
    )
    formers, languages, routes = (timed[k][1] for k in ("old_language", "new_language", "routing"))
    routed = [route for part in routes for route in part]

    detected = [one.code for part in languages for one in part]
    verify(len(detected) == count, f"detect_batch gave {len(detected)} of {count} languages")
    former = [code for part in formers for code in part]
    agree = sum(a == b for a, b in zip(detected, former, strict=True))
    verify(agree == count, f"batched detection differs from py3langid on {count - agree} texts")
    verify(len(routed) == count, f"route_batch gave {len(routed)} routes for {count} texts")
    verify(all(r.queue in QUEUES for r in routed), "a route outside the four queues")
    verify(all(r.reason for r in routed), "a route without a reason")
    sample = batches[0]
    columns = features.char_lookup_.order
    old_matrix = former_features(sample)
    old_matrix = hstack(
        [
            old_matrix[:, : features.n_word_features],
            old_matrix[:, features.n_word_features :][:, columns],
        ]
    ).tocsr()
    gap = abs(features.transform(sample) - old_matrix).max()
    verify(gap < 1e-12, f"RouterFeatures differs from scikit-learn's transform by {gap}")

    def row(measure: str, value: float, note: str, target: str = "", ok: bool | None = None) -> Row:
        return Row(
            "routing",
            measure,
            value,
            "CPU µs/text",
            reference="stock VADER",
            ratio=value / vader,
            target=target,
            ok=ok,
            note=note,
        )

    rows = [
        Row(
            "routing",
            f"stock VADER polarity_scores, {count:,} composed texts",
            vader,
            "CPU µs/text",
            note=f"reference, same texts, interleaved; each batch best of {ROUNDS}",
        ),
        row(
            "language: py3langid per text (former path)",
            old_language,
            "letters >= 20, then LanguageIdentifier.classify",
        ),
        row(
            f"language: detect_batch, batches of {BATCH}",
            new_language,
            f"same codes as py3langid on all {count:,} texts",
        ),
        row(
            "features: scikit-learn transform (former path)",
            old_features,
            "TfidfVectorizer words + char_wb, normalise per block",
        ),
        row(
            f"features: RouterFeatures.transform, batches of {BATCH}",
            new_features,
            "equal matrices (max |diff| < 1e-12)",
        ),
        row(
            f"Router.route_batch incl. language, batches of {BATCH}",
            routing,
            f"{count:,} routes, all queues valid",
            target="≤ 60 CPU µs/text",
            ok=routing <= 60,
        ),
    ]
    return rows + _language_agreement(identifier)


def _language_agreement(identifier: Any) -> list[Row]:
    """Batched detection vs py3langid per text, and vs the file's ``lang``, on public data."""
    from classifiers.language import detect_batch
    from classifiers.text import compose

    path = DATA / LANGUAGE_FILE
    if not path.is_file():
        return [
            Row(
                "routing",
                f"language agreement on {LANGUAGE_FILE}",
                float("nan"),
                "",
                note=f"{path} missing (set ANDON_SHARED_DATA)",
            )
        ]
    records = [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]
    texts = [compose(r["text"], r.get("title")) for r in records]
    batched = [one for b in _batches(texts) for one in detect_batch(b)]
    single = [_former_language(identifier, text) for text in texts]
    verify(len(batched) == len(texts), "a language per text")
    same = sum(b.code == s for b, s in zip(batched, single, strict=True)) / len(texts)
    labelled = [(b.code, r["lang"]) for b, r in zip(batched, records, strict=True) if r.get("lang")]
    right = (
        sum(code == lang for code, lang in labelled) / len(labelled) if labelled else float("nan")
    )
    return [
        Row(
            "routing",
            f"language: detect_batch = py3langid per text, {LANGUAGE_FILE}",
            same,
            "share",
            target="1.00",
            ok=same == 1.0,
            note=f"n={len(texts):,}; detected code = the file's lang on {right:.1%}",
        )
    ]


if __name__ == "__main__":
    for row in run(argparse.Namespace(quick="--quick" in sys.argv)):
        ratio = f"  ({row.ratio:.2f}× {row.reference})" if row.ratio else ""
        print(f"{row.measure:<48} {row.value:>10,.0f} {row.unit}{ratio}  {row.note}")

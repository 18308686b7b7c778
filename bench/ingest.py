"""Ingest: items/s end to end on SQLite and PostgreSQL, against stock VADER alone.

The reference is the classification limit: stock ``SentimentIntensityAnalyzer.polarity_scores``
on the same texts (subject + description, as the pipeline classifies them), in one process,
warm. End to end is ``bench.pipeline``: the fake Zendesk over HTTP → ``run_sync`` → store →
classify → route → rollups, verified (counts equal, no duplicates) before a figure is shown.
"cores used" is CPU seconds (pipeline process and its children) over wall seconds; its note
splits the CPU per item between the pipeline process (pull, store, route, dedupe, rollups)
and the classification workers.
"""

from __future__ import annotations

import argparse
import math
import os
import time

from bench import Row, database, postgres_available, verify
from bench.pipeline import check, run_in_subprocess
from bench.texts import text_for

TARGET_RATIO = 0.5


def vader_rate(items: int) -> float:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    from classifiers.text import compose

    texts = [compose(text, subject) for subject, text in map(text_for, range(items))]
    analyzer = SentimentIntensityAnalyzer()
    for text in texts[:200]:  # warm-up
        analyzer.polarity_scores(text)
    started = time.perf_counter()
    scores = [analyzer.polarity_scores(text) for text in texts]
    seconds = time.perf_counter() - started
    verify(len(scores) == items, "VADER returned a score per text")
    return items / seconds


def run(args: argparse.Namespace) -> list[Row]:
    items = 2_000 if args.quick else 10_000
    rows: list[Row] = []
    vader = vader_rate(items)
    rows.append(
        Row(
            "ingest",
            f"stock VADER polarity_scores, {items:,} texts",
            vader,
            "items/s",
            note="reference: the classification limit (1 process)",
        )
    )
    for kind in ("sqlite", "postgresql"):
        if kind == "postgresql" and (reason := postgres_available()):
            rows.append(Row("ingest", "end to end, postgresql", math.nan, "items/s", note=reason))
            continue
        with database(kind) as url:
            result = run_in_subprocess(url, items)
        problems = check(result)
        verify(not problems, f"ingest on {kind}: {'; '.join(problems)}")
        rate = items / result["seconds"]
        rows.append(
            Row(
                "ingest",
                f"end to end, {kind}, {items:,} items",
                rate,
                "items/s",
                reference="stock VADER",
                ratio=rate / vader,
                target=f"≥ {TARGET_RATIO:.0%}",
                ok=rate / vader >= TARGET_RATIO,
                note=f"{result['pages']} pages of 1000",
            )
        )
        used = result["cpu_seconds"] / result["seconds"]
        own = result["own_cpu_seconds"] / items * 1e6
        workers = result["workers_cpu_seconds"] / items * 1e6
        cores = os.cpu_count() or 1
        rows.append(
            Row(
                "ingest",
                f"cores used, {kind}",
                used,
                "cores",
                reference=f"{cores} cores",
                ratio=used / cores,
                target="≈ all cores",
                ok=used / cores >= 0.8,
                note=f"CPU per item: pipeline process {own:.0f} µs, classification workers "
                f"{workers:.0f} µs",
            )
        )
    return rows

"""One end-to-end ingest, measured in a process of its own (so its peak RSS is its own).

    python -m bench.pipeline --url DATABASE_URL --items N

Serves ``N`` synthetic tickets from the streaming fake Zendesk (another process, real HTTP
on loopback), migrates an empty database, and times ``run_sync`` — the production path:
pull → store → classify → route → rollups, one transaction per page. Then verifies the
result (items, distinct external ids, classifications, current queue entries and the
rollup count all equal ``N``) and prints one JSON object: seconds, CPU seconds of this
process and its children, peak RSS. The router is trained once into a cache folder and
loaded before the clock starts (a folder per seed corpus).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _model_dir() -> Path:
    """The cache folder of the bench's models, one per seed corpus: an edited corpus trains
    a new router instead of the benchmarks loading the one trained on the old corpus."""
    from classifiers.train import digest, load_examples, seed_paths

    seed = digest(load_examples(seed_paths()))[:12]
    return Path(tempfile.gettempdir()) / f"andon-bench-models-{seed}"


MODEL_DIR = _model_dir()


def cpu_seconds() -> float:
    return sum(cpu_split())


def cpu_split() -> tuple[float, float]:
    """CPU seconds of this process and of its waited-for children (the classification
    workers, once reaped)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def peak_rss_mib() -> tuple[float, float]:
    """Peak resident set of this process and of its largest waited-for child, in MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


def counts(url: str) -> dict[str, int]:
    from sqlalchemy import text

    from app.db import make_engine

    engine = make_engine(url)
    queries = {
        "items": "SELECT count(*) FROM item",
        "distinct_ids": "SELECT count(DISTINCT external_id) FROM item",
        "classified": "SELECT count(*) FROM classification",
        "entries": "SELECT count(*) FROM queue_entry WHERE state <> 'rerouted'",
        "rollup_count": "SELECT coalesce(sum(count), 0) FROM signal_rollup",
    }
    with engine.connect() as connection:
        found = {
            name: int(connection.execute(text(sql)).scalar_one()) for name, sql in queries.items()
        }
    engine.dispose()
    return found


def reclassify_all(url: str, classifier: Any) -> dict[str, Any]:
    """Re-score every stored item with the production path, timed."""
    from app.db import make_engine, make_sessionmaker
    from app.learning import service as learning

    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    started = time.perf_counter()
    progress = learning.reclassify(factory, classifier, batch_size=1000)
    seconds = time.perf_counter() - started
    engine.dispose()
    return {"seconds": seconds, "done": progress.done, "counts": counts(url)}


def ingest(
    url: str, items: int, *, reclassify: bool = False, workers: int | None = None
) -> dict[str, Any]:
    from app import migrate
    from app.db import make_engine, make_sessionmaker, unit_of_work
    from app.learning.service import load_classifier
    from app.sources import service as sources
    from app.sources.runner import run_sync
    from bench.fake_zendesk import TOKEN, TOKEN_ENV, FakeZendesk

    os.environ[TOKEN_ENV] = TOKEN
    engine = make_engine(url)
    migrate.upgrade(engine)
    factory = make_sessionmaker(engine)
    classifier = load_classifier(MODEL_DIR, 0.45)
    if workers is not None:  # an A/B knob: --workers 1 classifies in this process only
        classifier.workers = workers
    with FakeZendesk(items) as fake:
        with unit_of_work(factory) as session:
            sources.create(session, name="bench", kind="zendesk", config=fake.config())
        (own_before, children_before), started = cpu_split(), time.perf_counter()
        summary = run_sync(factory, "bench", classifier)
        seconds = time.perf_counter() - started
        close = getattr(classifier, "close", None)
        if close is not None:  # reap classification workers so their CPU time is counted
            close()
        own_after, children_after = cpu_split()
        own_cpu, children_cpu = own_after - own_before, children_after - children_before
    engine.dispose()
    found = counts(url)
    own_rss, child_rss = peak_rss_mib()
    again = reclassify_all(url, classifier) if reclassify else None
    if close is not None:
        close()
    return {
        "reclassify": again,
        "items": items,
        "status": summary.status,
        "error": summary.error,
        "pages": summary.pages,
        "new": summary.new,
        "seconds": seconds,
        "cpu_seconds": own_cpu + children_cpu,
        "own_cpu_seconds": own_cpu,
        "workers_cpu_seconds": children_cpu,
        "rss_mib": own_rss,
        "child_rss_mib": child_rss,
        "counts": found,
    }


def check(result: dict[str, Any]) -> list[str]:
    """What is wrong with an ingest result (empty when it is right)."""
    n = result["items"]
    problems = []
    if result["status"] != "ok":
        problems.append(f"sync ended {result['status']}: {result['error']}")
    if result["new"] != n:
        problems.append(f"{result['new']} new items reported, expected {n}")
    for name, value in result["counts"].items():
        if value != n:
            problems.append(f"{name} = {value}, expected {n}")
    return problems


def run_in_subprocess(
    url: str, items: int, *, reclassify: bool = False, timeout: float = 7200
) -> dict[str, Any]:
    import subprocess

    command = [sys.executable, "-m", "bench.pipeline", "--url", url, "--items", str(items)]
    completed = subprocess.run(
        command + (["--reclassify"] if reclassify else []),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=Path(__file__).absolute().parents[1],
    )
    if completed.returncode != 0:
        raise RuntimeError(f"bench.pipeline failed:\n{completed.stderr[-3000:]}")
    return dict(json.loads(completed.stdout.strip().splitlines()[-1]))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="one measured end-to-end ingest")
    parser.add_argument("--url", required=True)
    parser.add_argument("--items", type=int, required=True)
    parser.add_argument("--reclassify", action="store_true", help="then re-classify them all")
    parser.add_argument("--workers", type=int, help="classification processes (default: cores)")
    args = parser.parse_args(argv)
    result = ingest(args.url, args.items, reclassify=args.reclassify, workers=args.workers)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Signal: ``GET /signal`` latency at one million stored items, answered from the rollups.

    .venv/bin/python -m bench --only signal_latency [--quick]   # SQLite and PostgreSQL
    .venv/bin/python -m bench.signal_latency [--items N] [--db sqlite|postgresql] [--seconds S]
        [--workers W ...]   # HTTP processes under load, repeatable

Seeding BYPASSES the pipeline: one million items (a year, 5 queues, 7 channels, 50 000
authors) are bulk-inserted with SQLAlchemy Core/ORM bulk ``INSERT`` straight into ``item``,
and their hourly rollups and per-bucket counters and distinct-author counts are computed in
NumPy and inserted into ``signal_rollup`` and ``signal_bucket`` — no classification, no queue
entries, no ``signal_author`` rows (so the multi-channel distinct-author fallback is not
measured); the seeding calls ``mark_signal_changed`` like every rollup writer must.
Before timing, the figures the endpoint returns are checked against the generated items
(counts per queue, distinct authors of one day). Then:

- in process (``fastapi.testclient``), one request at a time: the cost of one answer,
  computed (``ANDON_SIGNAL_CACHE=false``) and cached;
- under load: ``andon serve`` in its own process and ``bench.load`` in another, 16
  concurrent clients for ``--seconds`` per query (3 s with ``--quick``), with the cache on
  (every query) and off (the first query): requests/s, p50, p99. Target: p99 < 50 ms.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np

# Run as a script, this file's folder would come first on the path and this module would
# shadow the standard library's ``signal``: put the repository root there instead.
HERE = Path(__file__).resolve().parent
sys.path[:] = [str(HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != HERE]

from bench import Row, database, percentile, postgres_available, verify  # noqa: E402

QUEUES = ("product", "marketing", "sales", "service", "triage")
CHANNELS = ("twitter", "mastodon", "zendesk", "freshdesk", "email", "canny", "fider")
SENTIMENTS = ("negative", "neutral", "positive")
END = datetime(2026, 11, 20, tzinfo=UTC)
DAYS = 365
AUTHORS = 50_000
REPEAT = 60
TARGET_MS = 50.0


def generate(n: int, seed: int = 8) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    seconds = np.sort(rng.integers(0, DAYS * 86_400, n))
    return {
        "seconds": seconds,
        "queue": rng.integers(0, len(QUEUES), n),
        "channel": rng.integers(0, len(CHANNELS), n),
        "sentiment": rng.choice(3, n, p=[0.4, 0.4, 0.2]),
        "compound": np.round(rng.uniform(-1, 1, n), 4),
        "votes": rng.poisson(0.5, n),
        "author": rng.integers(0, AUTHORS, n),
    }


def start_of(n_days: int = DAYS) -> datetime:
    return END - timedelta(days=n_days)


def item_rows(data: dict[str, np.ndarray], source_id: int, chunk: int) -> Iterator[list[Any]]:
    start = start_of()
    rows: list[dict[str, Any]] = []
    for i in range(len(data["seconds"])):
        rows.append(
            {
                "source_id": source_id,
                "external_id": f"b{i}",
                "channel": CHANNELS[data["channel"][i]],
                "kind": "post",
                "text": "benchmark item",
                "author_id": str(int(data["author"][i])),
                "created_at": start + timedelta(seconds=int(data["seconds"][i])),
                "metrics": {"votes": int(data["votes"][i])},
                "raw": {},
                "content_hash": "bench",
            }
        )
        if len(rows) == chunk:
            yield rows
            rows = []
    if rows:
        yield rows


def rollup_rows(data: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    hours = data["seconds"] // 3600
    key = (hours * len(QUEUES) + data["queue"]) * len(CHANNELS) + data["channel"]
    unique, inverse = np.unique(key, return_inverse=True)
    count = np.bincount(inverse)
    per_sentiment = [np.bincount(inverse, weights=data["sentiment"] == s) for s in range(3)]
    compound = np.bincount(inverse, weights=data["compound"])
    demand = np.bincount(inverse, weights=1.0 + data["votes"])
    start = start_of()
    rows = []
    for j, value in enumerate(unique.tolist()):
        hour, rest = divmod(value, len(QUEUES) * len(CHANNELS))
        queue, channel = divmod(rest, len(CHANNELS))
        rows.append(
            {
                "bucket_start": start + timedelta(hours=hour),
                "queue": QUEUES[queue],
                "channel": CHANNELS[channel],
                "count": int(count[j]),
                "negative": int(per_sentiment[0][j]),
                "neutral": int(per_sentiment[1][j]),
                "positive": int(per_sentiment[2][j]),
                "compound_sum": float(compound[j]),
                "demand": float(demand[j]),
            }
        )
    return rows


def bucket_index(seconds: np.ndarray, granularity: str) -> tuple[np.ndarray, int]:
    """Bucket number and length in hours; weeks start on Monday like the service's."""
    if granularity == "h":
        return seconds // 3600, 1
    if granularity == "d":
        return seconds // 86_400, 24
    offset = start_of().weekday() * 86_400  # seconds since the Monday before the start
    return (seconds + offset) // (7 * 86_400), 7 * 24


def bucket_rows(data: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """``signal_bucket``: counters and distinct authors per granularity × bucket × queue ×
    channel (and ``*``), exactly as the service's deltas would have left them."""
    rows = []
    start = start_of()
    monday = start - timedelta(days=start.weekday())
    width = len(CHANNELS) + 1
    for granularity in ("h", "d", "w"):
        index, hours = bucket_index(data["seconds"], granularity)
        origin = monday if granularity == "w" else start
        for any_channel in (False, True):
            channel = np.full_like(index, len(CHANNELS)) if any_channel else data["channel"]
            group = (index * len(QUEUES) + data["queue"]) * width + channel
            groups, inverse = np.unique(group, return_inverse=True)
            count = np.bincount(inverse)
            mix = [np.bincount(inverse, weights=data["sentiment"] == s) for s in range(3)]
            compound = np.bincount(inverse, weights=data["compound"])
            demand = np.bincount(inverse, weights=1.0 + data["votes"])
            pairs = np.unique(group * AUTHORS + data["author"])
            _, authors = np.unique(pairs // AUTHORS, return_counts=True)  # same group order
            for j, value in enumerate(groups.tolist()):
                bucket, rest = divmod(value, len(QUEUES) * width)
                queue, chan = divmod(rest, width)
                rows.append(
                    {
                        "granularity": granularity,
                        "bucket_start": origin + timedelta(hours=bucket * hours),
                        "queue": QUEUES[queue],
                        "channel": "*" if chan == len(CHANNELS) else CHANNELS[chan],
                        "count": int(count[j]),
                        "negative": int(mix[0][j]),
                        "neutral": int(mix[1][j]),
                        "positive": int(mix[2][j]),
                        "compound_sum": float(compound[j]),
                        "demand": float(demand[j]),
                        "authors": int(authors[j]),
                    }
                )
    return rows


def seed(url: str, n: int) -> tuple[dict[str, np.ndarray], float]:
    from sqlalchemy import insert

    from app import migrate
    from app.db import make_engine, make_sessionmaker, unit_of_work
    from app.items.models import Item
    from app.signal.models import SignalBucket, SignalRollup
    from app.signal.repository import mark_signal_changed
    from app.sources.models import Source

    began = time.perf_counter()
    engine = make_engine(url)
    migrate.upgrade(engine)
    data = generate(n)
    factory = make_sessionmaker(engine)
    with unit_of_work(factory) as session:
        source = Source(name="bench", kind="jsonl", config={})
        session.add(source)
        session.flush()
        source_id = source.id
    for rows in item_rows(data, source_id, 20_000):
        with unit_of_work(factory) as session:
            session.execute(insert(Item), rows)
    with unit_of_work(factory) as session:
        session.execute(insert(SignalRollup), rollup_rows(data))
        buckets = bucket_rows(data)
        for at in range(0, len(buckets), 50_000):
            session.execute(insert(SignalBucket), buckets[at : at + 50_000])
        # Written around the pipeline, so the hook every rollup writer calls is ours to call.
        mark_signal_changed(session)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")
    engine.dispose()
    return data, time.perf_counter() - began


def expected_counts(data: dict[str, np.ndarray], start: datetime, end: datetime) -> list[int]:
    origin = start_of()
    low = int((start - origin).total_seconds())
    high = int((end - origin).total_seconds())
    inside = (data["seconds"] >= low) & (data["seconds"] < high)
    return [int(np.sum(inside & (data["queue"] == q))) for q in range(len(QUEUES))]


QUERIES = {
    "day × queue, 30 days": {"bucket": "day"},
    "day × channel, 30 days": {"bucket": "day", "group_by": "channel"},
    "week × queue, 90 days": {
        "bucket": "week",
        "from": (END - timedelta(days=91)).isoformat(),
    },
    "hour × queue, 2 days, 1 queue": {
        "bucket": "hour",
        "from": (END - timedelta(days=2)).isoformat(),
        "queue": "service",
    },
}


def verify_answers(client: Any, data: dict[str, np.ndarray]) -> None:
    """The endpoint's figures against the generated items, before any timing."""
    body = client.get("/signal", params={"to": END.isoformat(), "bucket": "day"}).json()
    got = [body["totals"].get(q, {"count": 0})["count"] for q in QUEUES]
    want = expected_counts(data, END - timedelta(days=30), END)
    verify(got == want, f"signal counts {got} != generated {want}")
    day = END - timedelta(days=3)
    offset = int((day - start_of()).total_seconds())
    one_day = (data["seconds"] >= offset) & (data["seconds"] < offset + 86_400)
    authors = len(np.unique(data["author"][one_day & (data["queue"] == 0)]))
    wanted = ("product", f"{day:%Y-%m-%d}")
    point = next(p for p in body["series"] if (p["queue"], p["bucket_start"][:10]) == wanted)
    verify(point["authors"] == authors, f"authors {point['authors']} != generated {authors}")


def in_process(url: str, plain: str, data: dict[str, np.ndarray], label: str) -> list[Row]:
    """One request at a time through the app in this process: the cost of one answer."""
    from fastapi.testclient import TestClient

    from app.config import Settings
    from app.learning.service import load_classifier
    from app.main import create_app
    from app.signal.cache import SIGNAL_CACHE

    rows = []
    for cached in (False, True):
        settings = Settings(database_url=url, scheduler=False, demo=False, signal_cache=cached)
        classifier = load_classifier(Path("models"), settings.triage_threshold)
        SIGNAL_CACHE.clear()
        app = create_app(settings, classifier=classifier, start_scheduler=False)
        with TestClient(app) as client:
            client.headers["Authorization"] = f"Bearer {plain}"
            verify_answers(client, data)
            name, query = next(iter(QUERIES.items()))
            params = {"to": END.isoformat(), **query}
            timings = []
            for attempt in range(REPEAT + 5):
                began = time.perf_counter()
                response = client.get("/signal", params=params)
                elapsed = (time.perf_counter() - began) * 1000
                verify(response.status_code == 200, f"{name}: HTTP {response.status_code}")
                if attempt >= 5:  # warm-up: connection pool, statement caches
                    timings.append(elapsed)
        kind = "cached" if cached else "computed (cache off)"
        rows.append(
            Row(
                "signal",
                f"{label}: {name}, one client, in process, {kind} p50",
                percentile(timings, 0.5),
                "ms",
                note=f"p99 {percentile(timings, 0.99):.1f} ms over {REPEAT} requests",
            )
        )
    return rows


def under_load(url: str, plain: str, label: str, seconds: float, workers: int = 1) -> list[Row]:
    """16 clients from another process against ``andon serve``, cache on and off."""
    from bench.api import drive, free_port, serve

    rows = []
    auth = f"Authorization: Bearer {plain}"
    if workers > 1:
        label = f"{label}, {workers} HTTP processes"
    for cached in (True, False):
        port = free_port()
        extra = {"ANDON_SIGNAL_CACHE": str(cached).lower(), "ANDON_WORKERS": str(workers)}
        server = serve(url, port, extra)
        try:
            root = f"http://127.0.0.1:{port}"
            for name, query in QUERIES.items() if cached else list(QUERIES.items())[:1]:
                params = urlencode({"to": END.isoformat(), **query})
                result = drive(f"{root}/signal?{params}", seconds, "--header", auth)
                verify(result["errors"] == 0, f"{name}: {result['errors']} errors")
                kind = "cached" if cached else "computed (cache off)"
                rows.append(
                    Row(
                        "signal",
                        f"{label}: {name}, 16 clients, {kind} p99",
                        result["p99_ms"],
                        "ms",
                        reference=f"{TARGET_MS:.0f} ms",
                        ratio=result["p99_ms"] / TARGET_MS,
                        target=f"< {TARGET_MS:.0f} ms",
                        ok=result["p99_ms"] < TARGET_MS,
                        note=f"{result['rps']:,.0f} req/s, p50 {result['p50_ms']:.1f} ms",
                    )
                )
        finally:
            server.terminate()
            server.wait(30)
    return rows


def measure(
    url: str, n: int, label: str, seconds: float = 10.0, workers: Sequence[int] = (1,)
) -> list[Row]:
    from app.auth.service import create_key
    from app.db import make_engine, make_sessionmaker, unit_of_work

    data, seed_seconds = seed(url, n)
    engine = make_engine(url)
    with unit_of_work(make_sessionmaker(engine)) as session:
        _key, plain = create_key(session, name="bench", role="viewer", queues=None, actor="bench")
    engine.dispose()
    rows = [Row("signal", f"{label}: seed {n:,} items (bulk, bypasses classification)",
                seed_seconds, "s")]  # fmt: skip
    rows += in_process(url, plain, data, label)
    for count in workers:
        rows += under_load(url, plain, label, seconds, count)
    return rows


def run(args: argparse.Namespace) -> list[Row]:
    quick = getattr(args, "quick", False)
    n = 100_000 if quick else 1_000_000
    kinds = ["sqlite"]
    if postgres_available() is None:
        kinds.append("postgresql")
    rows: list[Row] = []
    for kind in kinds:
        with database(kind) as url:
            rows += measure(url, n, kind, 3.0 if quick else 10.0)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--seconds", type=float, default=10.0, help="load per query")
    parser.add_argument(
        "--workers",
        type=int,
        action="append",
        help="HTTP processes of the server under load (repeatable; default 1)",
    )
    args = parser.parse_args()
    with database(args.db) as url:
        for row in measure(url, args.items, args.db, args.seconds, args.workers or [1]):
            flag = "" if row.ok is None else (" ok" if row.ok else " OVER TARGET")
            note = f"  ({row.note})" if row.note else ""
            print(f"{row.measure:75s} {row.value:10.2f} {row.unit}{flag}{note}")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()

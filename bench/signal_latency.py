"""Signal: ``GET /signal`` latency at one million stored items, answered from the rollups.

    .venv/bin/python -m bench --only signal [--quick]           # SQLite and PostgreSQL
    .venv/bin/python -m bench.signal [--items N] [--db sqlite|postgresql]

Seeding BYPASSES the pipeline: one million items (a year, 5 queues, 7 channels, 50 000
authors) are bulk-inserted with SQLAlchemy Core/ORM bulk ``INSERT`` straight into ``item``,
and their hourly rollups and per-bucket counters and distinct-author counts are computed in
NumPy and inserted into ``signal_rollup`` and ``signal_bucket`` — no classification, no queue
entries, no ``signal_author`` rows (so the multi-channel distinct-author fallback is not
measured).
Before timing, the figures the endpoint returns are checked against the generated items
(counts per queue, distinct authors of one day); then each query is timed through the app
(in-process ASGI, ``fastapi.testclient``), reporting p50/p99. Target: p99 < 50 ms.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

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


def measure(url: str, n: int, label: str) -> list[Row]:
    from fastapi.testclient import TestClient

    from app.auth.service import create_key
    from app.config import Settings
    from app.db import make_engine, make_sessionmaker, unit_of_work
    from app.learning.service import load_classifier
    from app.main import create_app

    data, seed_seconds = seed(url, n)
    engine = make_engine(url)
    with unit_of_work(make_sessionmaker(engine)) as session:
        _key, plain = create_key(session, name="bench", role="viewer", queues=None, actor="bench")
    engine.dispose()
    settings = Settings(database_url=url, scheduler=False, demo=False)
    classifier = load_classifier(Path("models"), settings.triage_threshold)
    rows = [Row("signal", f"{label}: seed {n:,} items (bulk, bypasses classification)",
                seed_seconds, "s")]  # fmt: skip
    with TestClient(create_app(settings, classifier=classifier, start_scheduler=False)) as client:
        client.headers["Authorization"] = f"Bearer {plain}"
        base = {"to": END.isoformat()}
        body = client.get("/signal", params={**base, "bucket": "day"}).json()
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
        targets = {"baseline: GET /healthz": ("/healthz", {})}
        targets.update({name: ("/signal", {**base, **q}) for name, q in QUERIES.items()})
        baseline = 0.0
        for name, (path, params) in targets.items():
            timings = []
            for attempt in range(REPEAT + 5):
                began = time.perf_counter()
                response = client.get(path, params=params)
                elapsed = (time.perf_counter() - began) * 1000
                verify(response.status_code == 200, f"{name}: HTTP {response.status_code}")
                if attempt >= 5:  # warm-up: connection pool, statement caches
                    timings.append(elapsed)
            p50, p99 = percentile(timings, 0.5), percentile(timings, 0.99)
            if path == "/healthz":  # what any request costs on this machine right now
                baseline = p50
                rows.append(Row("signal", f"{label}: {name} p50", p50, "ms"))
                continue
            rows.append(
                Row(
                    "signal",
                    f"{label}: {name} p50",
                    p50,
                    "ms",
                    reference="GET /healthz p50",
                    ratio=p50 / baseline if baseline else None,
                )
            )
            rows.append(
                Row(
                    "signal",
                    f"{label}: {name} p99",
                    p99,
                    "ms",
                    target=f"< {TARGET_MS:.0f} ms",
                    ok=p99 < TARGET_MS,
                )
            )
    return rows


def run(args: argparse.Namespace) -> list[Row]:
    n = 100_000 if getattr(args, "quick", False) else 1_000_000
    kinds = ["sqlite"]
    if postgres_available() is None:
        kinds.append("postgresql")
    rows: list[Row] = []
    for kind in kinds:
        with database(kind) as url:
            rows += measure(url, n, kind)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    with database(args.db) as url:
        for row in measure(url, args.items, args.db):
            flag = "" if row.ok is None else (" ok" if row.ok else " OVER TARGET")
            print(f"{row.measure:70s} {row.value:10.2f} {row.unit}{flag}")


if __name__ == "__main__":
    main()

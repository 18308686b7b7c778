"""API under load on PostgreSQL: `GET /signal` over a million stored items, `GET /items` pages.

Data: items ingested end to end (5k; 2k with ``--quick``), then copied in SQL up to one
million item rows (20k with ``--quick``), each copy with its own external id, and the
hourly rollups scaled by the same factor, so the rollups count exactly the stored items
(verified, and again through ``GET /signal`` before any figure). ``andon serve`` runs in
its own process (one uvicorn worker, no scheduler) and ``bench.load`` drives it from
another process over loopback: 16 concurrent clients for a fixed time. ``POST
/queues/{q}/claim`` needs agent keys and is measured by ``bench/claims.py`` (issue 7).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench import Row, database, postgres_available, verify
from bench.pipeline import MODEL_DIR, check, run_in_subprocess

ROOT = Path(__file__).absolute().parents[1]
P99_TARGET_MS = 50.0


def replicate(url: str, factor: int) -> int:
    """Copy every item ``factor - 1`` times (new external ids); scale rollups to match."""
    from sqlalchemy import inspect, text

    from app.db import make_engine, make_sessionmaker, unit_of_work
    from app.signal.repository import mark_signal_changed

    engine = make_engine(url)
    columns = [c["name"] for c in inspect(engine).get_columns("item") if c["name"] != "id"]
    chosen = ", ".join(f'"{c}"' for c in columns)
    picked = ", ".join(
        "external_id || '~' || g" if c == "external_id" else f'item."{c}"' for c in columns
    )
    counters = ("count", "negative", "neutral", "positive", "compound_sum", "demand", "items")
    inspector = inspect(engine)
    scaled_tables = {
        name: [c["name"] for c in inspector.get_columns(name) if c["name"] in counters]
        for name in ("signal_rollup", "signal_bucket", "signal_author")
        if inspector.has_table(name)
    }
    with engine.begin() as connection:
        if factor > 1:
            connection.execute(
                text(
                    f"INSERT INTO item ({chosen}) SELECT {picked} FROM item "
                    f"CROSS JOIN generate_series(1, {factor - 1}) AS g"
                )
            )
            # Copies share their original's author and hour: every count grows by the
            # factor, distinct-author counts do not.
            for name, names in scaled_tables.items():
                scaled = ", ".join(f'"{c}" = "{c}" * {factor}' for c in names)
                connection.execute(text(f"UPDATE {name} SET {scaled}"))
    with unit_of_work(make_sessionmaker(engine)) as session:
        mark_signal_changed(session)  # rollups written around the pipeline: call the hook
    with engine.begin() as connection:
        connection.execute(text("ANALYZE"))
        items = int(connection.execute(text("SELECT count(*) FROM item")).scalar_one())
        distinct = int(
            connection.execute(
                text("SELECT count(*) FROM (SELECT DISTINCT source_id, external_id FROM item) d")
            ).scalar_one()
        )
        total = int(
            connection.execute(
                text("SELECT coalesce(sum(count), 0) FROM signal_rollup")
            ).scalar_one()
        )
        rollup_rows = int(
            connection.execute(text("SELECT count(*) FROM signal_rollup")).scalar_one()
        )
    engine.dispose()
    verify(items == distinct, f"{items - distinct} duplicate external ids after copying")
    verify(total == items, f"rollups count {total}, items {items}")
    return rollup_rows


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve(url: str, port: int, extra: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        **(extra or {}),
        "ANDON_DATABASE_URL": url,
        "ANDON_MODEL_DIR": str(MODEL_DIR),
        "ANDON_SCHEDULER": "false",
        "ANDON_PUBLIC_READ": "true",
        "ANDON_LOG_LEVEL": "WARNING",
        "ANDON_PORT": str(port),
        # 16 clients as fast as they can go: far beyond the default limits (6,000 a minute
        # per key, 12,000 per address). The limiter still runs on every request; a 429 (any
        # answer >= 400) is counted as an error and fails the benchmark.
        "ANDON_RATE_LIMIT_PER_MINUTE": "10000000",
        "ANDON_RATE_LIMIT_BURST": "1000000",
        "ANDON_RATE_LIMIT_ANONYMOUS_PER_MINUTE": "10000000",
        "ANDON_RATE_LIMIT_ANONYMOUS_BURST": "1000000",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--no-scheduler", "--no-migrate"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"andon serve exited: {process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    process.terminate()
    raise RuntimeError("andon serve did not answer /healthz within 120 s")


def drive(url: str, seconds: float, *extra: str) -> dict[str, Any]:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.load",
            url,
            "--concurrency",
            "16",
            "--seconds",
            str(seconds),
            *extra,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=seconds + 120,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"bench.load failed: {completed.stderr[-2000:]}")
    return dict(json.loads(completed.stdout.strip().splitlines()[-1]))


def run(args: argparse.Namespace) -> list[Row]:
    if reason := postgres_available():
        return [Row("api", "GET /signal", math.nan, "ms", note=reason)]
    base, target = (2_000, 20_000) if args.quick else (5_000, 1_000_000)
    seconds = 3.0 if args.quick else 10.0
    rows: list[Row] = []
    with database("postgresql") as url:
        result = run_in_subprocess(url, base)
        problems = check(result)
        verify(not problems, f"api data: {'; '.join(problems)}")
        started = time.perf_counter()
        rollup_rows = replicate(url, target // base)
        copy_seconds = time.perf_counter() - started
        port = free_port()
        server = serve(url, port)
        try:
            root = f"http://127.0.0.1:{port}"
            now = datetime.now(UTC)
            window = {"from": (now - timedelta(days=40)).isoformat(), "to": now.isoformat()}
            body = httpx.get(f"{root}/signal", params=window, timeout=60).json()
            seen = sum(int(total["count"]) for total in body["totals"].values())
            verify(seen == target, f"GET /signal counts {seen} items, stored {target}")
            signal = drive(f"{root}/signal", seconds)
            verify(signal["errors"] == 0, f"GET /signal: {signal['errors']} errors")
            rows.append(
                Row(
                    "api",
                    f"GET /signal p99, cached, {target:,} items, 16 clients",
                    signal["p99_ms"],
                    "ms",
                    reference=f"{P99_TARGET_MS:.0f} ms",
                    ratio=signal["p99_ms"] / P99_TARGET_MS,
                    target="p99 < 50 ms",
                    ok=signal["p99_ms"] < P99_TARGET_MS,
                    note=f"{signal['rps']:,.0f} req/s, p50 {signal['p50_ms']:.1f} ms, "
                    f"{rollup_rows:,} rollup rows",
                )
            )
            items = drive(f"{root}/items?limit=50", seconds, "--walk")
            verify(items["errors"] == 0, f"GET /items: {items['errors']} errors")
            verify(items["duplicates"] == 0, f"GET /items: {items['duplicates']} duplicate ids")
            rows.append(
                Row(
                    "api",
                    "GET /items pages of 50 (cursor walk), 16 clients",
                    items["p99_ms"],
                    "ms",
                    reference=f"{P99_TARGET_MS:.0f} ms",
                    ratio=items["p99_ms"] / P99_TARGET_MS,
                    note=f"{items['rps']:,.0f} req/s, p50 {items['p50_ms']:.1f} ms, "
                    f"{items['walked']:,} ids walked, 0 duplicates",
                )
            )
            server.terminate()
            server.wait(30)
            server = serve(url, port, {"ANDON_SIGNAL_CACHE": "false"})
            computed = drive(f"{root}/signal", seconds)
            verify(computed["errors"] == 0, f"GET /signal (no cache): {computed['errors']} errors")
            rows.append(
                Row(
                    "api",
                    f"GET /signal p99, cache off, {target:,} items, 16 clients",
                    computed["p99_ms"],
                    "ms",
                    reference=f"{P99_TARGET_MS:.0f} ms",
                    ratio=computed["p99_ms"] / P99_TARGET_MS,
                    note=f"{computed['rps']:,.0f} req/s, p50 {computed['p50_ms']:.1f} ms: "
                    "every answer computed from signal_bucket",
                )
            )
            rows.append(
                Row(
                    "api",
                    "data: copy items in SQL up to target",
                    copy_seconds,
                    "s",
                    note=f"{base:,} ingested end to end, ×{target // base}",
                )
            )
        finally:
            server.terminate()
            server.wait(30)
    return rows

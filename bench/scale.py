"""Scale: the same end-to-end ingest at 10k and 100k items (1M with ``--scale 1000000``).

Each size runs in a fresh process on a fresh SQLite database, so its peak RSS is its own.
Time per item must stay flat (within 25% of the smallest size) and peak RSS bounded (the
export is streamed page by page, never loaded whole). The 100k database is then
re-classified in place (``app.learning.service.reclassify``), which the ``reclassify``
benchmark reports.
"""

from __future__ import annotations

import argparse
from typing import Any

from bench import Row, database, verify
from bench.pipeline import check, run_in_subprocess

FLAT = 1.25
RECLASSIFY_AT = 100_000
results: dict[int, dict[str, Any]] = {}  # shared with bench.reclassify within one run


def sizes(args: argparse.Namespace) -> list[int]:
    if args.scale:
        return sorted(set(args.scale))
    return [2_000, 10_000] if args.quick else [10_000, 100_000]


def measure(items: int, *, reclassify: bool) -> dict[str, Any]:
    with database("sqlite") as url:
        result = run_in_subprocess(url, items, reclassify=reclassify)
    problems = check(result)
    verify(not problems, f"scale {items:,}: {'; '.join(problems)}")
    results[items] = result
    return result


def run(args: argparse.Namespace) -> list[Row]:
    rows: list[Row] = []
    chosen = sizes(args)
    base: dict[str, Any] | None = None
    for items in chosen:
        result = measure(items, reclassify=items == max(chosen))
        per_item = result["seconds"] / items * 1e6
        if base is None:
            base = result
        base_per_item = base["seconds"] / base["items"] * 1e6
        ratio = per_item / base_per_item
        rows.append(
            Row(
                "scale",
                f"time per item, sqlite, {items:,} items",
                per_item,
                "µs/item",
                reference=f"{base['items']:,} items",
                ratio=ratio,
                target=f"≤ {FLAT}",
                ok=ratio <= FLAT,
                note=f"{items / result['seconds']:,.0f} items/s",
            )
        )
        rss = result["rss_mib"]
        rss_ratio = rss / base["rss_mib"]
        rows.append(
            Row(
                "scale",
                f"peak RSS, {items:,} items",
                rss,
                "MiB",
                reference=f"{base['items']:,} items",
                ratio=rss_ratio,
                target="bounded (≤ 1.5)",
                ok=rss_ratio <= 1.5,
                note=f"largest child {result['child_rss_mib']:.0f} MiB",
            )
        )
    return rows

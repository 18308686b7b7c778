"""Re-classification of 100k stored items (10k with ``--quick``): items/s.

Uses the production path, ``app.learning.service.reclassify`` (batches of 1000, one
transaction each, queues and rollups kept in step), on a SQLite database filled by the
end-to-end ingest. When ``bench.scale`` already ingested that size in this run, its
measurement is reused instead of ingesting again. Verified: every item re-scored once,
counts (items, classifications, entries, rollup total) unchanged.
"""

from __future__ import annotations

import argparse

from bench import Row, verify
from bench import scale as scale_bench
from bench.ingest import vader_rate


def run(args: argparse.Namespace) -> list[Row]:
    items = 10_000 if args.quick else scale_bench.RECLASSIFY_AT
    result = next(
        (r for r in scale_bench.results.values() if r["reclassify"] and r["items"] >= items),
        None,
    ) or scale_bench.measure(items, reclassify=True)
    again = result["reclassify"]
    n = result["items"]
    verify(again["done"] == n, f"re-classified {again['done']} of {n} items")
    for name, value in again["counts"].items():
        verify(value == n, f"after re-classification {name} = {value}, expected {n}")
    rate = n / again["seconds"]
    vader = vader_rate(2_000)
    return [
        Row(
            "reclassify",
            f"re-classify {n:,} stored items, sqlite",
            rate,
            "items/s",
            reference="stock VADER",
            ratio=rate / vader,
            note=f"VADER {vader:,.0f}/s",
        )
    ]

"""A load driver in its own process: ``python -m bench.load URL --concurrency 16 --seconds 5``.

Async httpx clients hit one URL (or, with ``--walk``, walk ``GET /items`` pages following
``next_cursor`` from the first page, starting over at the end) for a fixed time and print
one JSON object: requests, errors, requests/s, p50/p99 in ms, and for walks the number of
duplicate ids seen within a walk (must be 0). ``--post`` sends POST with an empty JSON body.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any

import httpx


async def user(
    client: httpx.AsyncClient,
    args: argparse.Namespace,
    stop: float,
    latencies: list[float],
    stats: dict[str, Any],
    index: int,
) -> None:
    cursor: str | None = None
    seen: set[int] = set()
    while time.perf_counter() < stop:
        params = {"cursor": cursor} if cursor else None
        started = time.perf_counter()
        if args.post:
            response = await client.post(args.url.replace("{agent}", str(index)), json={})
        else:
            response = await client.get(args.url, params=params)
        latencies.append(time.perf_counter() - started)
        if response.status_code >= 400:
            stats["errors"] += 1
            stats.setdefault("statuses", {}).setdefault(str(response.status_code), 0)
            stats["statuses"][str(response.status_code)] += 1
            continue
        if args.post:
            stats["claimed"] += 1 if response.status_code == 200 else 0
        if args.walk:
            body = response.json()
            ids = [item["id"] for item in body["items"]]
            stats["duplicates"] += sum(1 for i in ids if i in seen)
            seen.update(ids)
            stats["walked"] += len(ids)
            cursor = body.get("next_cursor")
            if cursor is None:
                seen.clear()


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    latencies: list[float] = []
    stats: dict[str, Any] = {"errors": 0, "duplicates": 0, "walked": 0, "claimed": 0}
    limits = httpx.Limits(max_connections=args.concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30, headers=args.header_dict) as client:
        await client.get(args.url.split("?")[0] if not args.post else args.base + "/healthz")
        started = time.perf_counter()
        stop = started + args.seconds
        await asyncio.gather(
            *(user(client, args, stop, latencies, stats, i) for i in range(args.concurrency))
        )
        elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "rps": len(latencies) / elapsed,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        **stats,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--base", default="")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--walk", action="store_true")
    parser.add_argument("--post", action="store_true")
    parser.add_argument("--header", action="append", default=[], help="Name: value")
    args = parser.parse_args(argv)
    args.header_dict = dict(h.split(": ", 1) for h in args.header)
    print(json.dumps(asyncio.run(main_async(args))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``python -m bench [--quick] [--only NAME] [--scale N]``: run the benchmarks, print one table.

Benchmarks are the modules of this package that define ``run(args) -> list[Row]``; they run in
``ORDER`` first, then any other such module alphabetically. A module that is missing, has no
``run``, or fails is reported in the table's notes and the others still run.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import math
import os
import pkgutil
import platform
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from bench import Row

ORDER = (
    "ingest",
    "scale",
    "reclassify",
    "api",
    "claims",
    "signal_latency",
    "classify_throughput",
    "learning_curve",
)
HELPERS = {"pipeline", "fake_zendesk", "texts", "load", "dataset"}


def discover() -> list[str]:
    package = Path(__file__).parent
    found = {m.name for m in pkgutil.iter_modules([str(package)])} - HELPERS - {"__main__"}
    return [n for n in ORDER if n in found] + sorted(found - set(ORDER))


def fmt(value: float) -> str:
    if math.isnan(value):
        return "—"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def table(rows: Sequence[Row]) -> str:
    header = ("bench", "measure", "value", "unit", "ratio", "vs", "target", "ok", "note")
    lines = [
        (
            r.bench,
            r.measure,
            fmt(r.value),
            r.unit,
            "" if r.ratio is None else f"{r.ratio:.2f}",
            r.reference,
            r.target,
            "" if r.ok is None else ("yes" if r.ok else "NO"),
            r.note,
        )
        for r in rows
    ]
    widths = [
        max(len(h), *(len(line[i]) for line in lines)) if lines else len(h)
        for i, h in enumerate(header)
    ]
    out = [" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    out.append("-+-".join("-" * w for w in widths))
    out += [" | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a fast subset")
    parser.add_argument(
        "--only", action="append", default=[], help="run this benchmark (repeatable)"
    )
    parser.add_argument(
        "--scale",
        action="append",
        type=int,
        default=[],
        help="scale sizes (repeatable), e.g. --scale 1000000; default 10k and 100k",
    )
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)
    names = discover()
    if args.list:
        print("\n".join(names))
        return 0
    if args.only:
        unknown = [n for n in args.only if n not in names]
        if unknown:
            parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(names)}")
        names = [n for n in names if n in args.only]
    print(
        f"andon bench · {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC · "
        f"{os.cpu_count()} cores · Python {platform.python_version()} · "
        f"{'quick' if args.quick else 'full'} · load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    rows: list[Row] = []
    failed = 0
    for name in names:
        started = time.perf_counter()
        print(f"· {name} …", end="", flush=True, file=sys.stderr)
        try:
            module = importlib.import_module(f"bench.{name}")
            run = getattr(module, "run", None)
            if run is None:
                rows.append(Row(name, "(no run(args); run it on its own)", float("nan"), ""))
                print(" skipped", file=sys.stderr)
                continue
            rows.extend(run(args))
        except Exception as exc:
            failed += 1
            traceback.print_exc()
            rows.append(
                Row(name, "FAILED", float("nan"), "", note=f"{type(exc).__name__}: {exc}"[:160])
            )
        print(f" {time.perf_counter() - started:.0f}s", file=sys.stderr, flush=True)
    print(table(rows))
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (compare figures on an idle machine)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Andon's benchmarks: ``python -m bench`` (``make bench``) runs them all and prints one table.

Every benchmark module exposes ``run(args) -> list[Row]`` (see ``bench/README.md``). Shared
helpers live here: the ``Row`` of the table, throw-away databases (a SQLite file, or a
PostgreSQL schema created for the run and dropped afterwards) and percentiles.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import quote

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the table: an absolute figure and its ratio to a same-run reference."""

    bench: str
    measure: str
    value: float
    unit: str
    reference: str = ""
    ratio: float | None = None
    target: str = ""
    ok: bool | None = None
    note: str = ""


class BenchError(RuntimeError):
    """A benchmark's own verification failed: its figures are not printed."""


def verify(condition: bool, message: str) -> None:
    if not condition:
        raise BenchError(message)


def pg_base_url() -> str:
    return os.environ.get("ANDON_BENCH_DATABASE_URL", DEFAULT_PG_URL)


@contextmanager
def sqlite_database() -> Iterator[str]:
    folder = tempfile.mkdtemp(prefix="andon-bench-")
    try:
        yield f"sqlite:///{folder}/andon.db"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh schema on ``ANDON_BENCH_DATABASE_URL``, dropped afterwards."""
    from sqlalchemy import create_engine, text

    base = pg_base_url()
    schema = f"andon_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def database(kind: str) -> Iterator[str]:
    manager = sqlite_database() if kind == "sqlite" else postgres_database()
    with manager as url:
        yield url


def postgres_available() -> str | None:
    """None when the benchmark PostgreSQL answers, else the reason it does not."""
    from sqlalchemy import create_engine, text

    engine = create_engine(pg_base_url())
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        return f"PostgreSQL at {pg_base_url()} not reachable: {type(exc).__name__}"
    finally:
        engine.dispose()
    return None


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]

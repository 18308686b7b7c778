"""Bulk writes store exactly what SQLAlchemy would, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session, sessionmaker

from app import bulk
from app.db import UTCDateTime, unit_of_work
from app.identity.models import AuthorIdentity
from app.signal.models import SignalAuthor

ZONES = st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
)
MOMENTS = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=ZONES
)


def sqlalchemy_text(value: datetime) -> str:
    """What SQLAlchemy's own processors make of ``value`` for a UTC column on SQLite."""
    dialect = sqlite.dialect()
    column_type = UTCDateTime()
    process = column_type.dialect_impl(dialect).bind_processor(dialect)
    assert process is not None
    return str(process(value))


@given(MOMENTS)
def test_sqlite_timestamps_are_sqlalchemys_text(moment: datetime) -> None:
    convert = bulk.converter(SignalAuthor.__table__, "bucket_start", sqlite.dialect())  # type: ignore[arg-type]
    assert convert is not None
    assert convert(moment) == sqlalchemy_text(moment)


def test_sqlite_timestamps_refuse_naive_and_pass_none() -> None:
    convert = bulk.converter(SignalAuthor.__table__, "bucket_start", sqlite.dialect())  # type: ignore[arg-type]
    assert convert is not None
    assert convert(None) is None
    with pytest.raises(ValueError, match="naive"):
        convert(datetime(2026, 1, 1, 12))


def test_rows_and_counters_round_trip(factory: sessionmaker[Session]) -> None:
    start = datetime(2026, 3, 1, 10, tzinfo=UTC)
    with unit_of_work(factory) as session:
        ids = bulk.insert_returning_ids(
            session,
            AuthorIdentity,
            [{"display_name": f"n{i}", "created_at": start} for i in range(1203)],
            chunk=500,
        )
    assert ids == sorted(ids)
    assert len(set(ids)) == 1203
    keys = ("granularity", "bucket_start", "queue", "channel", "author_key")
    rows: list[dict[str, Any]] = [
        {
            "granularity": "h",
            "bucket_start": start + timedelta(hours=i % 7),
            "queue": "service",
            "channel": "zendesk",
            "author_key": f"id:{i}",
            "items": 1 + i % 3,
        }
        for i in range(1100)
    ]
    with unit_of_work(factory) as session:
        first = bulk.add_returning(session, SignalAuthor, keys, ("items",), rows, chunk=400)
        again = bulk.add_returning(session, SignalAuthor, keys, ("items",), rows[::-1], chunk=400)
    assert first == [(row["items"],) for row in rows]
    assert again == [(2 * row["items"],) for row in rows[::-1]]
    with factory() as session:
        query = select(AuthorIdentity.id, AuthorIdentity.display_name)
        names = {row.id: row.display_name for row in session.execute(query).all()}
        stored = {
            (a.bucket_start, a.author_key): a.items for a in session.scalars(select(SignalAuthor))
        }
    assert [names[i] for i in ids] == [f"n{i}" for i in range(1203)]
    assert stored == {(row["bucket_start"], row["author_key"]): 2 * row["items"] for row in rows}


def test_counters_orjson_cannot_write_still_add_up(factory: sessionmaker[Session]) -> None:
    """PostgreSQL sends the rows as JSON; a value orjson refuses takes the array path."""
    if factory.kw["bind"].dialect.name != "postgresql":
        pytest.skip("the JSON document is PostgreSQL's path (sqlite3 binds no Decimal)")
    keys = ("granularity", "bucket_start", "queue", "channel", "author_key")
    row = {
        "granularity": "d",
        "bucket_start": datetime(2026, 3, 1, tzinfo=UTC),
        "queue": "sales",
        "channel": "*",
        "author_key": "id:1",
    }
    with unit_of_work(factory) as session:
        first = bulk.add_returning(session, SignalAuthor, keys, ("items",), [{**row, "items": 2}])
        second = bulk.add_returning(
            session, SignalAuthor, keys, ("items",), [{**row, "items": Decimal(3)}]
        )
    assert first == [(2,)]
    assert second == [(5,)]

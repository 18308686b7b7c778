"""Bulk writes: many rows in one driver call, for the ingest's hot tables.

SQLAlchemy's multi-row ``INSERT`` costs tens of microseconds per row in Python (building
each row's parameters, running every bind processor through several layers); a page of a
thousand items writes ten thousand rows. Here a statement is compiled once per dialect,
each value goes through the column type's own bind processor (so a datetime or a JSON
document is stored exactly as SQLAlchemy would store it), and the rows go to the driver's
``executemany`` — the same SQL, the same transaction, none of the per-row overhead.

``add_returning`` upserts counters and gives back their new values, a multi-row statement
at a time, on both backends.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain
from typing import Any

import orjson
from sqlalchemy import Table, bindparam, insert, inspect, update
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert

from app.db import UTCDateTime

Processor = Callable[[Any], Any] | None

_CONVERTERS: dict[tuple[str, str, str], Processor] = {}


def converter(table: Table, name: str, dialect: Dialect) -> Processor:
    """The bind processor of ``table.c[name]`` on ``dialect`` (None: values go as they are).

    A UTC timestamp on SQLite is the one exception: SQLAlchemy converts it in two layers
    of Python (``UTCDateTime``, then the dialect's ``%``-format of every field), and it is
    the most frequent value of the ingest's rows. ``isoformat`` writes the same text
    (``YYYY-MM-DD HH:MM:SS.ffffff``) in C; anything but a plain ``datetime`` takes
    SQLAlchemy's path.
    """
    key = (dialect.name, table.name, name)
    if key in _CONVERTERS:
        return _CONVERTERS[key]
    column_type = table.c[name].type
    process: Processor = column_type.dialect_impl(dialect).bind_processor(dialect)
    if isinstance(column_type, UTCDateTime) and dialect.name == "sqlite" and process is not None:
        process = _sqlite_utc(process)
    _CONVERTERS[key] = process
    return process


def _sqlite_utc(general: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if type(value) is not datetime or value.tzinfo is None:
            return general(value)  # None, a subclass, or a naive value (refused there)
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")

    return convert


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]
    """Parameter names in the order the driver expects them (positional styles)."""
    positional: bool
    processors: tuple[Processor, ...]


_CACHE: dict[tuple[str, str, tuple[str, ...]], _Compiled] = {}


def _compile(
    key: str, statement: Insert, table: Table, columns: Sequence[str], dialect: Dialect
) -> _Compiled:
    cache_key = (dialect.name, key, tuple(columns))
    found = _CACHE.get(cache_key)
    if found is not None:
        return found
    compiled = statement.values({name: bindparam(name) for name in columns}).compile(
        dialect=dialect
    )
    positional = bool(compiled.positional)
    names = tuple(compiled.positiontup or ()) if positional else tuple(columns)
    order = names if positional else tuple(columns)
    processors = tuple(converter(table, name, dialect) for name in order)
    found = _Compiled(compiled.string, names, positional, processors)
    _CACHE[cache_key] = found
    return found


def _memoised(process: Processor) -> Processor:
    """A bind processor that converts each distinct datetime once per call.

    A page's rows share a few timestamps (the page's "now", hour and day starts); the
    datetime conversion is the most expensive processor, and its result depends only on
    the value.
    """
    if process is None:
        return None
    seen: dict[datetime, Any] = {}

    def convert(value: Any) -> Any:
        if type(value) is not datetime:
            return process(value)
        found = seen.get(value, _MISSING)
        if found is _MISSING:
            found = seen[value] = process(value)
        return found

    return convert


_MISSING = object()


def _columns(
    table: Table, columns: Sequence[str], dialect: Dialect, rows: Sequence[Mapping[str, Any]]
) -> list[Sequence[Any]]:
    """Each column's values of ``rows``, converted for the driver: column by column, one
    processor call per value through ``map``."""
    return _converted(table, columns, dialect, [[row[name] for row in rows] for name in columns])


def _converted(
    table: Table, columns: Sequence[str], dialect: Dialect, values: Sequence[Sequence[Any]]
) -> list[Sequence[Any]]:
    """``values`` (one sequence per column of ``columns``) converted for the driver."""
    converted: list[Sequence[Any]] = []
    for name, column in zip(columns, values, strict=True):
        convert = _memoised(converter(table, name, dialect))
        converted.append(column if convert is None else list(map(convert, column)))
    return converted


def _parameters(compiled: _Compiled, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
    # Column by column: one processor call per value through ``map``, then rows by ``zip``.
    columns: list[list[Any]] = []
    for name, process in zip(compiled.names, compiled.processors, strict=True):
        values = [row[name] for row in rows]
        converter = _memoised(process)
        columns.append(values if converter is None else list(map(converter, values)))
    if compiled.positional:
        return list(zip(*columns, strict=True))
    names = compiled.names
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]


def insert_rows(session: Session, entity: Any, rows: Sequence[Mapping[str, Any]]) -> None:
    """``INSERT`` rows into a mapped class's table (or a ``Table``), one driver call."""
    table = _table(entity)
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        _copy(connection, table, rows)
        return
    execute_many(session, f"insert:{table.name}", insert(table), rows)


def _copy(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """PostgreSQL: the rows through ``COPY … FROM STDIN`` (the server's fastest way in).

    ``COPY`` applies no Python-side defaults: every row names every column it fills.
    """
    if not rows:
        return
    dialect = connection.dialect
    quote = dialect.identifier_preparer.quote
    columns = list(rows[0])
    converted = _columns(table, columns, dialect, rows)
    statement = f"COPY {quote(table.name)} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
    driver: Any = connection.connection.driver_connection
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for row in zip(*converted, strict=True):
            copy.write_row(row)


def insert_returning_ids(
    session: Session, entity: Any, rows: Sequence[Mapping[str, Any]], *, chunk: int = 500
) -> list[int]:
    """``INSERT`` rows into a table with an integer ``id`` key; their new ids, in order.

    PostgreSQL: the ids are drawn from the table's sequence first (one query), then the
    rows are inserted with them. SQLite: one multi-row ``INSERT … RETURNING id`` per chunk;
    a rowid table numbers the rows of one statement in ``VALUES`` order (each new rowid is
    one above the largest), so the returned ids, sorted, are the rows' ids in order.
    """
    if not rows:
        return []
    table = _table(entity)
    connection = session.connection()
    dialect = connection.dialect
    if dialect.name == "postgresql":
        sequence = connection.exec_driver_sql(
            "SELECT pg_get_serial_sequence(%s, 'id')", (table.name,)
        ).scalar_one()
        drawn = connection.exec_driver_sql(
            "SELECT nextval(%s) FROM generate_series(1, %s)", (sequence, len(rows))
        )
        drawn_ids = [int(value) for (value,) in drawn]
        _copy(
            connection,
            table,
            [{**row, "id": new} for row, new in zip(rows, drawn_ids, strict=True)],
        )
        return drawn_ids
    columns = list(rows[0])
    quote = dialect.identifier_preparer.quote
    bound = list(zip(*_columns(table, columns, dialect, rows), strict=True))
    head = f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) VALUES "
    group = "(" + ", ".join("?" * len(columns)) + ")"
    ids: list[int] = []
    for offset in range(0, len(rows), chunk):
        part = bound[offset : offset + chunk]
        sql = head + ", ".join([group] * len(part)) + " RETURNING id"
        returned = connection.exec_driver_sql(sql, tuple(chain.from_iterable(part)))
        ids.extend(sorted(map(int, returned.scalars().all())))
    return ids


def update_rows(session: Session, entity: Any, key: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """``UPDATE`` one row per mapping, found by its ``key`` column: one driver call.

    Every mapping has the same keys; the ``key`` column's value picks the row, the others
    are set.
    """
    if not rows:
        return
    table = _table(entity)
    columns = [name for name in rows[0] if name != key]
    statement = (
        update(table)
        .where(table.c[key] == bindparam(f"_{key}"))
        .values({name: bindparam(name) for name in columns})
    )
    connection = session.connection()
    dialect = connection.dialect
    cache_key = (dialect.name, f"update:{table.name}:{key}", tuple(columns))
    compiled = _CACHE.get(cache_key)
    if compiled is None:
        done = statement.compile(dialect=connection.dialect)
        positional = bool(done.positional)
        names = tuple(done.positiontup or ()) if positional else (*columns, f"_{key}")
        processors = tuple(
            converter(table, name.removeprefix("_") if name == f"_{key}" else name, dialect)
            for name in names
        )
        compiled = _CACHE[cache_key] = _Compiled(done.string, names, positional, processors)
    renamed = [{**row, f"_{key}": row[key]} for row in rows]
    connection.exec_driver_sql(compiled.sql, _parameters(compiled, renamed))


def _table(entity: Any) -> Table:
    table = entity if isinstance(entity, Table) else inspect(entity).local_table
    if not isinstance(table, Table):
        raise TypeError(f"{entity!r} is not mapped to a table")
    return table


def execute_many(
    session: Session, key: str, statement: Insert, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Run ``statement`` (an ``INSERT``, possibly ``ON CONFLICT …``) once per row.

    Every row must have the same keys. ``key`` names the statement in the compile cache:
    one key per distinct statement shape.
    """
    if not rows:
        return
    connection = session.connection()
    table = _table_of(statement)
    compiled = _compile(key, statement, table, list(rows[0]), connection.dialect)
    connection.exec_driver_sql(compiled.sql, _parameters(compiled, rows))


def add_returning(
    session: Session,
    entity: Any,
    keys: Sequence[str],
    counters: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    *,
    chunk: int = 500,
) -> list[tuple[Any, ...]]:
    """Upsert rows that add ``counters`` to the row of the same ``keys``; the new counters.

    One multi-row ``INSERT … ON CONFLICT (keys) DO UPDATE SET c = c + excluded.c
    RETURNING keys, counters`` per ``chunk`` rows, on both backends: each statement is
    atomic, so concurrent writers adding to the same row each see their own result. The
    keys must be distinct. Returns the counters after the upsert, one tuple per row of
    ``rows`` in the same order.
    """
    columns = [[row[name] for row in rows] for name in (*keys, *counters)]
    return add_returning_columns(session, entity, keys, counters, columns, chunk=chunk)


def add_returning_columns(
    session: Session,
    entity: Any,
    keys: Sequence[str],
    counters: Sequence[str],
    columns: Sequence[Sequence[Any]],
    *,
    chunk: int = 500,
) -> list[tuple[Any, ...]]:
    """``add_returning`` of rows given column by column: ``columns`` holds one sequence
    of values per name of ``keys`` then ``counters``, all of the same length (a page's
    thousands of rows need no mapping each)."""
    if not columns or not columns[0]:
        return []
    table = _table(entity)
    connection = session.connection()
    dialect = connection.dialect
    names = [*keys, *counters]
    bound = _converted(table, names, dialect, columns)
    if dialect.name == "postgresql":
        return _add_returning_unnest(connection, table, keys, counters, bound)
    quote = dialect.identifier_preparer.quote
    name = quote(table.name)
    placeholder = "?" if dialect.paramstyle == "qmark" else "%s"
    group = "(" + ", ".join([placeholder] * len(names)) + ")"
    head = f"INSERT INTO {name} ({', '.join(quote(c) for c in names)}) VALUES "
    tail = (
        f" ON CONFLICT ({', '.join(quote(k) for k in keys)}) DO UPDATE SET "
        + ", ".join(f"{quote(c)} = {name}.{quote(c)} + excluded.{quote(c)}" for c in counters)
        + f" RETURNING {', '.join(quote(c) for c in names)}"
    )
    found: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    bound_keys = list(zip(*bound[: len(keys)], strict=True))
    bound_rows = list(zip(*bound, strict=True))
    width = len(keys)
    for offset in range(0, len(bound_rows), chunk):
        part = bound_rows[offset : offset + chunk]
        sql = head + ", ".join([group] * len(part)) + tail
        for returned in connection.exec_driver_sql(sql, tuple(chain.from_iterable(part))).all():
            # The keys come back as they were bound.
            found[tuple(returned[:width])] = tuple(returned[width:])
    return [found[key] for key in bound_keys]


def _add_returning_unnest(
    connection: Connection,
    table: Table,
    keys: Sequence[str],
    counters: Sequence[str],
    arrays: Sequence[Sequence[Any]],
) -> list[tuple[Any, ...]]:
    """PostgreSQL: all the rows (converted values, column by column) in one statement,
    sent as one JSON document.

    ``jsonb_populate_recordset`` gives the rows the table's own column types; the
    document is written by orjson in C, where psycopg dumps an array (the former
    ``unnest`` of one array per column) value by value in Python: ~45 ms of a page's
    6,000 author rows. Values orjson cannot write (integers beyond 64 bits) go as arrays.
    """
    dialect = connection.dialect
    quote = dialect.identifier_preparer.quote
    columns = [*keys, *counters]
    name = quote(table.name)
    listed = ", ".join(quote(c) for c in columns)
    conflict = (
        f" ON CONFLICT ({', '.join(quote(k) for k in keys)}) DO UPDATE SET "
        + ", ".join(f"{quote(c)} = {name}.{quote(c)} + excluded.{quote(c)}" for c in counters)
        + f" RETURNING {listed}"
    )
    parameters: tuple[Any, ...]
    try:
        document = orjson.dumps(
            [dict(zip(columns, row, strict=True)) for row in zip(*arrays, strict=True)]
        )
    except TypeError:
        casts = [f"%s::{table.c[c].type.compile(dialect=dialect)}[]" for c in columns]
        source = f"SELECT * FROM unnest({', '.join(casts)})"
        parameters = tuple(map(list, arrays))  # psycopg binds lists as arrays, not tuples
    else:
        source = f"SELECT {listed} FROM jsonb_populate_recordset(NULL::{name}, %s::jsonb)"
        parameters = (document.decode(),)
    sql = f"INSERT INTO {name} ({listed}) {source}{conflict}"
    width = len(keys)
    found = {
        tuple(returned[:width]): tuple(returned[width:])
        for returned in connection.exec_driver_sql(sql, parameters).all()
    }
    return [found[key] for key in zip(*arrays[:width], strict=True)]


def _table_of(statement: Insert) -> Table:
    table = statement.table
    if not isinstance(table, Table):
        raise TypeError("bulk statements write to a Table")
    return table


def select_in(
    session: Session,
    sql: str,
    values: Sequence[Any],
    params: Sequence[Any] = (),
    *,
    chunk: int = 500,
) -> list[tuple[Any, ...]]:
    """The rows of ``sql`` for every value of ``values``, as the driver returns them.

    ``sql`` is written with ``{p}`` for each of ``params`` and ``{in}`` where the list
    goes (``column {in}``): ``IN (?, ?, …)`` a chunk at a time on SQLite, ``= ANY(%s)``
    with one array on PostgreSQL (one parameter, one plan, however long the list). Built
    and run without the ORM or SQL expression layer, which cost more per query than the
    index lookups of hundreds of values; the values are returned unconverted, so this is
    for columns the driver gives as they are (text, integers). Flushes first, as a
    ``Session.execute`` would.
    """
    if not values:
        return []
    if session.autoflush:
        session.flush()
    connection = session.connection()
    found: list[tuple[Any, ...]] = []
    if connection.dialect.name == "postgresql":
        statement = sql.format(p="%s", **{"in": "= ANY(%s)"})
        result = connection.exec_driver_sql(statement, (*params, list(values)))
        return [tuple(row) for row in result.all()]
    placeholder = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    for offset in range(0, len(values), chunk):
        part = values[offset : offset + chunk]
        listed = "IN (" + ", ".join([placeholder] * len(part)) + ")"
        statement = sql.format(p=placeholder, **{"in": listed})
        result = connection.exec_driver_sql(statement, (*params, *part))
        found.extend(tuple(row) for row in result.all())
    return found

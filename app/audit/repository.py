from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent

_INSERT = cast(Table, AuditEvent.__table__).insert()


def add_many(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    # A Core insert of the table: the ORM's bulk insert of the class costs ~3× as much for
    # the one row most changes write (bench/README.md, claims).
    if rows:
        session.execute(_INSERT, list(rows))


def page(session: Session, *, before_id: int | None, limit: int) -> Sequence[AuditEvent]:
    statement = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if before_id is not None:
        statement = statement.where(AuditEvent.id < before_id)
    return session.scalars(statement).all()

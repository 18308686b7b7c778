from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from app.auth.models import ApiKey


def by_hash(session: Session, key_hash: str) -> ApiKey | None:
    return session.scalars(select(ApiKey).where(ApiKey.key_hash == key_hash)).first()


def by_name(session: Session, name: str) -> ApiKey | None:
    return session.scalars(select(ApiKey).where(ApiKey.name == name)).first()


def listing(session: Session) -> Sequence[ApiKey]:
    return session.scalars(select(ApiKey).order_by(ApiKey.name)).all()


def any_key(session: Session) -> bool:
    return bool(session.scalar(select(exists().where(ApiKey.id.is_not(None)))))


def lock(session: Session, key_id: int) -> None:
    """Serialise one key's claims (PostgreSQL row lock; SQLite serialises writers anyway)."""
    session.execute(select(ApiKey.id).where(ApiKey.id == key_id).with_for_update())

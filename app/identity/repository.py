from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from app.identity.models import AuthorIdentity, IdentityKey
from app.items.models import Item


def keys_by_value(
    session: Session, pairs: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], IdentityKey]:
    if not pairs:
        return {}
    statement = select(IdentityKey).where(
        tuple_(IdentityKey.kind, IdentityKey.value).in_(list(pairs))
    )
    return {(key.kind, key.value): key for key in session.scalars(statement)}


def identities(session: Session, ids: Sequence[int]) -> dict[int, AuthorIdentity]:
    if not ids:
        return {}
    statement = select(AuthorIdentity).where(AuthorIdentity.id.in_(ids))
    return {identity.id: identity for identity in session.scalars(statement)}


def keys_of_identity(session: Session, identity_id: int) -> Sequence[IdentityKey]:
    statement = select(IdentityKey).where(IdentityKey.identity_id == identity_id)
    return session.scalars(statement.order_by(IdentityKey.id)).all()


def items_of_identity(session: Session, identity_id: int) -> Sequence[Item]:
    statement = select(Item).where(Item.identity_id == identity_id).order_by(Item.id)
    return session.scalars(statement).all()

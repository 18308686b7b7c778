from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import bulk
from app.db import utcnow
from app.identity.models import AuthorIdentity, IdentityKey
from app.items.models import Item

# Keys per query: well under every backend's bound-parameter limit.
_CHUNK = 400


def keys_of_identity(session: Session, identity_id: int) -> Sequence[IdentityKey]:
    statement = select(IdentityKey).where(IdentityKey.identity_id == identity_id)
    return session.scalars(statement.order_by(IdentityKey.id)).all()


def items_of_identity(session: Session, identity_id: int) -> Sequence[Item]:
    statement = select(Item).where(Item.identity_id == identity_id).order_by(Item.id)
    return session.scalars(statement).all()


def key_owners(session: Session, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """The identity each known ``(kind, value)`` key names.

    One ``kind = ? AND value IN (…)`` query per kind and chunk: it walks the (kind, value)
    unique index, where a row-value ``IN`` would not on every backend.
    """
    values_by_kind: dict[str, list[str]] = {}
    for kind, value in pairs:
        values_by_kind.setdefault(kind, []).append(value)
    owners: dict[tuple[str, str], int] = {}
    for kind, values in sorted(values_by_kind.items()):
        rows = bulk.select_in(session, _KEY_OWNERS, values, (kind,), chunk=_CHUNK)
        owners.update({(kind, value): int(owner) for value, owner in rows})
    return owners


_KEY_OWNERS = "SELECT value, identity_id FROM identity_key WHERE kind = {p} AND value {in}"
_DISPLAY_NAMES = "SELECT id, display_name FROM author_identity WHERE id {in}"


def display_names(session: Session, ids: Sequence[int]) -> dict[int, str | None]:
    rows = bulk.select_in(session, _DISPLAY_NAMES, list(ids), chunk=_CHUNK)
    return {int(identity): name for identity, name in rows}


def insert_identities(session: Session, display_names: Sequence[str | None]) -> list[int]:
    """Insert one identity per name; their ids, in the same order."""
    now = utcnow()
    rows = [{"display_name": name, "created_at": now} for name in display_names]
    return bulk.insert_returning_ids(session, AuthorIdentity, rows)


def insert_keys(session: Session, keys: Sequence[tuple[int, str, str]]) -> None:
    now = utcnow()
    bulk.insert_rows(
        session,
        IdentityKey,
        [
            {
                "identity_id": owner,
                "kind": kind,
                "value": value,
                "linked_by": "auto",
                "created_at": now,
            }
            for owner, kind, value in keys
        ],
    )

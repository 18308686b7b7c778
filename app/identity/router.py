from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from app.db import MAX_ID
from app.deps import RowId, SessionDep
from app.identity import repository, service
from app.identity.models import AuthorIdentity
from app.signal.service import RollupDeltas

router = APIRouter(prefix="/identities", tags=["identities"])


class IdentityKeyRead(BaseModel):
    id: int
    kind: str
    value: str
    linked_by: str


class IdentityRead(BaseModel):
    id: int
    display_name: str | None
    created_at: datetime
    keys: list[IdentityKeyRead]
    item_ids: list[int]


class IdentityMerge(BaseModel):
    other: int = Field(ge=1, le=MAX_ID)
    """The identity that is the same customer; its keys and items move here."""


def _read(session: SessionDep, identity: AuthorIdentity) -> IdentityRead:
    return IdentityRead(
        id=identity.id,
        display_name=identity.display_name,
        created_at=identity.created_at,
        keys=[
            IdentityKeyRead(id=k.id, kind=k.kind, value=k.value, linked_by=k.linked_by)
            for k in repository.keys_of_identity(session, identity.id)
        ],
        item_ids=[item.id for item in repository.items_of_identity(session, identity.id)],
    )


@router.get("/{identity_id}", response_model=IdentityRead, summary="A customer across channels")
def get_identity(identity_id: RowId, session: SessionDep) -> IdentityRead:
    return _read(session, service.get(session, identity_id))


@router.post(
    "/{identity_id}/merge", response_model=IdentityRead, summary="Two identities are one customer"
)
def merge_identities(identity_id: RowId, body: IdentityMerge, session: SessionDep) -> IdentityRead:
    deltas = RollupDeltas()
    identity = service.merge(session, identity_id, body.other, deltas)
    deltas.flush(session)
    return _read(session, identity)


@router.post(
    "/keys/{key_id}/detach",
    response_model=IdentityRead,
    summary="Undo a link: the key (and the items only it explains) become their own identity",
)
def detach_key(key_id: RowId, session: SessionDep) -> IdentityRead:
    deltas = RollupDeltas()
    identity = service.detach_key(session, key_id, deltas)
    deltas.flush(session)
    return _read(session, identity)

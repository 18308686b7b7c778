from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.audit import repository as audit_repository
from app.auth import service
from app.auth.deps import AdminDep, ViewerDep
from app.auth.models import ApiKey
from app.auth.schemas import AuditPage, AuditRead, KeyCreate, KeyCreated, KeyRead, WhoAmI
from app.deps import SessionDep
from app.errors import InvalidInput
from app.pagination import decode_cursor, encode_cursor

router = APIRouter(tags=["auth"])


def key_read(key: ApiKey) -> KeyRead:
    return KeyRead(
        name=key.name,
        role=key.role,
        queues=key.queues,
        prefix=key.prefix,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
    )


@router.get("/auth/whoami", response_model=WhoAmI, summary="The caller's name, role and queues")
def whoami(principal: ViewerDep) -> WhoAmI:
    queues = list(principal.queues) if principal.queues is not None else None
    return WhoAmI(name=principal.name, role=principal.role, queues=queues)


@router.get("/keys", response_model=list[KeyRead], summary="API keys (never the keys themselves)")
def list_keys(session: SessionDep, _: AdminDep) -> list[KeyRead]:
    return [key_read(key) for key in service.listing(session)]


@router.post(
    "/keys", response_model=KeyCreated, status_code=201, summary="Create a key (shown once)"
)
def create_key(body: KeyCreate, session: SessionDep, principal: AdminDep) -> KeyCreated:
    key, plain = service.create_key(
        session, name=body.name, role=body.role, queues=body.queues, actor=principal.name
    )
    return KeyCreated(**key_read(key).model_dump(), key=plain)


@router.delete("/keys/{name}", response_model=KeyRead, summary="Revoke a key")
def revoke_key(name: str, session: SessionDep, principal: AdminDep) -> KeyRead:
    return key_read(service.revoke_key(session, name, actor=principal.name))


@router.get("/audit", response_model=AuditPage, summary="The audit log, newest first")
def audit(
    session: SessionDep,
    _: AdminDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> AuditPage:
    before_id = None
    if cursor is not None:
        before_id = decode_cursor(cursor).get("before")
        if not isinstance(before_id, int):
            raise InvalidInput("invalid cursor: pass the next_cursor you were given")
    rows = audit_repository.page(session, before_id=before_id, limit=limit + 1)
    events = [
        AuditRead(
            id=row.id,
            at=row.at,
            actor=row.actor,
            action=row.action,
            entity=row.entity,
            entity_id=row.entity_id,
            before=row.before,
            after=row.after,
        )
        for row in rows[:limit]
    ]
    next_cursor = encode_cursor({"before": events[-1].id}) if len(rows) > limit else None
    return AuditPage(events=events, next_cursor=next_cursor)

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlalchemy import select

from app.deps import ClassifierDep, SessionDep, SessionFactoryDep
from app.sources import repository, service
from app.sources.models import QuarantinedRecord, Source
from app.sources.runner import run_sync
from app.sources.schemas import (
    CheckRead,
    QuarantineRead,
    RunRead,
    SourceCreate,
    SourceRead,
    SourceUpdate,
)
from connectors import registry
from connectors.errors import ConnectorError

router = APIRouter(prefix="/sources", tags=["sources"])


def to_read(session: SessionDep, source: Source) -> SourceRead:
    state = repository.cursor_of(session, source.id)
    return SourceRead(
        name=source.name,
        kind=source.kind,
        config=source.config,
        enabled=source.enabled,
        interval_seconds=source.interval_seconds,
        status=source.status,
        status_reason=source.status_reason,
        cursor=state.cursor if state else None,
        created_at=source.created_at,
        updated_at=source.updated_at,
    )


@router.get("", response_model=list[SourceRead])
def list_sources(session: SessionDep) -> list[SourceRead]:
    return [to_read(session, source) for source in service.listing(session)]


@router.post("", response_model=SourceRead, status_code=201)
def create_source(body: SourceCreate, session: SessionDep) -> SourceRead:
    source = service.create(
        session,
        name=body.name,
        kind=body.kind,
        config=body.config,
        enabled=body.enabled,
        interval_seconds=body.interval_seconds,
    )
    return to_read(session, source)


@router.get("/{name}", response_model=SourceRead)
def get_source(name: str, session: SessionDep) -> SourceRead:
    return to_read(session, service.get(session, name))


@router.patch("/{name}", response_model=SourceRead)
def update_source(name: str, body: SourceUpdate, session: SessionDep) -> SourceRead:
    source = service.update(session, name, body.model_dump(exclude_unset=True))
    return to_read(session, source)


@router.delete("/{name}", status_code=204)
def delete_source(name: str, session: SessionDep) -> Response:
    service.delete(session, name)
    return Response(status_code=204)


@router.post("/{name}/sync", response_model=RunRead, summary="Sync now; returns the run")
def sync_source(
    name: str, session: SessionDep, factory: SessionFactoryDep, classifier: ClassifierDep
) -> RunRead:
    service.get(session, name)  # 404 before starting a run
    session.close()
    summary = run_sync(factory, name, classifier)
    with factory() as fresh:
        source = service.get(fresh, name)
        run = next(r for r in repository.runs(fresh, source.id, 20) if r.id == summary.run_id)
        return RunRead.model_validate(run, from_attributes=True)


@router.get("/{name}/runs", response_model=list[RunRead])
def list_runs(
    name: str, session: SessionDep, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[RunRead]:
    source = service.get(session, name)
    return [
        RunRead.model_validate(run, from_attributes=True)
        for run in repository.runs(session, source.id, limit)
    ]


@router.post("/{name}/check", response_model=CheckRead, summary="Test credentials and reach")
def check_source(name: str, session: SessionDep) -> CheckRead:
    source = service.get(session, name)
    try:
        registry.create(source.kind, source.config).check()
    except ConnectorError as exc:
        return CheckRead(ok=False, detail=f"{type(exc).__name__}: {exc}")
    return CheckRead(ok=True, detail="reachable and authorised")


@router.get("/{name}/quarantine", response_model=list[QuarantineRead])
def list_quarantine(
    name: str, session: SessionDep, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[QuarantineRead]:
    source = service.get(session, name)
    statement = (
        select(QuarantinedRecord)
        .where(QuarantinedRecord.source_id == source.id)
        .order_by(QuarantinedRecord.id.desc())
        .limit(limit)
    )
    return [
        QuarantineRead.model_validate(record, from_attributes=True)
        for record in session.scalars(statement)
    ]

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Query, Request, Response
from sqlalchemy import select

from app.deps import ClassifierDep, SessionDep, SessionFactoryDep, SettingsDep
from app.ops.privacy import Privacy
from app.scheduler import after_source_change
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
        cron=source.cron,
        retention_days=source.retention_days,
        status=source.status,
        status_reason=source.status_reason,
        consecutive_failures=source.consecutive_failures,
        next_attempt_at=source.next_attempt_at,
        cursor=state.cursor if state else None,
        created_at=source.created_at,
        updated_at=source.updated_at,
    )


def schedule_changed(session: SessionDep, request: Request, background: BackgroundTasks) -> None:
    """Apply a schedule change to this process's scheduler once the response is sent.

    Committed here, not by the request's unit of work: background tasks run before the
    session dependency closes, and the scheduler reads the change from the database.
    """
    session.commit()
    background.add_task(after_source_change, request.app)


@router.get("", response_model=list[SourceRead])
def list_sources(session: SessionDep) -> list[SourceRead]:
    return [to_read(session, source) for source in service.listing(session)]


@router.post("", response_model=SourceRead, status_code=201)
def create_source(
    body: SourceCreate, session: SessionDep, request: Request, background: BackgroundTasks
) -> SourceRead:
    source = service.create(
        session,
        name=body.name,
        kind=body.kind,
        config=body.config,
        enabled=body.enabled,
        interval_seconds=body.interval_seconds,
        cron=body.cron,
        retention_days=body.retention_days,
    )
    schedule_changed(session, request, background)
    return to_read(session, source)


@router.get("/{name}", response_model=SourceRead)
def get_source(name: str, session: SessionDep) -> SourceRead:
    return to_read(session, service.get(session, name))


@router.patch("/{name}", response_model=SourceRead)
def update_source(
    name: str,
    body: SourceUpdate,
    session: SessionDep,
    request: Request,
    background: BackgroundTasks,
) -> SourceRead:
    # null clears a schedule or the retention; for config and enabled it changes nothing.
    changes = {
        key: value
        for key, value in body.model_dump(exclude_unset=True).items()
        if value is not None or key not in ("config", "enabled")
    }
    source = service.update(session, name, changes)
    schedule_changed(session, request, background)
    return to_read(session, source)


@router.delete("/{name}", status_code=204)
def delete_source(
    name: str, session: SessionDep, request: Request, background: BackgroundTasks
) -> Response:
    service.delete(session, name)
    schedule_changed(session, request, background)
    return Response(status_code=204, background=background)


@router.post(
    "/{name}/sync",
    response_model=RunRead,
    summary="Sync now; returns the run",
    responses={409: {"description": "Another runner (a worker or replica) is syncing it"}},
)
def sync_source(
    name: str,
    session: SessionDep,
    factory: SessionFactoryDep,
    classifier: ClassifierDep,
    settings: SettingsDep,
) -> RunRead:
    service.get(session, name)  # 404 before starting a run
    session.close()
    privacy = Privacy(redact=settings.redact, raw_payload=settings.raw_payload)
    summary = run_sync(factory, name, classifier, privacy=privacy)
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

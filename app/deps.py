"""Request dependencies as ``Annotated`` aliases: signatures read like a contract."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Annotated, ParamSpec, TypeVar

from fastapi import Depends, Path, Request
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from app.config import Settings
from app.db import MAX_ID, unit_of_work
from app.learning.service import Classifier


def _finish(session: Session, ok: bool) -> None:
    try:
        if ok:
            session.commit()
        else:
            session.rollback()
    finally:
        session.close()


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One unit of work per request: committed when the handler returns normally.

    Committed before the response is sent (``scope="function"``), so a 2xx means the change
    is durable. The dependencies here are ``async``: FastAPI runs a sync dependency in the
    threadpool, one hop each, and those hops were most of a short request's cost. Making a
    session does no I/O; the commit (or rollback) does, so it goes to the threadpool —
    unless the request never touched the database.
    """
    factory: sessionmaker[Session] = request.app.state.sessionmaker
    session = factory()
    try:
        yield session
    except BaseException:
        await run_in_threadpool(_finish, session, False)
        raise
    if session.in_transaction():
        await run_in_threadpool(_finish, session, True)
    else:
        session.close()


P = ParamSpec("P")
T = TypeVar("T")


async def run_committed(
    session: Session, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """Run ``work`` in the threadpool and commit the request's session in the same call.

    For an ``async`` endpoint on a hot path: one threadpool hop for the work and the
    commit instead of two (the session dependency then finds nothing left to commit; on an
    error it rolls back as usual).
    """

    def unit() -> T:
        result = work(*args, **kwargs)
        session.commit()
        return result

    return await run_in_threadpool(unit)


async def run_unit(factory: sessionmaker[Session], work: Callable[..., T], *args: object) -> T:
    """Run ``work(session, *args)`` in one unit of work, in one threadpool call.

    For the hottest endpoints (claim, resolve, a cached ``GET /signal``): no session
    dependency at all — FastAPI's generator dependencies (an exit stack and a context
    manager per request) cost more than the statements — and one threadpool hop for the
    session, the work and the commit.
    """

    def unit() -> T:
        with unit_of_work(factory) as session:
            return work(session, *args)

    return await run_in_threadpool(unit)


async def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_classifier(request: Request) -> Classifier:
    classifier: Classifier = request.app.state.classifier
    return classifier


async def get_sessionmaker(request: Request) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = request.app.state.sessionmaker
    return factory


async def get_read_sessionmaker(request: Request) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = request.app.state.read_sessionmaker
    return factory


SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
ClassifierDep = Annotated[Classifier, Depends(get_classifier)]
SessionFactoryDep = Annotated[sessionmaker[Session], Depends(get_sessionmaker)]
ReadSessionFactoryDep = Annotated[sessionmaker[Session], Depends(get_read_sessionmaker)]

RowId = Annotated[int, Path(ge=1, le=MAX_ID, description="A row id (1 to 2³¹−1)")]

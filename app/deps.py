"""Request dependencies as ``Annotated`` aliases: signatures read like a contract."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Request
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.db import MAX_ID
from app.learning.service import Classifier


def get_session(request: Request) -> Iterator[Session]:
    """One unit of work per request: committed when the handler returns normally."""
    factory: sessionmaker[Session] = request.app.state.sessionmaker
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_classifier(request: Request) -> Classifier:
    classifier: Classifier = request.app.state.classifier
    return classifier


def get_sessionmaker(request: Request) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = request.app.state.sessionmaker
    return factory


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
ClassifierDep = Annotated[Classifier, Depends(get_classifier)]
SessionFactoryDep = Annotated[sessionmaker[Session], Depends(get_sessionmaker)]

RowId = Annotated[int, Path(ge=1, le=MAX_ID, description="A row id (1 to 2³¹−1)")]

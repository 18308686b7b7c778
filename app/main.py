"""The FastAPI application factory. Nothing connects to a database at import time."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import text

from app import __version__
from app.body_limit import BodySizeLimit
from app.config import Settings, get_settings
from app.db import make_engine, make_sessionmaker, unit_of_work
from app.deps import SessionDep
from app.errors import install_handlers
from app.items.router import router as items_router
from app.items.router import votes_router
from app.learning.service import Classifier, load_classifier
from app.queues.router import router as queues_router
from app.scheduler import build_scheduler
from app.signal.router import router as signal_router
from app.sources.router import router as sources_router
from app.sources.service import ensure_demo

log = logging.getLogger(__name__)

DESCRIPTION = """
Andon pulls customer feedback from the places customers speak, scores its sentiment,
routes each item to the team that should act on it (product, marketing, sales, service,
or a human triage lane when the model is unsure) and serves the demand signal.

Errors are `application/problem+json` (RFC 9457) with a `detail` that says what to fix.
"""


def create_app(
    settings: Settings | None = None,
    *,
    classifier: Classifier | None = None,
    start_scheduler: bool | None = None,
) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        factory = make_sessionmaker(engine)
        app.state.settings = settings
        app.state.engine = engine
        app.state.sessionmaker = factory
        app.state.classifier = classifier or load_classifier(
            settings.model_dir, settings.triage_threshold
        )
        if settings.demo:
            with unit_of_work(factory) as session:
                ensure_demo(session, settings.demo_interval_seconds)
        scheduler = None
        run_scheduler = settings.scheduler if start_scheduler is None else start_scheduler
        if run_scheduler:
            scheduler = build_scheduler(factory, app.state.classifier)
            scheduler.start()
        log.info("andon %s ready (model %s)", __version__, app.state.classifier.model_version)
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.shutdown(wait=True)
            engine.dispose()

    app = FastAPI(title="Andon", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    install_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.include_router(sources_router)
    app.include_router(items_router)
    app.include_router(votes_router)
    app.include_router(queues_router)
    app.include_router(signal_router)

    @app.get("/healthz", tags=["health"], summary="The process is up and the database answers")
    def healthz(session: SessionDep) -> dict[str, str]:
        session.execute(text("SELECT 1"))
        return {"status": "ok", "version": __version__, "model": app.state.classifier.model_version}

    return app

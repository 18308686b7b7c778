"""The FastAPI application factory. Nothing connects to a database at import time."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from app import __version__
from app.auth.deps import read_or_admin
from app.auth.router import router as auth_router
from app.auth.service import ensure_demo_admin
from app.body_limit import BodySizeLimit
from app.config import Settings, get_settings
from app.db import make_engine, make_read_sessionmaker, make_sessionmaker, unit_of_work
from app.dedupe.router import router as dedupe_router
from app.errors import document_problems, install_handlers
from app.feed.router import router as feed_router
from app.identity.router import router as identity_router
from app.items.router import router as items_router
from app.items.router import votes_router
from app.learning.router import models_router, rules_router
from app.learning.service import Classifier, load_classifier
from app.ops import ratelimit
from app.ops.health import migrations_head
from app.ops.request_context import RequestContextMiddleware
from app.ops.router import router as ops_router
from app.queues import fast
from app.queues.lane import AgentLane
from app.queues.router import agents_router
from app.queues.router import router as queues_router
from app.scheduler import build_scheduler
from app.signal.cache import TokenReads
from app.signal.router import router as signal_router
from app.signal.router import signal_token
from app.sources.router import router as sources_router
from app.sources.service import ensure_demo
from app.web.router import install_web

log = logging.getLogger(__name__)

CLAIMS_POOL_SIZE = 20
"""Async connections per HTTP process for claims and closes (PostgreSQL), above the 16
agents the benchmarks drive; the pool opens them as requests wait, from one."""

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
        app.state.read_sessionmaker = make_read_sessionmaker(engine)
        app.state.signal_tokens = TokenReads(signal_token(app.state.read_sessionmaker))
        # PostgreSQL: claims and closes on the event loop, over async connections of their own
        app.state.claims_pool = claims_pool = fast.open_pool(engine, CLAIMS_POOL_SIZE)
        if claims_pool is not None:
            await claims_pool.open()
        app.state.migrations_head = migrations_head()
        app.state.classifier = classifier or load_classifier(
            settings.model_dir, settings.triage_threshold, workers=settings.classify_workers
        )
        if settings.demo:
            with unit_of_work(factory) as session:
                ensure_demo(session, settings.demo_interval_seconds)
                demo_key = ensure_demo_admin(session)
            if demo_key is not None:  # the one time a key is logged: a newcomer signs in with it
                log.warning("created admin key demo-admin for the demo: %s", demo_key)
        scheduler = None
        run_scheduler = settings.scheduler if start_scheduler is None else start_scheduler
        if run_scheduler:
            scheduler = build_scheduler(factory, app.state.classifier, settings)
            scheduler.start()
        app.state.scheduler = scheduler
        log.info("andon %s ready (model %s)", __version__, app.state.classifier.model_version)
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.shutdown(wait=True)
            if classifier is None:  # ours: stop its classification workers
                app.state.classifier.close()
            if claims_pool is not None:
                await claims_pool.close()
            engine.dispose()

    app = FastAPI(title="Andon", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    install_handlers(app)
    generate_schema = app.openapi
    app.openapi = lambda: document_problems(generate_schema())  # type: ignore[method-assign]
    # Claims and closes, the agents' hot path, answered inside the app's middlewares but
    # before FastAPI's routing (the innermost middleware is the one added first).
    app.add_middleware(AgentLane)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    # Request ids and HTTP latency; probes and /metrics need no key (scraped in-cluster).
    app.add_middleware(RequestContextMiddleware)
    ratelimit.install(app, settings)
    # Claims and closes, the hottest routes, first: a request is matched against the routes
    # in order. Their one dependency charges the rate limit (app.ops.ratelimit.charged_agent).
    app.include_router(agents_router)
    app.include_router(ops_router)
    # Every API router is rate limited per key (probes, metrics and pages are not).
    limited = [Depends(ratelimit.limit_rate)]
    # Reads need a viewer key (or ANDON_PUBLIC_READ), changes an admin key.
    reads_or_admin = [*limited, Depends(read_or_admin)]
    # Then the other hot paths: each route before a request's own costs a match (~35 before
    # these cost a tenth of a cached GET /signal's CPU).
    app.include_router(queues_router, dependencies=limited)
    app.include_router(signal_router, dependencies=reads_or_admin)
    app.include_router(auth_router, dependencies=limited)
    app.include_router(sources_router, dependencies=reads_or_admin)
    app.include_router(items_router, dependencies=reads_or_admin)
    app.include_router(votes_router, dependencies=reads_or_admin)
    app.include_router(feed_router, dependencies=reads_or_admin)
    app.include_router(identity_router, dependencies=reads_or_admin)
    app.include_router(dedupe_router, dependencies=reads_or_admin)
    # each endpoint names its role: reads viewer, changes admin
    app.include_router(rules_router, dependencies=limited)
    app.include_router(models_router, dependencies=limited)
    install_web(app)

    return app


def create_served_app() -> FastAPI:
    """The app of one ``andon serve --workers N`` HTTP process (uvicorn imports it by name).

    Settings from the environment the parent left (``ANDON_SCHEDULER`` off), and logging
    configured as in the parent: uvicorn runs without a log config of its own.
    """
    from app.ops import logs

    settings = get_settings()
    logs.configure(settings.log_level, settings.log_format, redacting=settings.redact)
    return create_app(settings)

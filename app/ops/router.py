"""Health, readiness and metrics endpoints."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from app import __version__
from app.db import utcnow
from app.errors import PROBLEM_JSON
from app.ops import health, metrics

log = logging.getLogger(__name__)

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up (liveness)")
def healthz(request: Request) -> dict[str, str]:
    classifier = getattr(request.app.state, "classifier", None)
    model = classifier.model_version if classifier is not None else "none"
    return {"status": "ok", "version": __version__, "model": model}


@router.get(
    "/readyz",
    summary="Ready for traffic: database reachable, migrations current, model loaded",
    responses={503: {"description": "Not ready; `checks` says why"}},
)
def readyz(request: Request) -> JSONResponse:
    state = request.app.state
    classifier = getattr(state, "classifier", None)
    checks = health.readiness(
        state.engine,
        state.migrations_head,
        classifier.model_version if classifier is not None else None,
    )
    body: dict[str, Any] = {
        "checks": {check.name: {"ok": check.ok, "detail": check.detail} for check in checks}
    }
    failed = [check for check in checks if not check.ok]
    if not failed:
        return JSONResponse({"status": "ready", **body})
    return JSONResponse(
        {
            "type": "about:blank",
            "title": "Not ready",
            "status": 503,
            "detail": "; ".join(f"{check.name}: {check.detail}" for check in failed),
            "instance": request.url.path,
            **body,
        },
        status_code=503,
        media_type=PROBLEM_JSON,
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition format)",
    response_class=Response,
    responses={200: {"content": {metrics.CONTENT_TYPE: {}}}},
)
def prometheus_metrics(request: Request) -> Response:
    try:
        with request.app.state.sessionmaker() as session:
            body = metrics.exposition(session, utcnow())
    except SQLAlchemyError as exc:
        # The process's own metrics are still worth scraping while the database is away.
        log.warning("metrics without database gauges: %s", type(exc).__name__)
        body = metrics.exposition(None, utcnow())
    return Response(body, media_type=metrics.CONTENT_TYPE)

"""Per-request context: a request id for logs and the response, latency for /metrics.

A pure ASGI middleware. The id comes from the caller's ``X-Request-ID`` when it is a
sane token (so a proxy's id follows the request through), otherwise a new one; it is
returned in ``X-Request-ID`` and stamped on every log record written while serving.
One access-log line per request replaces uvicorn's (which is written outside the
request's context and would miss the id).
"""

from __future__ import annotations

import logging
import os
import re
import time

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.ops import metrics
from app.ops.logs import request_id

access_log = logging.getLogger("andon.access")

HEADER = "X-Request-ID"
ACCEPTED = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
# Scrapes and probes would drown the access log.
QUIET_PATHS = frozenset({"/metrics", "/healthz", "/readyz"})


def request_id_from(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate = bytes(value).decode("latin-1")
            if ACCEPTED.match(candidate):
                return candidate
    return os.urandom(16).hex()  # a random id in uuid4().hex's shape, at a fifth of its cost


def route_of(scope: Scope) -> str:
    """The route template (``/sources/{name}``): bounded label values, unlike raw paths."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else "unmatched"


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id_from(scope)
        token = request_id.set(rid)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                MutableHeaders(scope=message).append(HEADER, rid)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            method, path = scope["method"], scope["path"]
            metrics.HTTP_DURATION.labels(method, route_of(scope), str(status)).observe(elapsed)
            if path not in QUIET_PATHS:
                access_log.info(
                    "%s %s %d %.1fms",
                    method,
                    path,
                    status,
                    elapsed * 1000,
                    extra={"method": method, "path": path, "status": status},
                )
            request_id.reset(token)

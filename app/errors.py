"""Domain errors, raised below the routers; one handler maps them to RFC 9457 problem+json.

AndonError                      500
 ├── NotFound                   404  a named thing does not exist
 ├── Conflict                   409  the state does not allow it (duplicate name, lease held)
 ├── InvalidInput               422  well-formed request, unacceptable values
 ├── LimitExceeded              429  a WIP or rate limit
 └── Unavailable                503  a dependency (database, model) is not there
"""

from __future__ import annotations

from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from sqlalchemy.exc import DataError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"


class AndonError(Exception):
    status = 500
    title = "Internal error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class NotFound(AndonError):
    status = 404
    title = "Not found"


class Conflict(AndonError):
    status = 409
    title = "Conflict"


class InvalidInput(AndonError):
    status = 422
    title = "Invalid input"


class LimitExceeded(AndonError):
    status = 429
    title = "Limit exceeded"


class Unavailable(AndonError):
    status = 503
    title = "Service unavailable"


def problem(status: int, title: str, detail: str, request: Request, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; some errors add fields (e.g. `errors`, `limit`).",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {"type": "array", "items": {"type": "string"}},
                    "msg": {"type": "string"},
                },
            },
        },
    },
    "additionalProperties": True,
}


def document_problems(schema: dict[str, Any]) -> dict[str, Any]:
    """Say in the OpenAPI schema what errors really are: problem+json, not FastAPI's default.

    Every documented 4xx/5xx response (the 422 FastAPI adds to each operation, the 409s and
    429s routers name) gets the ``Problem`` schema under ``application/problem+json``.
    """
    schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    problem_content = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                if str(status)[:1] in ("4", "5"):
                    response["content"] = problem_content
    return schema


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(AndonError)
    async def _andon(request: Request, exc: AndonError) -> JSONResponse:
        return problem(exc.status, exc.title, exc.detail, request, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": [str(part) for part in error["loc"]], "msg": error["msg"]}
            for error in exc.errors()
        ]
        detail = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors)
        return problem(422, "Invalid request", detail, request, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "Error")
        return problem(exc.status_code, title, str(exc.detail), request)

    @app.exception_handler(DataError)
    async def _data(request: Request, exc: DataError) -> JSONResponse:
        # A value the database cannot hold or compare (a NUL byte on PostgreSQL, a number
        # out of range): the caller's input, so a 422 that says which, not a 500.
        reason = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else "bad value"
        detail = f"the database refused a value: {reason}"
        return problem(422, "Invalid input", detail, request)

    @app.exception_handler(UnicodeEncodeError)
    async def _unencodable(request: Request, exc: UnicodeEncodeError) -> JSONResponse:
        # Valid JSON can carry a lone surrogate escape ("\\ud83d", half an emoji) that no
        # database stores as UTF-8; the write fails before anything is kept.
        detail = (
            f"text holds a character that cannot be stored as UTF-8 ({exc.reason}): "
            "send the whole character or drop it"
        )
        return problem(422, "Invalid input", detail, request)

    @app.exception_handler(OperationalError)
    @app.exception_handler(psycopg.OperationalError)  # the claims' async connections
    @app.exception_handler(PoolTimeout)  # … or none of them could be had in time
    async def _database(request: Request, exc: Exception) -> JSONResponse:
        return problem(503, "Service unavailable", "the database is not reachable", request)

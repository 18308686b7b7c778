"""Who is calling, as request dependencies: ``ViewerDep``, ``AgentDep``, ``AdminDep``.

A key comes in ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. No key or an
unknown/revoked key is 401; a role too low is 403. With ``ANDON_PUBLIC_READ=true`` a
caller without a key is an anonymous viewer (a wrong key is still 401).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from app.auth.errors import Forbidden, Unauthorized
from app.auth.service import ANONYMOUS, Principal, authenticate, cached_principal
from app.config import Settings
from app.db import unit_of_work


def presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthorized("the Authorization header must be 'Bearer <key>'")
        return value.strip()
    return request.headers.get("x-api-key") or None


async def get_principal(request: Request) -> Principal:
    # async, like the role checks below: a sync dependency costs a threadpool hop per
    # request; only a key missing from the cache is looked up (in the threadpool, in a
    # session of its own: depending on the request's session would give every endpoint
    # the session dependency, a generator, FastAPI's most expensive kind).
    # The app's state, not the settings and sessionmaker dependencies: every request
    # solves this one, and each dependency is a share of FastAPI's dependency solving.
    state = request.app.state
    settings: Settings = state.settings
    factory: sessionmaker[Session] = state.sessionmaker
    key = presented_key(request)
    if key is None:
        if settings.public_read and request.method in ("GET", "HEAD"):
            return ANONYMOUS
        raise Unauthorized("an API key is required: send 'Authorization: Bearer <key>'")
    ttl = settings.key_cache_seconds
    principal = cached_principal(key, ttl) or await run_in_threadpool(_look_up, factory, key, ttl)
    if principal is None:
        # Charged to the address: past its budget, 429 instead of 401. Imported here, off
        # the hot path: app.ops.ratelimit depends on this module's PrincipalDep.
        from app.ops.ratelimit import charge_auth_failure

        charge_auth_failure(request)
        raise Unauthorized("unknown or revoked API key")
    return principal


def _look_up(factory: sessionmaker[Session], key: str, ttl: float) -> Principal | None:
    with unit_of_work(factory) as session:
        return authenticate(session, key, cache_seconds=ttl)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require_role(principal: Principal, role: str) -> Principal:
    """``principal`` if it has ``role`` (or a higher one); 403 otherwise."""
    if not principal.has_role(role):
        raise Forbidden(f"this needs the {role} role; key {principal.name!r} is a {principal.role}")
    return principal


def _require(role: str) -> Callable[[Principal], Awaitable[Principal]]:
    async def dependency(principal: PrincipalDep) -> Principal:
        return require_role(principal, role)

    dependency.__name__ = f"require_{role}"
    return dependency


require_viewer = _require("viewer")
require_agent = _require("agent")
require_admin = _require("admin")

ViewerDep = Annotated[Principal, Depends(require_viewer)]
AgentDep = Annotated[Principal, Depends(require_agent)]
AdminDep = Annotated[Principal, Depends(require_admin)]


async def read_or_admin(request: Request, principal: PrincipalDep) -> Principal:
    """For routers of reads and admin operations (sources): GET reads, the rest is admin."""
    role = "viewer" if request.method in ("GET", "HEAD") else "admin"
    if not principal.has_role(role):
        raise Forbidden(f"this needs the {role} role; key {principal.name!r} is a {principal.role}")
    return principal

"""Rate limiting of the API: a token bucket per API key, and per client address without one.

A bucket holds up to ``ANDON_RATE_LIMIT_BURST`` tokens and refills at
``ANDON_RATE_LIMIT_PER_MINUTE`` per minute; a request takes one token. An empty bucket is
answered ``429`` problem+json with ``Retry-After`` (whole seconds until a token is back).
Callers without a key (the anonymous reads ``ANDON_PUBLIC_READ`` allows) share one bucket
per client address, at ``ANDON_RATE_LIMIT_ANONYMOUS_PER_MINUTE``: one address can be many
people (an office, a proxy), so its default is higher. ``0`` turns a limit off.

Every limited response carries where its caller stands::

    RateLimit-Policy: 6000;w=60;burst=600     the rule: 6,000 a minute, bursts of 600
    RateLimit-Limit: 600                      the bucket's size
    RateLimit-Remaining: 599                  tokens left
    RateLimit-Reset: 1                        seconds until the bucket is full again

The limit is charged after the key is checked (``limit_rate`` depends on the principal), so
a bucket is only ever made for a real key or a real address, never for a made-up key. An
unknown or revoked key is charged to its address instead, in a bucket of its own
(``ANDON_AUTH_FAILURES_PER_MINUTE``, default 60, bursts of 120): past it, 429 rather than
401, so keys cannot be guessed at speed.
``/healthz``, ``/readyz``, ``/metrics``, the docs and the web pages are not limited — they
do not depend on it. Buckets live in the process: with several API processes a key may
reach that many times the rate. A request costs a dictionary lookup and a few float
operations on the event loop thread (no lock is needed there, and nothing is awaited).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.auth.deps import PrincipalDep, get_principal, require_role
from app.auth.service import Principal
from app.config import Settings
from app.errors import LimitExceeded, problem

STATE_KEY = "andon_rate_limit"
"""Where ``limit_rate`` leaves the caller's standing for ``RateLimitHeaders`` (scope state)."""


@dataclass(frozen=True, slots=True)
class Standing:
    """One caller's bucket after a request: what the headers say."""

    limit: int
    remaining: int
    reset_seconds: int
    policy: str

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Policy": self.policy,
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
        }


class RateLimited(LimitExceeded):
    """429 with ``Retry-After``: the caller's bucket is empty."""

    title = "Too many requests"

    def __init__(self, detail: str, standing: Standing, retry_after: int) -> None:
        super().__init__(detail, limit="rate", retry_after=retry_after)
        self.standing = standing
        self.retry_after = retry_after


class TokenBuckets:
    """Token buckets by name, all with one rate and size; ``take`` is O(1).

    Idle buckets refill to full, and a full bucket is the same as none: when there are more
    than ``max_buckets`` (addresses come and go), the full ones are dropped.
    """

    def __init__(
        self,
        per_minute: int,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_buckets: int = 10_000,
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.clock = clock
        self.max_buckets = max_buckets
        self.policy = f"{per_minute};w=60;burst={burst}"
        self._buckets: dict[str, list[float]] = {}

    def take(self, name: str) -> tuple[bool, Standing, float]:
        """Take a token for ``name``: (granted, standing, seconds until the next token)."""
        now = self.clock()
        bucket = self._buckets.get(name)
        if bucket is None:
            if len(self._buckets) >= self.max_buckets:
                self._prune(now)
            bucket = self._buckets[name] = [self.burst, now]
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        granted = tokens >= 1.0
        if granted:
            tokens -= 1.0
        bucket[0], bucket[1] = tokens, now
        wait = 0.0 if granted else (1.0 - tokens) / self.rate
        standing = Standing(
            limit=int(self.burst),
            remaining=int(tokens),
            reset_seconds=math.ceil((self.burst - tokens) / self.rate),
            policy=self.policy,
        )
        return granted, standing, wait

    def _prune(self, now: float) -> None:
        full = [
            name
            for name, (tokens, at) in self._buckets.items()
            if tokens + (now - at) * self.rate >= self.burst
        ]
        for name in full:
            del self._buckets[name]
        if len(self._buckets) >= self.max_buckets:  # all busy: forget the stalest
            stalest = sorted(self._buckets, key=lambda name: self._buckets[name][1])
            for name in stalest[: len(stalest) // 2]:
                del self._buckets[name]

    def __len__(self) -> int:
        return len(self._buckets)


class RateLimiter:
    """The buckets of one API process: per key, and per address for anonymous callers."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.keys = (
            TokenBuckets(settings.rate_limit_per_minute, settings.rate_limit_burst, clock=clock)
            if settings.rate_limit_per_minute
            else None
        )
        anonymous = settings.rate_limit_anonymous_per_minute
        self.addresses = (
            TokenBuckets(anonymous, settings.rate_limit_anonymous_burst, clock=clock)
            if anonymous
            else None
        )
        failures = settings.auth_failures_per_minute
        self.failures = (
            TokenBuckets(failures, settings.auth_failures_burst, clock=clock) if failures else None
        )

    def charge(self, key_id: int | None, name: str, address: str) -> Standing | None:
        """Charge one request; raise ``RateLimited`` when the caller's bucket is empty."""
        if key_id is not None:
            buckets, bucket, who = self.keys, f"k{key_id}", f"key {name!r}"
        else:
            buckets, bucket, who = self.addresses, address, f"address {address}"
        if buckets is None:
            return None
        granted, standing, wait = buckets.take(bucket)
        if granted:
            return standing
        retry_after = max(1, math.ceil(wait))
        raise RateLimited(
            f"rate limit exceeded for {who} ({buckets.policy.split(';')[0]} requests a "
            f"minute, bursts of {standing.limit}): retry in {retry_after} s",
            standing,
            retry_after,
        )

    def charge_failure(self, address: str) -> None:
        """Charge a request with an unknown or revoked key to its address's failure bucket.

        Raises ``RateLimited`` once the address has spent it: guessing keys (or a client
        stuck on a revoked one) is slowed to ``ANDON_AUTH_FAILURES_PER_MINUTE``, and each
        guess costs the database a lookup, so it is bounded too.
        """
        if self.failures is None:
            return
        granted, standing, wait = self.failures.take(address)
        if granted:
            return
        retry_after = max(1, math.ceil(wait))
        raise RateLimited(
            f"too many unknown or revoked API keys from address {address} "
            f"({self.failures.policy.split(';')[0]} a minute, bursts of {standing.limit}): "
            f"retry in {retry_after} s",
            standing,
            retry_after,
        )


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def charge_auth_failure(request: Request) -> None:
    """An unknown or revoked key: charge the caller's address (429 once it is spent)."""
    limiter: RateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    if limiter is not None:
        limiter.charge_failure(client_address(request))


async def limit_rate(request: Request, principal: PrincipalDep) -> None:
    """Charge the caller's bucket (a router dependency; async: it runs on the event loop)."""
    limiter: RateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    if limiter is None:
        return
    standing = limiter.charge(principal.key_id, principal.name, client_address(request))
    if standing is not None:
        request.scope.setdefault("state", {})[STATE_KEY] = standing


async def charged_agent(request: Request) -> Principal:
    """The caller of an agent's hot endpoint (claim, resolve, dismiss), in one dependency.

    What the rate-limited routers' dependencies do for every other endpoint — the principal,
    ``limit_rate``, then the role check (``AgentDep``) — in one call: every agent's entry is
    a claim and a close, and FastAPI's dependency solving cost a third of such a request's
    CPU with the three. The routes using it are included without ``limit_rate``
    (``app.main``).
    """
    principal = await get_principal(request)
    await limit_rate(request, principal)
    return require_role(principal, "agent")


ChargedAgentDep = Annotated[Principal, Depends(charged_agent)]


class RateLimitHeaders:
    """Adds the caller's ``RateLimit-*`` headers to every response ``limit_rate`` charged.

    A pure ASGI middleware, so responses a handler builds itself (204, streams) and error
    responses get them too.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                standing = scope.get("state", {}).get(STATE_KEY)
                if isinstance(standing, Standing):
                    headers = MutableHeaders(scope=message)
                    for name, value in standing.headers().items():
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install(app: FastAPI, settings: Settings) -> None:
    """The limiter on ``app.state``, its 429 handler and the headers middleware."""
    app.state.rate_limiter = RateLimiter(settings)

    @app.exception_handler(RateLimited)
    async def _rate_limited(request: Request, exc: RateLimited) -> JSONResponse:
        response = problem(exc.status, exc.title, exc.detail, request, **exc.extra)
        response.headers.update(exc.standing.headers())
        response.headers["Retry-After"] = str(exc.retry_after)
        return response

    app.add_middleware(RateLimitHeaders)

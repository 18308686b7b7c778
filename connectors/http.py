"""One HTTP client factory and one request helper for every HTTP connector.

Policy, the same for all sources:

* timeouts on connect / read / write / pool (``Timeouts``);
* 5xx, 408, timeouts and transport errors are retried with exponential backoff and full
  jitter (``RetryPolicy``), then surface as ``UpstreamError``;
* 429 is never retried here: it becomes ``RateLimited`` with the wait the server asked
  for, read from ``Retry-After`` (seconds or HTTP-date), ``x-rate-limit-reset`` (X: epoch
  seconds) or ``X-RateLimit-Reset`` (Mastodon: ISO-8601 time). The sync runner decides
  whether to wait or to stop and resume later — connectors never hammer;
* 401/403 become ``AuthFailed``; other 4xx become ``RequestRejected`` unless the caller
  lists the status in ``allow`` (for APIs whose 4xx carry meaning, e.g. X's 400 for a
  stale ``since_id``).

Tests inject an ``httpx.MockTransport`` (or any transport) and a fake ``sleep``.
"""

from __future__ import annotations

import base64
import json
import random
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import orjson

from connectors.errors import (
    AuthFailed,
    ProtocolError,
    RateLimited,
    RequestRejected,
    UpstreamError,
)

USER_AGENT = "andon/0.1 (+https://github.com/andon-crm/andon)"
DEFAULT_RATE_LIMIT_WAIT = 60.0
MIN_RATE_LIMIT_WAIT = 1.0  # a reset already past (clock skew) must not become a tight loop
MAX_RATE_LIMIT_WAIT = 15 * 60.0


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float = 5.0
    read: float = 20.0
    write: float = 20.0
    pool: float = 5.0

    def to_httpx(self) -> httpx.Timeout:
        return httpx.Timeout(connect=self.connect, read=self.read, write=self.write, pool=self.pool)


@dataclass(slots=True)
class RetryPolicy:
    """Retries for transient failures: ``max_retries`` after the first attempt."""

    max_retries: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int) -> float:
        """Full-jitter exponential backoff for retry number ``attempt`` (0-based)."""
        ceiling = min(self.backoff_max, self.backoff_base * (2**attempt))
        return self.rng.uniform(0, ceiling)


RETRY_STATUSES = frozenset({408, 500, 502, 503, 504})


def make_client(
    base_url: str = "",
    *,
    headers: Mapping[str, str] | None = None,
    auth: httpx.Auth | tuple[str, str] | None = None,
    transport: httpx.BaseTransport | None = None,
    timeouts: Timeouts | None = None,
) -> httpx.Client:
    """The one way connectors build an ``httpx.Client``."""
    merged = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    merged.update(headers or {})
    return httpx.Client(
        base_url=base_url,
        headers=merged,
        auth=auth,
        transport=transport,
        timeout=(timeouts or Timeouts()).to_httpx(),
        follow_redirects=True,
    )


def retry_after_seconds(response: httpx.Response, now: datetime | None = None) -> float:
    """How long the server asked us to wait, in seconds (between 1 s and 15 minutes)."""
    now = now or datetime.now(UTC)
    headers = response.headers
    wait: float | None = None
    if (value := headers.get("retry-after")) is not None:
        value = value.strip()
        try:
            wait = float(value)
        except ValueError:
            try:
                wait = (parsedate_to_datetime(value) - now).total_seconds()
            except (TypeError, ValueError, IndexError):
                wait = None
    if wait is None and (value := headers.get("x-rate-limit-reset")) is not None:
        wait = _reset_to_wait(value, now)
    if wait is None and (value := headers.get("x-ratelimit-reset")) is not None:
        wait = _reset_to_wait(value, now)
    if wait is None:
        wait = DEFAULT_RATE_LIMIT_WAIT
    return min(max(wait, MIN_RATE_LIMIT_WAIT), MAX_RATE_LIMIT_WAIT)


def _reset_to_wait(value: str, now: datetime) -> float | None:
    """A reset header is an epoch (X, GitHub) or an ISO-8601 time (Mastodon)."""
    value = value.strip()
    try:
        number = float(value)
    except ValueError:
        try:
            text = value[:-1] + "+00:00" if value.endswith("Z") else value
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return (moment - now).total_seconds()
    if number > 1_000_000_000:  # an epoch, not a number of seconds
        return number - now.timestamp()
    return number


def request(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    policy: RetryPolicy | None = None,
    allow: Collection[int] = (),
    **kwargs: Any,
) -> httpx.Response:
    """Send a request with the shared retry policy and map failures to connector errors."""
    policy = policy or RetryPolicy()
    attempt = 0
    while True:
        try:
            response = client.request(method, url, **kwargs)
        except httpx.TimeoutException as exc:
            failure = f"{method} {url}: timed out ({type(exc).__name__})"
        except httpx.TransportError as exc:
            failure = f"{method} {url}: {type(exc).__name__}: {exc}"
        else:
            status = response.status_code
            if status in allow or status < 400:
                return response
            if status == 429:
                raise RateLimited(
                    f"{method} {url}: rate limited (429)", retry_after_seconds(response)
                )
            if status in (401, 403):
                raise AuthFailed(f"{method} {url}: {status} {_short(response)}")
            if status not in RETRY_STATUSES:
                raise RequestRejected(
                    f"{method} {url}: {status} {_short(response)}",
                    status,
                    scrub(response.request, response.text),
                )
            failure = f"{method} {url}: {status} {_short(response)}"
        if attempt >= policy.max_retries:
            raise UpstreamError(f"{failure} (after {attempt + 1} attempts)")
        policy.sleep(policy.delay(attempt))
        attempt += 1


def json_body(response: httpx.Response) -> Any:
    """Decode a JSON body or raise ``ProtocolError`` saying what came back instead."""
    content_type = response.headers.get("content-type", "")
    if "json" not in content_type:
        raise ProtocolError(
            f"{response.request.method} {response.request.url}: expected JSON, "
            f"got {content_type or 'no content type'}"
        )
    body = response.content
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass  # orjson is strict (UTF-8 only, no lone surrogates): the standard parser decides
    try:
        return json.loads(body)
    except ValueError as exc:
        raise ProtocolError(
            f"{response.request.method} {response.request.url}: invalid JSON ({exc})"
        ) from None


def _short(response: httpx.Response, limit: int = 200) -> str:
    return excerpt(response, limit)


# Headers that carry credentials. An upstream's error page can echo the request back (a
# debugging proxy, a misconfigured gateway): what it echoes goes into error messages, run
# records and logs, so the credentials are masked out of every excerpt first.
SECRET_HEADERS = ("authorization", "proxy-authorization", "x-api-key", "api-key", "cookie")
MASK = "[secret]"


def credentials_of(request: httpx.Request) -> list[str]:
    """The secret strings a request carried: header values, tokens, Basic user:password."""
    found: set[str] = set()
    for name in SECRET_HEADERS:
        value = request.headers.get(name)
        if not value:
            continue
        found.add(value)
        scheme, _, credentials = value.partition(" ")
        if not credentials:
            continue
        found.add(credentials)
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credentials, validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                continue
            found.add(decoded)
            found.add(decoded.partition(":")[2])
    # Longest first, so a token inside a header value is not masked piecemeal.
    return sorted((secret for secret in found if len(secret) >= 6), key=len, reverse=True)


def scrub(request: httpx.Request, text: str) -> str:
    """``text`` with the request's credentials masked."""
    for secret in credentials_of(request):
        text = text.replace(secret, MASK)
    return text


def excerpt(response: httpx.Response, limit: int = 200) -> str:
    """The start of an error body for a message, on one line, credentials masked."""
    text = scrub(response.request, response.text).strip().replace("\n", " ")
    return text[:limit] + ("…" if len(text) > limit else "")

"""Freshdesk: tickets by ``updated_since``, oldest change first, with boundary dedupe.

``GET /api/v2/tickets?updated_since=T&order_by=updated_at&order_type=asc&per_page=100&page=N``
lists the tickets changed at or after ``T`` (inclusive), oldest change first. A ``Link``
header with ``rel="next"`` says another page exists. Freshdesk refuses pages past the
300th (400 "You cannot access tickets beyond the 300th page"; ``page_cap`` in the
configuration).

Page numbers over a set that changes while you read it skip records: when a ticket that
was on page 1 is updated, it moves to the end and every later ticket shifts one place
forward, so the first ticket of page 2 slides onto page 1, which was already read. The
connector therefore re-windows after every page whose newest ``updated_at`` moved past
the window start: the next request is page 1 of ``updated_since = <that updated_at>``
(inclusive, so a ticket sharing that second is not lost), and the ids already returned
at that second are kept in the cursor and skipped (boundary dedupe). This is the same
restart the 300-page cap needs, done at every page, so the cap is never reached in
practice. Page numbers are only walked while a whole page shares one ``updated_at``
(a bulk update); if even that reaches ``page_cap``, the connector moves one second on
and returns a ``Rejected`` entry naming the skipped second, so the gap is quarantined
and visible rather than silent.

Cursor (a JSON object)::

    {"updated_since": "2024-05-13T10:00:00Z",   the window start (inclusive)
     "page": 1,                                  the page to request next in that window
     "seen": [1001, 1002]}                       ids already returned at updated_since

``raw["andon"]``: ``{"status": str | None, "priority": str | None, "tags": [str],
"deleted": bool}`` — status and priority as names (``open``, ``pending``, ``resolved``,
``closed``; ``low`` .. ``urgent``), the numeric codes stay in ``raw``.

Rate limit: per minute by plan. A 429 becomes ``RateLimited`` (``Retry-After``); when a
response says ``X-RateLimit-Remaining: 0`` the next pull raises ``RateLimited`` before
sending anything.

Configuration::

    {"domain": "acme"} (acme.freshdesk.com) or {"base_url": "https://acme.freshdesk.com"}
    {"api_key_env": "ANDON_FRESHDESK_API_KEY"}                Basic API_KEY:X
    optional: "updated_since" (ISO-8601, first sync; default 1970-01-01), "per_page"
    (1..100, 100), "page_cap" (300), "include_description" (true: description_text)
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from connectors import http
from connectors.base import Author, Cursor, Page, Rejected, SourceItem, parse_time
from connectors.errors import (
    AuthFailed,
    BadCursor,
    ConfigError,
    ProtocolError,
    RateLimited,
    RequestRejected,
)
from connectors.records import Malformed, is_int, reject, time_field
from connectors.registry import register

TICKETS_PATH = "/api/v2/tickets"
DEFAULT_API_KEY_ENV = "ANDON_FRESHDESK_API_KEY"
DEFAULT_UPDATED_SINCE = "1970-01-01T00:00:00Z"
MAX_PER_PAGE = 100
DEFAULT_PAGE_CAP = 300
RATE_WINDOW = 60.0
STATUSES = {2: "open", 3: "pending", 4: "resolved", 5: "closed"}
PRIORITIES = {1: "low", 2: "medium", 3: "high", 4: "urgent"}


@register("freshdesk")
class FreshdeskConnector:
    """Pull tickets from Freshdesk, oldest change first."""

    kind = "freshdesk"

    def __init__(
        self,
        config: Mapping[str, Any],
        *,
        env: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.base_url = _base_url(config)
        self.api_key_env = str(config.get("api_key_env") or DEFAULT_API_KEY_ENV).strip()
        self.per_page = _int_option(config, "per_page", MAX_PER_PAGE)
        if not 1 <= self.per_page <= MAX_PER_PAGE:
            raise ConfigError(f"freshdesk: 'per_page' must be within 1..{MAX_PER_PAGE}")
        self.page_cap = _int_option(config, "page_cap", DEFAULT_PAGE_CAP)
        if self.page_cap < 1:
            raise ConfigError("freshdesk: 'page_cap' must be at least 1")
        since = config.get("updated_since", DEFAULT_UPDATED_SINCE)
        try:
            if not isinstance(since, str):
                raise ValueError(since)
            self.updated_since = parse_time(since)
        except ValueError:
            raise ConfigError("freshdesk: 'updated_since' must be an ISO-8601 time") from None
        include = config.get("include_description", True)
        if not isinstance(include, bool):
            raise ConfigError("freshdesk: 'include_description' must be true or false")
        self.include_description = include
        self._env: Mapping[str, str] = os.environ if env is None else env
        self._now = now or (lambda: datetime.now(UTC))
        self._policy = http.RetryPolicy() if sleep is None else http.RetryPolicy(sleep=sleep)
        self._client = http.make_client(self.base_url, transport=transport)
        self._blocked_until: float | None = None

    def __repr__(self) -> str:
        return f"FreshdeskConnector(base_url={self.base_url!r})"

    def check(self) -> None:
        """The smallest authenticated listing."""
        body = http.json_body(self._get({"per_page": "1"}))
        if not isinstance(body, list):
            raise ProtocolError(f"GET {TICKETS_PATH}: expected a JSON array")

    def pull(self, cursor: Cursor | None) -> Page:
        state = _State.load(cursor, self.updated_since)
        params = {
            "updated_since": _iso(state.updated_since),
            "order_by": "updated_at",
            "order_type": "asc",
            "per_page": str(self.per_page),
            "page": str(state.page),
        }
        if self.include_description:
            params["include"] = "description"
        response = self._get(params)
        body = http.json_body(response)
        if not isinstance(body, list):
            raise ProtocolError(f"GET {TICKETS_PATH}: expected a JSON array of tickets")
        has_next = "next" in response.links

        items: list[SourceItem] = []
        rejects: list[Rejected] = []
        page_times: list[tuple[datetime, int]] = []
        seen = set(state.seen)
        for index, ticket in enumerate(body):
            try:
                item, ticket_id, updated_at = self._item(ticket)
            except Malformed as exc:
                rejects.append(reject(ticket, str(exc), f"{TICKETS_PATH} [{index}]"))
                continue
            page_times.append((updated_at, ticket_id))
            if updated_at == state.updated_since and ticket_id in seen:
                continue  # returned already, at the window's boundary second
            items.append(item)

        next_state = self._advance(state, page_times, has_next, rejects)
        return Page(items=items, next_cursor=next_state.dump(), has_more=has_next, rejects=rejects)

    def _advance(
        self,
        state: _State,
        page_times: list[tuple[datetime, int]],
        has_next: bool,
        rejects: list[Rejected],
    ) -> _State:
        """Where the next request starts; everything before it has been returned."""
        if not page_times:
            return state if not has_next else self._next_page(state, [], rejects)
        newest = max(moment for moment, _ in page_times)
        at_newest = [ticket_id for moment, ticket_id in page_times if moment == newest]
        if newest > state.updated_since:
            return _State(updated_since=newest, page=1, seen=at_newest)
        # The whole page shares the window's second: walk the page numbers.
        if not has_next:
            return _State(state.updated_since, state.page, _union(state.seen, at_newest))
        return self._next_page(state, at_newest, rejects)

    def _next_page(self, state: _State, ids: list[int], rejects: list[Rejected]) -> _State:
        if state.page + 1 <= self.page_cap:
            return _State(state.updated_since, state.page + 1, _union(state.seen, ids))
        # More than page_cap pages of tickets changed in one second: the API will not
        # show the rest. Move one second on and quarantine a note of the gap.
        gap = {
            "updated_at": _iso(state.updated_since),
            "pages_read": state.page,
            "per_page": self.per_page,
        }
        rejects.append(
            Rejected(
                reason=(
                    f"freshdesk: more than {self.page_cap} pages of tickets share updated_at "
                    f"{_iso(state.updated_since)}; the rest of that second was skipped"
                ),
                payload=json.dumps(gap, sort_keys=True),
                location=f"{TICKETS_PATH} page {state.page + 1}",
            )
        )
        return _State(state.updated_since + timedelta(seconds=1), 1, [])

    def _item(self, ticket: Any) -> tuple[SourceItem, int, datetime]:
        if not isinstance(ticket, dict):
            raise Malformed("ticket is not a JSON object")
        ticket_id = ticket.get("id")
        if not is_int(ticket_id):
            raise Malformed("missing or invalid 'id'")
        created_at = time_field(ticket, "created_at")
        updated_at = time_field(ticket, "updated_at")
        subject = ticket.get("subject")
        text = ticket.get("description_text")
        requester = ticket.get("requester_id")
        status = ticket.get("status")
        priority = ticket.get("priority")
        tags = ticket.get("tags")
        raw = dict(ticket)
        raw["andon"] = {
            "status": _named(status, STATUSES),
            "priority": _named(priority, PRIORITIES),
            "tags": [tag for tag in tags if isinstance(tag, str)] if isinstance(tags, list) else [],
            "deleted": ticket.get("deleted") is True,
        }
        item = SourceItem(
            channel="freshdesk",
            kind="ticket",
            external_id=str(ticket_id),
            title=subject if isinstance(subject, str) and subject else None,
            text=text if isinstance(text, str) else "",
            created_at=created_at,
            updated_at=updated_at,
            author=Author(id=str(requester)) if is_int(requester) else Author(),
            url=f"{self.base_url}/a/tickets/{ticket_id}",
            thread_id=str(ticket_id),
            raw=raw,
        )
        return item, ticket_id, updated_at

    def _headers(self) -> dict[str, str]:
        key = self._env.get(self.api_key_env, "").strip()
        if not key:
            raise AuthFailed(f"freshdesk: environment variable {self.api_key_env} is not set")
        basic = base64.b64encode(f"{key}:X".encode()).decode("ascii")
        return {"Authorization": f"Basic {basic}"}

    def _get(self, params: Mapping[str, str]) -> httpx.Response:
        now = self._now().timestamp()
        if self._blocked_until is not None and now < self._blocked_until:
            raise RateLimited(
                "freshdesk: the per-minute API budget is used up", self._blocked_until - now
            )
        headers = self._headers()
        try:
            response = http.request(
                self._client, "GET", TICKETS_PATH, policy=self._policy, allow={400},
                params=params, headers=headers,
            )  # fmt: skip
        except RateLimited as exc:
            self._blocked_until = now + exc.retry_after
            raise
        if response.status_code == 400:
            detail = _error_text(response)
            if '"updated_since"' in response.text:
                raise BadCursor(f"freshdesk: updated_since refused: {detail}")
            raise RequestRejected(f"GET {TICKETS_PATH}: 400 {detail}", 400, response.text)
        if response.headers.get("x-ratelimit-remaining", "").strip() == "0":
            self._blocked_until = now + RATE_WINDOW
        return response


class _State:
    """The cursor, parsed."""

    __slots__ = ("page", "seen", "updated_since")

    def __init__(self, updated_since: datetime, page: int = 1, seen: list[int] | None = None):
        self.updated_since = updated_since
        self.page = page
        self.seen = seen or []

    @classmethod
    def load(cls, cursor: Cursor | None, default_since: datetime) -> _State:
        if cursor is None:
            return cls(default_since)
        if not isinstance(cursor, dict):
            raise BadCursor("freshdesk: the cursor must be a JSON object")
        unknown = set(cursor) - {"updated_since", "page", "seen"}
        if unknown:
            raise BadCursor(f"freshdesk: unknown cursor keys {sorted(unknown)}")
        since = cursor.get("updated_since")
        page = cursor.get("page", 1)
        seen = cursor.get("seen", [])
        try:
            updated_since = parse_time(since) if isinstance(since, str) else None
        except ValueError:
            updated_since = None
        if updated_since is None:
            raise BadCursor("freshdesk: cursor updated_since must be an ISO-8601 time")
        if not is_int(page) or page < 1:
            raise BadCursor("freshdesk: cursor page must be a positive integer")
        if not isinstance(seen, list) or not all(is_int(value) for value in seen):
            raise BadCursor("freshdesk: cursor seen must be a list of ticket ids")
        return cls(updated_since, page, list(seen))

    def dump(self) -> Cursor:
        return {"updated_since": _iso(self.updated_since), "page": self.page, "seen": self.seen}


def _union(first: list[int], second: list[int]) -> list[int]:
    return sorted(set(first) | set(second))


def _named(value: Any, names: Mapping[int, str]) -> str | None:
    if is_int(value):
        return names.get(value, str(value))
    return value if isinstance(value, str) else None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _error_text(response: httpx.Response) -> str:
    """Freshdesk's errors: ``{"description", "errors": [{"field", "message", "code"}]}``."""
    try:
        body = response.json()
    except ValueError:
        return http.excerpt(response)
    if not isinstance(body, dict):
        return str(body)[:200]
    parts = [str(body.get("description") or body.get("message") or "")]
    errors = body.get("errors")
    if isinstance(errors, list):
        for error in errors:
            if isinstance(error, dict):
                parts.append(f"{error.get('field')}: {error.get('message')}")
    return "; ".join(part for part in parts if part)


def _base_url(config: Mapping[str, Any]) -> str:
    base_url = str(config.get("base_url") or "").strip().rstrip("/")
    domain = str(config.get("domain") or "").strip().lower()
    if base_url:
        if not base_url.startswith(("https://", "http://")):
            raise ConfigError("freshdesk: 'base_url' must be an http(s) URL")
        return base_url
    if not domain or not domain.replace("-", "").replace(".", "").isalnum():
        raise ConfigError("freshdesk: set 'domain' (acme for acme.freshdesk.com) or 'base_url'")
    host = domain if "." in domain else f"{domain}.freshdesk.com"
    return f"https://{host}"


def _int_option(config: Mapping[str, Any], key: str, default: int) -> int:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConfigError(f"freshdesk: {key!r} must be an integer")
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"freshdesk: {key!r} must be an integer") from None

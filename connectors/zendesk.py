"""Zendesk Support: cursor-based incremental ticket export, plus requester follow-ups.

The export (``GET /api/v2/incremental/tickets/cursor.json``) answers oldest first. The first
call sends ``start_time`` (Unix seconds, at least a minute in the past: Zendesk leaves out
the last minute and refuses a start_time that is too recent); every later call sends the
``after_cursor`` of the previous page, until ``end_of_stream``. The cursor is persisted
after every page and the next sync resumes from it — it never goes back to start_time.

Each ticket is one item (``kind="ticket"``, ``title`` = subject, ``text`` = description,
``thread_id`` = ticket id). Deleted tickets come through the export with
``status: "deleted"`` and are kept, marked in ``raw["andon"]``. With ``"comments": true``
the public comments the requester wrote after opening the ticket become ``kind="message"``
items in the ticket's thread (``external_id`` ``"<ticket>-c<comment>"``). Comment requests
are queued in the cursor (``pending``) and drained by later pulls, so one pull stays a
handful of requests and nothing is lost if the process stops in between.

Cursor (a JSON object)::

    {"start_time": 1715594400}               before the first page (no after_cursor yet)
    {"after_cursor": "MTcxNTU5NDQwMC4wfHwzNTQzNnw="}
    {"after_cursor": "MTcx...", "end_of_stream": false,
     "pending": [{"ticket": 35436,            tickets whose comments are still to be read,
                  "requester": 20978392,      with the requester to keep comments of and
                  "after": null}]}            the comments page cursor (null: first page)

``raw["andon"]`` on a ticket: ``{"status": str | None, "priority": str | None,
"tags": [str], "deleted": bool}``; on a follow-up message: ``{"ticket_id": int,
"comment_id": int, "public": true, "deleted": false}``.

Rate limit: the export allows 10 requests a minute (``requests_per_minute``; 30 with the
High Volume add-on). The connector counts every request it sends to the export and to the
comments endpoint (retries included) over a sliding minute and raises ``RateLimited``
*before* sending one that would exceed the budget, so the runner waits instead of
collecting 429s. A real 429 is honoured too: until its ``Retry-After`` has passed the
connector refuses to send.

Configuration::

    {"subdomain": "acme"}  or  {"base_url": "https://acme.zendesk.com"}
    {"email": "ops@acme.com", "token_env": "ANDON_ZENDESK_TOKEN"}   Basic email/token:TOKEN
    {"oauth_token_env": "ANDON_ZENDESK_OAUTH"}                      Bearer
    optional: "start_time" (ISO-8601 or epoch, default 0), "per_page" (1..1000, 1000),
    "include_users" (true), "comments" (false), "requests_per_minute" (10)
"""

from __future__ import annotations

import base64
import os
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from connectors import http
from connectors.base import Author, Cursor, Page, Rejected, SourceItem, parse_time
from connectors.errors import (
    AuthFailed,
    BadCursor,
    ConfigError,
    ConnectorError,
    ProtocolError,
    RateLimited,
    RequestRejected,
)
from connectors.records import Malformed, is_int, reject, time_field
from connectors.registry import register

EXPORT_PATH = "/api/v2/incremental/tickets/cursor.json"
ME_PATH = "/api/v2/users/me.json"
MAX_PER_PAGE = 1000
COMMENTS_PER_PAGE = 100
DEFAULT_REQUESTS_PER_MINUTE = 10
RATE_WINDOW = 60.0
# Zendesk leaves out the last minute and refuses a start_time inside it; one more second
# covers the time the request takes to arrive.
START_TIME_LAG = 61


@register("zendesk")
class ZendeskConnector:
    """Pull tickets (and optionally requester follow-ups) from Zendesk's ticket export."""

    kind = "zendesk"

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
        self.email = str(config.get("email") or "").strip()
        self.token_env = str(config.get("token_env") or "").strip()
        self.oauth_token_env = str(config.get("oauth_token_env") or "").strip()
        if self.oauth_token_env and self.token_env:
            raise ConfigError("zendesk: set either 'token_env' or 'oauth_token_env', not both")
        if not self.oauth_token_env and not (self.email and self.token_env):
            raise ConfigError(
                "zendesk: set 'email' and 'token_env' (API token) or 'oauth_token_env'"
            )
        self.start_time = _epoch_option(config.get("start_time", 0))
        self.per_page = _int_option(config, "per_page", MAX_PER_PAGE)
        if not 1 <= self.per_page <= MAX_PER_PAGE:
            raise ConfigError(f"zendesk: 'per_page' must be within 1..{MAX_PER_PAGE}")
        self.include_users = _bool_option(config, "include_users", True)
        self.comments = _bool_option(config, "comments", False)
        self.requests_per_minute = _int_option(
            config, "requests_per_minute", DEFAULT_REQUESTS_PER_MINUTE
        )
        if self.requests_per_minute < 1:
            raise ConfigError("zendesk: 'requests_per_minute' must be at least 1")
        self._env: Mapping[str, str] = os.environ if env is None else env
        self._now = now or (lambda: datetime.now(UTC))
        self._policy = http.RetryPolicy() if sleep is None else http.RetryPolicy(sleep=sleep)
        self._budget = _RequestBudget(self.requests_per_minute, self._seconds)
        self._blocked_until: float | None = None
        self._client = http.make_client(self.base_url, transport=transport)
        # Every request that really leaves (retries included) is counted here.
        self._client.event_hooks = {"request": [self._spend], "response": []}

    def __repr__(self) -> str:
        auth = "oauth" if self.oauth_token_env else "token"
        return f"ZendeskConnector(base_url={self.base_url!r}, auth={auth!r})"

    # -- the contract ------------------------------------------------------------------

    def check(self) -> None:
        """Ask who we are: Zendesk answers an anonymous user when credentials are absent."""
        body = http.json_body(self._get(ME_PATH, {}))
        user = body.get("user") if isinstance(body, dict) else None
        if not isinstance(user, dict):
            raise ProtocolError(f"GET {ME_PATH}: expected an object with 'user'")
        if user.get("id") is None:
            raise AuthFailed("zendesk: the credentials were not accepted (anonymous user)")

    def pull(self, cursor: Cursor | None) -> Page:
        state = _State.load(cursor, self.start_time)
        if self._blocked_until is not None:
            wait = self._blocked_until - self._seconds()
            if wait > 0:
                raise RateLimited("zendesk: waiting out an earlier 429", wait)
            self._blocked_until = None
        if state.pending and self.comments:
            return self._pull_comments(state)
        return self._pull_tickets(state)

    # -- tickets -----------------------------------------------------------------------

    def _pull_tickets(self, state: _State) -> Page:
        params: dict[str, str] = {"per_page": str(self.per_page)}
        if self.include_users:
            params["include"] = "users"
        if state.after_cursor is not None:
            params["cursor"] = state.after_cursor
        else:
            latest = int(self._seconds()) - START_TIME_LAG
            params["start_time"] = str(max(0, min(state.start_time or 0, latest)))
        response = self._get(EXPORT_PATH, params, allow={400, 422})
        if response.status_code in (400, 422):
            detail = _error_text(response)
            if state.after_cursor is not None:
                raise BadCursor(f"zendesk: the export refused the cursor: {detail}")
            raise RequestRejected(
                f"GET {EXPORT_PATH}: {response.status_code} {detail}",
                response.status_code,
                response.text,
            )
        body = http.json_body(response)
        if not isinstance(body, dict):
            raise ProtocolError(f"GET {EXPORT_PATH}: expected a JSON object")
        tickets = body.get("tickets")
        end_of_stream = body.get("end_of_stream")
        after_cursor = body.get("after_cursor")
        if not isinstance(tickets, list) or not isinstance(end_of_stream, bool):
            raise ProtocolError(f"GET {EXPORT_PATH}: 'tickets' list or 'end_of_stream' missing")
        if after_cursor is not None and (not isinstance(after_cursor, str) or not after_cursor):
            raise ProtocolError(f"GET {EXPORT_PATH}: 'after_cursor' is not a string")
        if after_cursor is None and (tickets or not end_of_stream):
            raise ProtocolError(f"GET {EXPORT_PATH}: a page without 'after_cursor'")
        if not end_of_stream and after_cursor == state.after_cursor:
            raise ProtocolError(f"GET {EXPORT_PATH}: after_cursor repeated; refusing to loop")

        users = _users_by_id(body.get("users"))
        items: list[SourceItem] = []
        rejects: list[Rejected] = []
        pending: list[_Pending] = []
        for index, ticket in enumerate(tickets):
            try:
                item = self._ticket_item(ticket, users)
            except Malformed as exc:
                rejects.append(reject(ticket, str(exc), f"{EXPORT_PATH} tickets[{index}]"))
                continue
            items.append(item)
            if self.comments and _wants_comments(ticket):
                requester = ticket.get("requester_id")
                pending.append(
                    _Pending(
                        ticket=ticket["id"],
                        requester=requester if is_int(requester) else None,
                        after=None,
                    )
                )
        if after_cursor is None:  # an empty first export: stay on start_time
            next_state = _State(start_time=state.start_time, after_cursor=state.after_cursor)
        else:
            next_state = _State(after_cursor=after_cursor)
        next_state.pending = pending
        next_state.end_of_stream = end_of_stream
        return Page(
            items=items,
            next_cursor=next_state.dump(),
            has_more=bool(pending) or not end_of_stream,
            rejects=rejects,
        )

    def _ticket_item(self, ticket: Any, users: Mapping[int, Mapping[str, Any]]) -> SourceItem:
        if not isinstance(ticket, dict):
            raise Malformed("ticket is not a JSON object")
        ticket_id = ticket.get("id")
        if not is_int(ticket_id):
            raise Malformed("missing or invalid 'id'")
        created_at = time_field(ticket, "created_at")
        updated_at = _optional_time(ticket, "updated_at")
        subject = ticket.get("subject")
        description = ticket.get("description")
        status = ticket.get("status")
        priority = ticket.get("priority")
        tags = ticket.get("tags")
        comment_count = ticket.get("comment_count")
        metrics = {"comments": comment_count} if is_int(comment_count) else {}
        raw = dict(ticket)
        raw["andon"] = {
            "status": status if isinstance(status, str) else None,
            "priority": priority if isinstance(priority, str) else None,
            "tags": [tag for tag in tags if isinstance(tag, str)] if isinstance(tags, list) else [],
            "deleted": status == "deleted",
        }
        return SourceItem(
            channel="zendesk",
            kind="ticket",
            external_id=str(ticket_id),
            title=subject if isinstance(subject, str) and subject else None,
            text=description if isinstance(description, str) else "",
            created_at=created_at,
            updated_at=updated_at,
            author=_author(ticket.get("requester_id"), users),
            url=self._ticket_url(ticket_id),
            metrics=metrics,
            thread_id=str(ticket_id),
            raw=raw,
        )

    # -- requester follow-ups ----------------------------------------------------------

    def _pull_comments(self, state: _State) -> Page:
        pending = list(state.pending)
        items: list[SourceItem] = []
        rejects: list[Rejected] = []
        sent = 0
        while pending:
            if sent and self._budget.wait() > 0:
                break  # keep what we have; the next pull raises RateLimited before sending
            entry = pending[0]
            path = f"/api/v2/tickets/{entry.ticket}/comments.json"
            params = {"page[size]": str(COMMENTS_PER_PAGE), "sort_order": "asc"}
            if self.include_users:
                params["include"] = "users"
            if entry.after is not None:
                params["page[after]"] = entry.after
            try:
                response = self._get(path, params, allow={404})
            except ConnectorError:
                if not sent:
                    raise
                break  # return the follow-ups already read; the failure resurfaces next pull
            sent += 1
            if response.status_code == 404:  # the ticket is gone: nothing left to read
                pending.pop(0)
                continue
            more_after = self._comment_page(entry, path, response, items, rejects)
            if more_after is None:
                pending.pop(0)
            else:
                pending[0] = _Pending(entry.ticket, entry.requester, more_after)
        next_state = _State(
            start_time=state.start_time,
            after_cursor=state.after_cursor,
            pending=pending,
            end_of_stream=state.end_of_stream,
        )
        return Page(
            items=items,
            next_cursor=next_state.dump(),
            has_more=bool(pending) or not state.end_of_stream,
            rejects=rejects,
        )

    def _comment_page(
        self,
        entry: _Pending,
        path: str,
        response: httpx.Response,
        items: list[SourceItem],
        rejects: list[Rejected],
    ) -> str | None:
        """Turn one comments page into items; return the next page's cursor, if any."""
        body = http.json_body(response)
        comments = body.get("comments") if isinstance(body, dict) else None
        if not isinstance(comments, list):
            raise ProtocolError(f"GET {path}: 'comments' list missing")
        users = _users_by_id(body.get("users"))
        for index, comment in enumerate(comments):
            if entry.after is None and index == 0:
                continue  # the first comment is the ticket's description
            try:
                item = self._comment_item(entry, comment, users)
            except Malformed as exc:
                rejects.append(reject(comment, str(exc), f"{path} comments[{index}]"))
                continue
            if item is not None:
                items.append(item)
        meta = body.get("meta")
        if isinstance(meta, dict) and meta.get("has_more") is True:
            after = meta.get("after_cursor")
            if not isinstance(after, str) or not after or after == entry.after:
                raise ProtocolError(f"GET {path}: 'meta.after_cursor' missing or repeated")
            return after
        return None

    def _comment_item(
        self, entry: _Pending, comment: Any, users: Mapping[int, Mapping[str, Any]]
    ) -> SourceItem | None:
        if not isinstance(comment, dict):
            raise Malformed("comment is not a JSON object")
        comment_id = comment.get("id")
        if not is_int(comment_id):
            raise Malformed("missing or invalid comment 'id'")
        if comment.get("public") is not True:
            return None  # an internal note
        author_id = comment.get("author_id")
        if entry.requester is None or author_id != entry.requester:
            return None  # an agent's reply or a CC's remark: not the customer's voice
        created_at = time_field(comment, "created_at")
        text = comment.get("plain_body")
        if not isinstance(text, str):
            text = comment.get("body")
        if not isinstance(text, str):
            raise Malformed("comment has no 'plain_body' or 'body'")
        raw = dict(comment)
        raw["andon"] = {
            "ticket_id": entry.ticket,
            "comment_id": comment_id,
            "public": True,
            "deleted": False,
        }
        return SourceItem(
            channel="zendesk",
            kind="message",
            external_id=f"{entry.ticket}-c{comment_id}",
            text=text,
            created_at=created_at,
            author=_author(author_id, users),
            url=self._ticket_url(entry.ticket),
            thread_id=str(entry.ticket),
            raw=raw,
        )

    # -- plumbing ----------------------------------------------------------------------

    def _ticket_url(self, ticket_id: int) -> str:
        return f"{self.base_url}/agent/tickets/{ticket_id}"

    def _seconds(self) -> float:
        return self._now().timestamp()

    def _headers(self) -> dict[str, str]:
        if self.oauth_token_env:
            token = self._env.get(self.oauth_token_env, "").strip()
            if not token:
                raise AuthFailed(f"zendesk: environment variable {self.oauth_token_env} is not set")
            return {"Authorization": f"Bearer {token}"}
        token = self._env.get(self.token_env, "").strip()
        if not token:
            raise AuthFailed(f"zendesk: environment variable {self.token_env} is not set")
        basic = base64.b64encode(f"{self.email}/token:{token}".encode()).decode("ascii")
        return {"Authorization": f"Basic {basic}"}

    def _get(
        self, path: str, params: Mapping[str, str], allow: set[int] | None = None
    ) -> httpx.Response:
        try:
            return http.request(
                self._client, "GET", path, policy=self._policy, allow=allow or set(),
                params=params, headers=self._headers(),
            )  # fmt: skip
        except RateLimited as exc:
            self._blocked_until = self._seconds() + exc.retry_after
            raise

    def _spend(self, request: httpx.Request) -> None:
        path = request.url.path
        if "/incremental/" in path or path.endswith(("/comments.json", "/comments")):
            self._budget.spend()


class _RequestBudget:
    """At most ``limit`` requests in any ``RATE_WINDOW`` seconds, on the injected clock."""

    def __init__(self, limit: int, clock: Callable[[], float]) -> None:
        self.limit = limit
        self.clock = clock
        self._sent: deque[float] = deque()

    def wait(self) -> float:
        """Seconds until one more request fits (0 when it fits now)."""
        now = self.clock()
        while self._sent and now - self._sent[0] >= RATE_WINDOW:
            self._sent.popleft()
        if len(self._sent) < self.limit:
            return 0.0
        return RATE_WINDOW - (now - self._sent[0])

    def spend(self) -> None:
        wait = self.wait()
        if wait > 0:
            raise RateLimited(
                f"zendesk: {self.limit} export requests per minute used; "
                f"next one allowed in {wait:.0f}s",
                wait,
            )
        self._sent.append(self.clock())


@dataclass(frozen=True, slots=True)
class _Pending:
    ticket: int
    requester: int | None
    after: str | None

    def dump(self) -> dict[str, Any]:
        return {"ticket": self.ticket, "requester": self.requester, "after": self.after}


class _State:
    """The cursor, parsed."""

    __slots__ = ("after_cursor", "end_of_stream", "pending", "start_time")

    def __init__(
        self,
        *,
        start_time: int | None = None,
        after_cursor: str | None = None,
        pending: list[_Pending] | None = None,
        end_of_stream: bool = True,
    ) -> None:
        self.start_time = start_time
        self.after_cursor = after_cursor
        self.pending = pending or []
        self.end_of_stream = end_of_stream

    @classmethod
    def load(cls, cursor: Cursor | None, default_start: int = 0) -> _State:
        if cursor is None:
            return cls(start_time=default_start)
        if not isinstance(cursor, dict):
            raise BadCursor("zendesk: the cursor must be a JSON object")
        unknown = set(cursor) - {"start_time", "after_cursor", "pending", "end_of_stream"}
        if unknown:
            raise BadCursor(f"zendesk: unknown cursor keys {sorted(unknown)}")
        start_time = cursor.get("start_time")
        after_cursor = cursor.get("after_cursor")
        end_of_stream = cursor.get("end_of_stream", True)
        raw_pending = cursor.get("pending", [])
        if start_time is not None and not is_int(start_time):
            raise BadCursor("zendesk: cursor start_time must be an integer (Unix seconds)")
        if after_cursor is not None and (not isinstance(after_cursor, str) or not after_cursor):
            raise BadCursor("zendesk: cursor after_cursor must be a non-empty string")
        if start_time is None and after_cursor is None:
            raise BadCursor("zendesk: the cursor needs 'start_time' or 'after_cursor'")
        if not isinstance(end_of_stream, bool) or not isinstance(raw_pending, list):
            raise BadCursor("zendesk: cursor end_of_stream must be a bool and pending a list")
        pending: list[_Pending] = []
        for entry in raw_pending:
            if (
                not isinstance(entry, dict)
                or not is_int(entry.get("ticket"))
                or not (entry.get("requester") is None or is_int(entry.get("requester")))
                or not (entry.get("after") is None or isinstance(entry.get("after"), str))
            ):
                raise BadCursor("zendesk: malformed cursor 'pending' entry")
            pending.append(_Pending(entry["ticket"], entry.get("requester"), entry.get("after")))
        return cls(
            start_time=start_time,
            after_cursor=after_cursor,
            pending=pending,
            end_of_stream=end_of_stream,
        )

    def dump(self) -> Cursor:
        cursor: Cursor = {}
        if self.after_cursor is not None:
            cursor["after_cursor"] = self.after_cursor
        else:
            cursor["start_time"] = self.start_time or 0
        if self.pending:
            cursor["pending"] = [entry.dump() for entry in self.pending]
            cursor["end_of_stream"] = self.end_of_stream
        return cursor


def _wants_comments(ticket: Mapping[str, Any]) -> bool:
    if ticket.get("status") == "deleted":
        return False  # its comments are gone with it
    count = ticket.get("comment_count")
    return not (is_int(count) and count <= 1)  # only the description: nothing to add


def _author(author_id: Any, users: Mapping[int, Mapping[str, Any]]) -> Author:
    if not is_int(author_id):
        return Author()
    user = users.get(author_id, {})
    name = user.get("name")
    email = user.get("email")
    return Author(
        id=str(author_id),
        display_name=name if isinstance(name, str) and name else None,
        email=email if isinstance(email, str) and email else None,
    )


def _users_by_id(users: Any) -> dict[int, Mapping[str, Any]]:
    found: dict[int, Mapping[str, Any]] = {}
    if isinstance(users, list):
        for user in users:
            if isinstance(user, dict) and is_int(user.get("id")):
                found[user["id"]] = user
    return found


def _optional_time(record: Mapping[str, Any], name: str) -> datetime | None:
    if record.get(name) is None:
        return None
    return time_field(record, name)


def _error_text(response: httpx.Response) -> str:
    """Zendesk's error body: ``{"error": ..., "description": ...}`` or a nested object."""
    try:
        body = response.json()
    except ValueError:
        return http.excerpt(response)
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return str(error.get("message") or error.get("title") or error)
        description = body.get("description")
        return f"{error}: {description}" if description else str(error or body)
    return str(body)[:200]


def _base_url(config: Mapping[str, Any]) -> str:
    base_url = str(config.get("base_url") or "").strip().rstrip("/")
    subdomain = str(config.get("subdomain") or "").strip()
    if base_url:
        if not base_url.startswith(("https://", "http://")):
            raise ConfigError("zendesk: 'base_url' must be an http(s) URL")
        return base_url
    if not subdomain or not subdomain.replace("-", "").isalnum():
        raise ConfigError("zendesk: set 'subdomain' (acme for acme.zendesk.com) or 'base_url'")
    return f"https://{subdomain}.zendesk.com"


def _epoch_option(value: Any) -> int:
    if isinstance(value, bool):
        raise ConfigError("zendesk: 'start_time' must be an ISO-8601 time or Unix seconds")
    if isinstance(value, int | float):
        return max(0, int(value))
    if isinstance(value, str):
        try:
            return max(0, int(parse_time(value).timestamp()))
        except ValueError:
            pass
    raise ConfigError("zendesk: 'start_time' must be an ISO-8601 time or Unix seconds")


def _int_option(config: Mapping[str, Any], key: str, default: int) -> int:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConfigError(f"zendesk: {key!r} must be an integer")
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"zendesk: {key!r} must be an integer") from None


def _bool_option(config: Mapping[str, Any], key: str, default: bool) -> bool:
    value = config.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"zendesk: {key!r} must be true or false")
    return value

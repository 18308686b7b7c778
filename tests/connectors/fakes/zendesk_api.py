"""A local Zendesk Support account: cursor-based incremental ticket export and comments.

What it honours (see reference/connectors.md §4.1):

* ``GET /api/v2/incremental/tickets/cursor.json`` with ``start_time`` (Unix seconds) on the
  first call and ``cursor`` afterwards; ``per_page`` (≤ 1000, default 1000) and
  ``include=users`` (side-loads requesters, submitters and assignees). Answers oldest
  change first: ``tickets``, ``after_cursor``/``after_url``, ``before_cursor``/
  ``before_url``, ``end_of_stream``. Every write moves a ticket to the end of the stream
  (its ``generated_timestamp`` and ``updated_at`` change), so a ticket shows once, in its
  latest state. Changes made in the last minute are left out, and a ``start_time`` less
  than a minute old (or in the future) is refused with 400 ``InvalidValue``; an unknown
  cursor gets 400 ``InvalidPaginationParameter``.
* Deleted tickets stay in the export with ``status: "deleted"``.
* The export allows ``export_limit`` requests per sliding minute (10, as Zendesk), then
  429 with ``Retry-After``; ``rate_limit_next()`` forces one 429.
* ``GET /api/v2/tickets/{id}/comments(.json)`` with cursor paging (``page[size]`` ≤ 100,
  ``page[after]``), ``meta.has_more``/``after_cursor``, ``links.next``, ``include=users``;
  404 ``RecordNotFound`` for unknown or deleted tickets. The first comment is the
  description.
* ``GET /api/v2/users/me.json``: the authenticated user, or Zendesk's anonymous user when
  no credentials were sent.
* Auth: Basic ``{email}/token:{token}`` or ``Bearer {oauth_token}``; anything else gets
  401 ``{"error": "Couldn't authenticate you"}``.

Time is the fake's own clock (``now``, moved with ``advance``); connectors under test read
the same clock. Writes advance it by one second so every change has its own timestamp.
"""

from __future__ import annotations

import base64
import itertools
import math
import re
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from connectors.zendesk import ZendeskConnector
from tests.connectors.contract import ContractCase, ContractRig
from tests.connectors.fakes import Faults, json_response

SUBDOMAIN = "acme"
BASE_URL = f"https://{SUBDOMAIN}.zendesk.com"
EMAIL = "ops@acme.example"
TOKEN = "zd-api-token-9fQ2xL7"
OAUTH_TOKEN = "zd-oauth-7Hc1pV3"
TOKEN_ENV = "ANDON_ZENDESK_TOKEN"
OAUTH_TOKEN_ENV = "ANDON_ZENDESK_OAUTH"
EXPORT_PATH = "/api/v2/incremental/tickets/cursor.json"
EXPORT_LAG = 60
START = datetime(2024, 5, 13, 9, 0, tzinfo=UTC)
COMMENTS_PATH = re.compile(r"^/api/v2/tickets/(\d+)/comments(?:\.json)?$")


def zd_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _encode(position: tuple[int, int]) -> str:
    return base64.b64encode(f"{position[0]}.0||{position[1]}|".encode()).decode()


def _decode(cursor: str) -> tuple[int, int] | None:
    try:
        text = base64.b64decode(cursor.encode(), validate=True).decode()
        stamp, rest = text.split(".0||", 1)
        return int(stamp), int(rest.rstrip("|"))
    except (ValueError, UnicodeDecodeError):
        return None


class FakeZendeskApi:
    """In-memory tickets, users and comments behind ``httpx.MockTransport``."""

    def __init__(
        self,
        *,
        email: str = EMAIL,
        token: str = TOKEN,
        oauth_token: str = OAUTH_TOKEN,
        export_limit: int = 10,
        start: datetime = START,
    ) -> None:
        self.email = email
        self.token = token
        self.oauth_token = oauth_token
        self.export_limit = export_limit
        self.now = start
        self.tickets: dict[int, dict[str, Any]] = {}
        self.users: dict[int, dict[str, Any]] = {}
        self.comments: dict[int, list[dict[str, Any]]] = {}
        # The export stream: key -> (generated_timestamp, sequence, payload or ticket id).
        self.stream: dict[str, tuple[int, int, Any]] = {}
        self.faults = Faults()
        self.requests: list[httpx.Request] = []
        self._export_times: deque[datetime] = deque()
        self._forced_429: list[int] = []
        self._sequence = itertools.count(1)
        self._ticket_ids = itertools.count(35436)
        self._user_ids = itertools.count(20978392)
        self._comment_ids = itertools.count(900001)
        self.agent = self.add_user("Ada Agent", "ada@acme.example", role="agent")

    # -- clock and seeding -------------------------------------------------------------

    def clock(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def add_user(self, name: str, email: str, *, role: str = "end-user") -> dict[str, Any]:
        user: dict[str, Any] = {
            "id": next(self._user_ids),
            "name": name,
            "email": email,
            "role": role,
            "created_at": zd_time(self.now),
        }
        self.users[user["id"]] = user
        return user

    def add_ticket(
        self,
        subject: str,
        description: str,
        *,
        requester: dict[str, Any] | None = None,
        status: str = "new",
        priority: str | None = "normal",
        tags: tuple[str, ...] = (),
        channel: str = "web",
    ) -> dict[str, Any]:
        """A new ticket whose first comment is its description; the clock moves 1 s."""
        requester = requester or self.add_user("Riley Requester", f"riley{len(self.users)}@x.io")
        ticket_id = next(self._ticket_ids)
        ticket: dict[str, Any] = {
            "id": ticket_id,
            "url": f"{BASE_URL}/api/v2/tickets/{ticket_id}.json",
            "external_id": None,
            "via": {"channel": channel, "source": {"from": {}, "to": {}, "rel": None}},
            "created_at": zd_time(self.now),
            "updated_at": zd_time(self.now),
            "type": None,
            "subject": subject,
            "raw_subject": subject,
            "description": description,
            "priority": priority,
            "status": status,
            "requester_id": requester["id"],
            "submitter_id": requester["id"],
            "assignee_id": self.agent["id"],
            "organization_id": None,
            "group_id": 360000001,
            "tags": list(tags),
            "custom_fields": [],
            "satisfaction_rating": None,
            "is_public": True,
            "collaborator_ids": [],
            "followup_ids": [],
            "generated_timestamp": int(self.now.timestamp()),
        }
        self.tickets[ticket_id] = ticket
        self.comments[ticket_id] = []
        self._comment(ticket_id, requester["id"], description, public=True)
        self._touch(ticket_id)
        return ticket

    def add_comment(
        self, ticket_id: int, body: str, *, author_id: int | None = None, public: bool = True
    ) -> dict[str, Any]:
        """A comment (by the requester unless ``author_id``); the ticket is updated."""
        ticket = self.tickets[ticket_id]
        comment = self._comment(ticket_id, author_id or ticket["requester_id"], body, public)
        self._touch(ticket_id)
        return comment

    def update_ticket(self, ticket_id: int, **changes: Any) -> dict[str, Any]:
        ticket = self.tickets[ticket_id]
        ticket.update(changes)
        self._touch(ticket_id)
        return ticket

    def delete_ticket(self, ticket_id: int) -> dict[str, Any]:
        return self.update_ticket(ticket_id, status="deleted")

    def add_raw(self, record: Any) -> None:
        """A record as it would come over the wire, e.g. malformed; the clock moves 1 s."""
        key = f"raw-{next(self._sequence)}"
        self.stream[key] = (int(self.now.timestamp()), next(self._sequence), record)
        self.advance(1)

    def rate_limit_next(self, retry_after: int = 37) -> None:
        self._forced_429.append(retry_after)

    def _comment(self, ticket_id: int, author_id: int, body: str, public: bool) -> dict[str, Any]:
        comment = {
            "id": next(self._comment_ids),
            "type": "Comment",
            "author_id": author_id,
            "body": body,
            "html_body": f'<div class="zd-comment"><p>{body}</p></div>',
            "plain_body": body,
            "public": public,
            "attachments": [],
            "audit_id": next(self._comment_ids) + 5_000_000,
            "via": {"channel": "web", "source": {"from": {}, "to": {}, "rel": None}},
            "metadata": {"system": {"client": "Mozilla/5.0", "ip_address": "192.0.2.7"}},
            "created_at": zd_time(self.now),
        }
        self.comments[ticket_id].append(comment)
        return comment

    def _touch(self, ticket_id: int) -> None:
        ticket = self.tickets[ticket_id]
        ticket["updated_at"] = zd_time(self.now)
        ticket["generated_timestamp"] = int(self.now.timestamp())
        self.stream[f"ticket-{ticket_id}"] = (
            ticket["generated_timestamp"],
            next(self._sequence),
            ticket_id,
        )
        self.advance(1)

    # -- HTTP --------------------------------------------------------------------------

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        identity = self._authenticate(request)
        if identity == "refused":
            return json_response(401, {"error": "Couldn't authenticate you"})
        if path == "/api/v2/users/me.json":
            return self._me(identity)
        if identity == "anonymous":
            return json_response(401, {"error": "Couldn't authenticate you"})
        fault = self.faults.take(request, {"error": "InternalError", "description": "Oops"})
        if fault is not None:
            return fault
        if path == EXPORT_PATH:
            return self._export(request)
        match = COMMENTS_PATH.match(path)
        if match:
            return self._comments(request, int(match.group(1)))
        return json_response(404, {"error": "InvalidEndpoint", "description": "Not found"})

    def _authenticate(self, request: httpx.Request) -> str:
        header = request.headers.get("authorization")
        if header is None:
            return "anonymous"
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            return "oauth" if value == self.oauth_token else "refused"
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(value).decode()
            except (ValueError, UnicodeDecodeError):
                return "refused"
            if decoded == f"{self.email}/token:{self.token}":
                return "token"
        return "refused"

    def _me(self, identity: str) -> httpx.Response:
        if identity == "anonymous":
            user = {"id": None, "name": "Anonymous user", "email": "invalid@example.com"}
        else:
            user = {"id": self.agent["id"], "name": "Ops", "email": self.email, "role": "admin"}
        return json_response(200, {"user": user})

    def _export(self, request: httpx.Request) -> httpx.Response:
        window_start = self.now - timedelta(minutes=1)
        while self._export_times and self._export_times[0] <= window_start:
            self._export_times.popleft()
        if self._forced_429:
            return self._too_many(self._forced_429.pop(0))
        if len(self._export_times) >= self.export_limit:
            wait = (self._export_times[0] - window_start).total_seconds()
            return self._too_many(max(1, math.ceil(wait)))
        self._export_times.append(self.now)

        params = request.url.params
        try:
            per_page = int(params.get("per_page", "1000"))
        except ValueError:
            per_page = 0
        if not 1 <= per_page <= 1000:
            return json_response(
                400, {"error": "InvalidPaginationParameter", "description": "per_page 1..1000"}
            )
        horizon = int(self.now.timestamp()) - EXPORT_LAG
        if "cursor" in params:
            position = _decode(params["cursor"])
            if position is None:
                return json_response(
                    400,
                    {"error": "InvalidPaginationParameter", "description": "Invalid cursor"},
                )
        elif "start_time" in params:
            try:
                start_time = int(params["start_time"])
            except ValueError:
                return json_response(
                    400, {"error": "InvalidValue", "description": "start_time must be an integer"}
                )
            if start_time > horizon:
                return json_response(
                    400,
                    {
                        "error": "InvalidValue",
                        "description": "Too recent start_time. Use a start_time older than "
                        "1 minute.",
                    },
                )
            position = (start_time, -1)
        else:
            return json_response(
                400,
                {"error": "InvalidPaginationParameter", "description": "start_time is required"},
            )

        eligible = sorted(
            (stamp, sequence, value)
            for stamp, sequence, value in self.stream.values()
            if (stamp, sequence) > position and stamp <= horizon
        )
        chosen = eligible[:per_page]
        if chosen:
            position = (chosen[-1][0], chosen[-1][1])
        after = _encode(position)
        tickets = [
            dict(self.tickets[value]) if isinstance(value, int) else value for _, _, value in chosen
        ]
        body: dict[str, Any] = {
            "tickets": tickets,
            "after_url": f"{BASE_URL}{EXPORT_PATH}?cursor={after}",
            "after_cursor": after,
            "before_url": None,
            "before_cursor": None,
            "end_of_stream": len(eligible) <= per_page,
        }
        if "users" in params.get("include", "").split(","):
            body["users"] = self._sideload(tickets)
        return json_response(
            200,
            body,
            {
                "X-Rate-Limit": str(self.export_limit),
                "X-Rate-Limit-Remaining": str(self.export_limit - len(self._export_times)),
            },
        )

    def _comments(self, request: httpx.Request, ticket_id: int) -> httpx.Response:
        ticket = self.tickets.get(ticket_id)
        if ticket is None or ticket["status"] == "deleted":
            return json_response(404, {"error": "RecordNotFound", "description": "Not found"})
        params = request.url.params
        comments = self.comments[ticket_id]
        if params.get("sort_order", "asc") == "desc":
            comments = list(reversed(comments))
        try:
            size = int(params.get("page[size]", "100"))
            start = int(params["page[after]"]) if "page[after]" in params else 0
        except ValueError:
            return json_response(
                400, {"error": "InvalidPaginationParameter", "description": "bad page params"}
            )
        if not 1 <= size <= 100:
            return json_response(
                400, {"error": "InvalidPaginationParameter", "description": "page[size] 1..100"}
            )
        chunk = comments[start : start + size]
        has_more = start + size < len(comments)
        after = str(start + size) if has_more else None
        body: dict[str, Any] = {
            "comments": chunk,
            "meta": {"has_more": has_more, "after_cursor": after, "before_cursor": None},
            "links": {
                "prev": None,
                "next": (
                    f"{BASE_URL}/api/v2/tickets/{ticket_id}/comments.json"
                    f"?page[size]={size}&page[after]={after}"
                    if has_more
                    else None
                ),
            },
        }
        if "users" in params.get("include", "").split(","):
            body["users"] = [
                self.users[author]
                for author in sorted({comment["author_id"] for comment in chunk})
                if author in self.users
            ]
        return json_response(200, body)

    def _sideload(self, tickets: list[Any]) -> list[dict[str, Any]]:
        wanted: set[int] = set()
        for ticket in tickets:
            if isinstance(ticket, dict):
                for key in ("requester_id", "submitter_id", "assignee_id"):
                    if isinstance(ticket.get(key), int):
                        wanted.add(ticket[key])
        return [self.users[user_id] for user_id in sorted(wanted) if user_id in self.users]

    def _too_many(self, retry_after: int) -> httpx.Response:
        return json_response(
            429,
            {
                "error": "APIRateLimitExceeded",
                "description": "Number of allowed incremental export API requests per minute "
                "exceeded",
            },
            {"Retry-After": str(retry_after), "X-Rate-Limit": str(self.export_limit)},
        )


def connector_for(api: FakeZendeskApi, *, oauth: bool = False, **config: Any) -> ZendeskConnector:
    """A connector wired to ``api`` (its clock, its transport, no real sleeping)."""
    settings: dict[str, Any] = {"subdomain": SUBDOMAIN, **config}
    if oauth:
        settings["oauth_token_env"] = OAUTH_TOKEN_ENV
    else:
        settings.setdefault("email", api.email)
        settings.setdefault("token_env", TOKEN_ENV)
    return ZendeskConnector(
        settings,
        env={TOKEN_ENV: api.token, OAUTH_TOKEN_ENV: api.oauth_token},
        transport=api.transport(),
        sleep=lambda _seconds: None,
        now=api.clock,
    )


def _rig(*, comments: bool) -> ContractRig:
    api = FakeZendeskApi(export_limit=100 if comments else 10)
    api.advance(3600)  # the default start_time (0) is long before anything seeded

    def seed(count: int) -> list[str]:
        """``count`` ids: with comments, each ticket brings one requester follow-up."""
        expected: list[str] = []
        number = 0
        while len(expected) < count:
            number += 1
            ticket = api.add_ticket(f"Export fails #{number}", f"Export breaks on run {number}")
            expected.append(str(ticket["id"]))
            if comments and len(expected) < count:
                note = "An internal note"
                api.add_comment(ticket["id"], note, author_id=api.agent["id"], public=False)
                follow_up = api.add_comment(ticket["id"], f"Still broken ({number})")
                expected.append(f"{ticket['id']}-c{follow_up['id']}")
        api.advance(EXPORT_LAG + 30)  # let the export's one-minute lag pass
        return expected

    def connector() -> ZendeskConnector:
        if comments:
            return connector_for(api, comments=True, per_page=5, requests_per_minute=100)
        return connector_for(api, per_page=10)

    return ContractRig(connector=connector, seed=seed, trigger_rate_limit=api.rate_limit_next)


def contract_case() -> list[ContractCase]:
    return [
        ContractCase(
            name="zendesk-tickets", start=lambda: _rig(comments=False), initial_count=25,
            later_count=12,
        ),
        ContractCase(
            name="zendesk-comments", start=lambda: _rig(comments=True), initial_count=12,
            later_count=6,
        ),
    ]  # fmt: skip

"""A local Freshdesk helpdesk: the ticket listing with Freshdesk's paging and limits.

What it honours (see reference/connectors.md §4.2):

* ``GET /api/v2/tickets`` with ``updated_since`` (inclusive; without it only tickets
  created in the last 30 days are listed), ``order_by`` (``created_at``, ``due_by``,
  ``updated_at``, ``status``; default ``created_at``), ``order_type`` (default ``desc``),
  ``per_page`` (1..100, default 30), ``page`` (from 1) and ``include=description`` (the
  only way to get ``description``/``description_text`` in a listing).
* A ``Link: <...page=N+1>; rel="next"`` header while more tickets follow; none on the
  last page.
* The page cap: a page past ``page_cap`` (300, as Freshdesk) is refused with 400
  "You cannot access tickets beyond the 300th page".
* Invalid parameters get Freshdesk's ``{"description": "Validation failed", "errors":
  [{"field", "message", "code"}]}``; bad credentials 401 ``invalid_credentials``.
* ``X-RateLimit-Total/Remaining/Used-CurrentRequest`` on every answer; past
  ``rate_limit`` calls a minute (or after ``rate_limit_next()``) 429 with ``Retry-After``.
* ``faults`` scripts 5xx/timeouts; ``add_raw`` lists a malformed record.

Auth is Basic ``{api_key}:X`` (Freshdesk ignores the password). Time is the fake's own
clock; every write moves it one second unless ``tick=0`` (same-second bulk updates).
"""

from __future__ import annotations

import base64
import itertools
import math
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from connectors.base import parse_time
from connectors.freshdesk import FreshdeskConnector
from tests.connectors.contract import ContractCase, ContractRig
from tests.connectors.fakes import Faults, json_response

DOMAIN = "acme"
BASE_URL = f"https://{DOMAIN}.freshdesk.com"
API_KEY = "fd-key-Zx81QmT4"
API_KEY_ENV = "ANDON_FRESHDESK_API_KEY"
TICKETS_PATH = "/api/v2/tickets"
START = datetime(2024, 5, 13, 9, 0, tzinfo=UTC)
ORDER_FIELDS = ("created_at", "due_by", "updated_at", "status")


def fd_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeFreshdeskApi:
    """In-memory tickets behind ``httpx.MockTransport``."""

    def __init__(
        self,
        *,
        api_key: str = API_KEY,
        page_cap: int = 300,
        rate_limit: int = 400,
        start: datetime = START,
    ) -> None:
        self.api_key = api_key
        self.page_cap = page_cap
        self.rate_limit = rate_limit
        self.now = start
        self.tickets: dict[int, dict[str, Any]] = {}
        self.raw_records: list[tuple[datetime, int, Any]] = []
        self.faults = Faults()
        self.requests: list[httpx.Request] = []
        self._calls: deque[datetime] = deque()
        self._forced_429: list[int] = []
        self._ids = itertools.count(1001)
        self._requesters = itertools.count(77000001)

    # -- clock and seeding -------------------------------------------------------------

    def clock(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def add_ticket(
        self,
        subject: str,
        description_text: str,
        *,
        requester_id: int | None = None,
        status: int = 2,
        priority: int = 1,
        tags: tuple[str, ...] = (),
        tick: int = 1,
    ) -> dict[str, Any]:
        ticket_id = next(self._ids)
        stamp = fd_time(self.now)
        ticket: dict[str, Any] = {
            "id": ticket_id,
            "subject": subject,
            "description": f"<div>{description_text}</div>",
            "description_text": description_text,
            "status": status,
            "priority": priority,
            "source": 2,
            "type": None,
            "requester_id": requester_id or next(self._requesters),
            "responder_id": None,
            "group_id": None,
            "company_id": None,
            "tags": list(tags),
            "custom_fields": {},
            "cc_emails": [],
            "fwd_emails": [],
            "reply_cc_emails": [],
            "fr_escalated": False,
            "is_escalated": False,
            "spam": False,
            "created_at": stamp,
            "updated_at": stamp,
            "due_by": fd_time(self.now + timedelta(days=3)),
            "fr_due_by": fd_time(self.now + timedelta(days=1)),
        }
        self.tickets[ticket_id] = ticket
        self.advance(tick)
        return ticket

    def update_ticket(self, ticket_id: int, *, tick: int = 1, **changes: Any) -> dict[str, Any]:
        ticket = self.tickets[ticket_id]
        ticket.update(changes)
        ticket["updated_at"] = fd_time(self.now)
        self.advance(tick)
        return ticket

    def add_raw(self, record: Any, *, tick: int = 1) -> None:
        """List ``record`` verbatim (e.g. malformed) at the current second."""
        self.raw_records.append((self.now, next(self._ids), record))
        self.advance(tick)

    def rate_limit_next(self, retry_after: int = 42) -> None:
        self._forced_429.append(retry_after)

    # -- HTTP --------------------------------------------------------------------------

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not self._authorised(request):
            return json_response(
                401,
                {
                    "code": "invalid_credentials",
                    "message": "You have to be logged in to perform this action.",
                },
            )
        window_start = self.now - timedelta(minutes=1)
        while self._calls and self._calls[0] <= window_start:
            self._calls.popleft()
        if self._forced_429:
            return self._too_many(self._forced_429.pop(0))
        if len(self._calls) >= self.rate_limit:
            wait = (self._calls[0] - window_start).total_seconds()
            return self._too_many(max(1, math.ceil(wait)))
        self._calls.append(self.now)
        fault = self.faults.take(request, {"code": "internal_error", "message": "Oops"})
        if fault is not None:
            return fault
        if request.url.path != TICKETS_PATH:
            return json_response(404, {"code": "not_found", "message": "Not found"})
        return self._list(request)

    def _authorised(self, request: httpx.Request) -> bool:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, _password = base64.b64decode(value).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return user == self.api_key

    def _list(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        errors: list[dict[str, str]] = []
        since: datetime | None = None
        if "updated_since" in params:
            try:
                since = parse_time(params["updated_since"])
            except ValueError:
                errors.append(_invalid("updated_since", "It should be in the 'valid date' format"))
        order_by = params.get("order_by", "created_at")
        if order_by not in ORDER_FIELDS:
            errors.append(_invalid("order_by", f"It should be one of these values: {ORDER_FIELDS}"))
        order_type = params.get("order_type", "desc")
        if order_type not in ("asc", "desc"):
            errors.append(_invalid("order_type", "It should be one of these values: 'asc,desc'"))
        per_page = _positive(params.get("per_page", "30"))
        if per_page is None or per_page > 100:
            errors.append(
                _invalid("per_page", "It should be a Positive Integer less than or equal to 100")
            )
        page = _positive(params.get("page", "1"))
        if page is None:
            errors.append(_invalid("page", "It should be a Positive Integer"))
        elif page > self.page_cap:
            errors.append(
                _invalid(
                    "page",
                    f"You cannot access tickets beyond the {self.page_cap}th page. "
                    "Please provide a smaller page number.",
                )
            )
        if errors or per_page is None or page is None:
            return json_response(400, {"description": "Validation failed", "errors": errors})

        with_description = "description" in params.get("include", "").split(",")
        rows: list[tuple[Any, int, Any]] = []
        for ticket in self.tickets.values():
            updated = parse_time(ticket["updated_at"])
            created = parse_time(ticket["created_at"])
            if since is not None and updated < since:
                continue
            if since is None and created < self.now - timedelta(days=30):
                continue
            wire = dict(ticket)
            if not with_description:
                wire.pop("description")
                wire.pop("description_text")
            key = ticket[order_by] if order_by != "updated_at" else updated
            rows.append((key, ticket["id"], wire))
        for moment, sequence, record in self.raw_records:
            if since is None or moment >= since:
                rows.append(
                    (moment if order_by == "updated_at" else fd_time(moment), sequence, record)
                )
        rows.sort(key=lambda row: (row[0], row[1]), reverse=order_type == "desc")

        first = (page - 1) * per_page
        chunk = [wire for _, _, wire in rows[first : first + per_page]]
        headers = {
            "X-RateLimit-Total": str(self.rate_limit),
            "X-RateLimit-Remaining": str(self.rate_limit - len(self._calls)),
            "X-RateLimit-Used-CurrentRequest": "2" if with_description else "1",
        }
        if first + per_page < len(rows):
            following = httpx.URL(f"{BASE_URL}{TICKETS_PATH}").copy_with(
                params=params.set("page", str(page + 1))
            )
            headers["Link"] = f'<{following}>; rel="next"'
        return json_response(200, chunk, headers)

    def _too_many(self, retry_after: int) -> httpx.Response:
        return json_response(
            429,
            {"code": "rate_limit_exceeded", "message": "You have exceeded the rate limit."},
            {
                "Retry-After": str(retry_after),
                "X-RateLimit-Total": str(self.rate_limit),
                "X-RateLimit-Remaining": "0",
            },
        )


def _invalid(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message, "code": "invalid_value"}


def _positive(value: str) -> int | None:
    try:
        number = int(value)
    except ValueError:
        return None
    return number if number >= 1 else None


def connector_for(api: FakeFreshdeskApi, **config: Any) -> FreshdeskConnector:
    """A connector wired to ``api`` (its clock, its transport, no real sleeping)."""
    settings: dict[str, Any] = {"domain": DOMAIN, "api_key_env": API_KEY_ENV, **config}
    return FreshdeskConnector(
        settings,
        env={API_KEY_ENV: api.api_key},
        transport=api.transport(),
        sleep=lambda _seconds: None,
        now=api.clock,
    )


def _rig() -> ContractRig:
    api = FakeFreshdeskApi()

    def seed(count: int) -> list[str]:
        # Pairs share a second, so page boundaries fall inside a second now and then.
        return [
            str(api.add_ticket(f"Refund #{n}", f"Refund not received {n}", tick=n % 2)["id"])
            for n in range(count)
        ]

    return ContractRig(
        connector=lambda: connector_for(api, per_page=5),
        seed=seed,
        trigger_rate_limit=api.rate_limit_next,
    )


def contract_case() -> ContractCase:
    return ContractCase(name="freshdesk", start=_rig, initial_count=23, later_count=7)

"""A local Fider site that speaks the wire format of ``/api/v1/posts``.

What it honours (see reference/connectors.md §3.2 and Fider's ``getViewData``):
``GET /api/v1/posts`` answers a bare JSON array, newest id first for ``view=recent`` and
``view=all``, by votes for ``most-wanted``, by comments for ``most-discussed``, trending
(approximated by votes) otherwise. ``all`` lists open, started, planned, completed and
declined posts; every other view lists open, started and planned only; no view lists
``duplicate`` or ``deleted`` posts. ``limit`` is an integer or ``all``; anything else
(or nothing) means 30. ``tags`` (comma separated) keeps posts with any of the slugs.
``GET /api/v1/posts/:number`` answers one post (duplicates included) or 404 for a
deleted or unknown number. An ``Authorization: Bearer`` header with a wrong key is a
401 with Fider's ``{"errors": [{"message": ...}]}`` body; a private site (``private``)
answers 403 to anonymous calls.

Upstream behaviour it imitates: votes are sets of users, so marking a post duplicate
copies its voters to the original (a user who voted on both counts once there), and
the duplicate keeps its own count.

Fault injection: ``rate_limit_after(n)`` (429 with ``Retry-After``), ``faults`` (the
shared scripted 5xx/timeouts), ``corrupt(number, **fields)`` (a malformed record).
"""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from connectors.fider import FiderConnector
from tests.connectors.contract import ContractCase, ContractRig
from tests.connectors.fakes import Faults, json_response

API_KEY = "fider-test-key-Qm27xv"
API_KEY_ENV = "ANDON_FIDER_API_KEY"
BASE_URL = "https://feedback.fider.test"
START = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
DEFAULT_LIMIT = 30
OPEN_STATUSES = ("open", "started", "planned")
ALL_STATUSES = (*OPEN_STATUSES, "completed", "declined")
POST_PATH = re.compile(r"^/api/v1/posts/(\d+)$")


def fider_time(moment: datetime) -> str:
    """RFC 3339 with microseconds, the way Go's ``time.Time`` marshals."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class FakeFiderApi:
    """An in-memory Fider tenant."""

    def __init__(self, api_key: str | None = API_KEY, *, private: bool = False) -> None:
        self.api_key = api_key
        self.private = private
        self.faults = Faults()
        self.calls: list[httpx.Request] = []
        self.posts: dict[int, dict[str, Any]] = {}  # by number, every status
        self._clock = START
        self._ids = itertools.count(1001)
        self._rate_limit_at: int | None = None
        self._rate_limit_times = 0
        self._retry_after = "30"

    # -- building the world ----------------------------------------------------------

    def add_post(
        self,
        title: str,
        description: str = "",
        *,
        votes: int = 1,
        comments: int = 0,
        status: str = "open",
        tags: tuple[str, ...] = (),
        created: datetime | None = None,
        user: str = "Ada Customer",
    ) -> dict[str, Any]:
        self._clock = created if created is not None else self._clock + timedelta(minutes=1)
        number = len(self.posts) + 1
        post = {
            "id": next(self._ids),
            "number": number,
            "title": title,
            "slug": re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-"),
            "description": description,
            "createdAt": fider_time(self._clock),
            "user": {"id": 100 + len(user), "name": user, "role": "visitor"},
            "voters": {f"voter-{number}-{n}" for n in range(votes)},
            "commentsCount": comments,
            "status": status,
            "response": None,
            "original": None,
            "tags": list(tags),
            "overrides": {},
        }
        self.posts[number] = post
        return self.wire(post)

    def add_posts(self, count: int, **kwargs: Any) -> list[str]:
        start = len(self.posts)
        created = [self.add_post(f"Idea {start + n}", **kwargs) for n in range(count)]
        return [str(post["number"]) for post in created]

    def set_votes(self, number: int, votes: int) -> None:
        self.posts[number]["voters"] = {f"voter-{number}-{n}" for n in range(votes)}

    def set_comments(self, number: int, comments: int) -> None:
        self.posts[number]["commentsCount"] = comments

    def set_status(self, number: int, status: str, text: str = "") -> None:
        post = self.posts[number]
        self._clock += timedelta(minutes=1)
        post["status"] = status
        post["original"] = None
        post["response"] = {"text": text, "respondedAt": fider_time(self._clock)}

    def mark_duplicate(self, number: int, original: int) -> None:
        """Fider's MarkPostAsDuplicate: the voters also vote on the original."""
        post, target = self.posts[number], self.posts[original]
        target["voters"] |= post["voters"]
        self._clock += timedelta(minutes=1)
        post["status"] = "duplicate"
        post["original"] = original
        post["response"] = {"text": "", "respondedAt": fider_time(self._clock)}

    def delete_post(self, number: int) -> None:
        self.set_status(number, "deleted", "spam")

    def corrupt(self, number: int, **fields: Any) -> None:
        """Serve post ``number`` with broken fields (``createdAt="yesterday"`` ...)."""
        self.posts[number]["overrides"].update(fields)

    def rate_limit_after(self, calls: int, *, retry_after: str = "30", times: int = 1) -> None:
        self._rate_limit_at = len(self.calls) + calls
        self._rate_limit_times = times
        self._retry_after = retry_after

    def wire(self, post: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {
            key: post[key]
            for key in ("id", "number", "title", "slug", "description", "createdAt", "user")
        }
        body.update(
            hasVoted=False,
            votesCount=len(post["voters"]),
            commentsCount=post["commentsCount"],
            status=post["status"],
            tags=post["tags"],
            isApproved=True,
        )
        if post["response"] is not None:
            response = {
                **post["response"],
                "user": {"id": 1, "name": "Admin", "role": "administrator"},
            }
            if post["status"] == "duplicate" and post["original"] is not None:
                original = self.posts[post["original"]]
                response["original"] = {
                    "number": original["number"],
                    "title": original["title"],
                    "slug": original["slug"],
                    "status": original["status"],
                }
            body["response"] = response
        body.update(post["overrides"])
        return body

    # -- serving -----------------------------------------------------------------------

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        if self._rate_limit_at is not None and len(self.calls) > self._rate_limit_at:
            if self._rate_limit_times > 0:
                self._rate_limit_times -= 1
                return json_response(
                    429,
                    {"errors": [{"message": "too many requests"}]},
                    {"Retry-After": self._retry_after},
                )
            self._rate_limit_at = None
        fault = self.faults.take(request, {"errors": [{"message": "internal server error"}]})
        if fault is not None:
            return fault
        auth = request.headers.get("authorization")
        if auth is not None and auth != f"Bearer {self.api_key}":
            return json_response(401, {"errors": [{"message": "invalid API key"}]})
        if auth is None and self.private:
            return json_response(403, {"errors": [{"message": "this site is private"}]})
        if request.method != "GET":
            return json_response(405, {"errors": [{"message": "method not allowed"}]})
        if request.url.path == "/api/v1/posts":
            return json_response(200, self._search(request.url.params))
        if match := POST_PATH.match(request.url.path):
            post = self.posts.get(int(match.group(1)))
            if post is None or post["status"] == "deleted":
                return json_response(404, {})
            return json_response(200, self.wire(post))
        return json_response(404, {})

    def _search(self, params: httpx.QueryParams) -> list[dict[str, Any]]:
        view = params.get("view", "")
        statuses: tuple[str, ...] = ALL_STATUSES if view == "all" else OPEN_STATUSES
        for old in ("planned", "started", "completed", "declined"):
            if view == old:  # deprecated views
                statuses = (old,)
        posts = [p for p in self.posts.values() if p["status"] in statuses]
        tags = [t for t in params.get("tags", "").split(",") if t]
        if tags:
            posts = [p for p in posts if set(p["tags"]) & set(tags)]
        if query := params.get("query", "").lower():
            posts = [p for p in posts if query in (p["title"] + p["description"]).lower()]
        if view in ("recent", "all"):
            posts.sort(key=lambda p: p["id"], reverse=True)
        elif view == "most-discussed":
            posts.sort(key=lambda p: (p["commentsCount"], p["id"]), reverse=True)
        else:  # most-wanted, trending and the rest: by votes
            posts.sort(key=lambda p: (len(p["voters"]), p["id"]), reverse=True)
        limit = params.get("limit", "")
        if limit != "all":
            posts = posts[: int(limit) if limit.isdigit() else DEFAULT_LIMIT]
        return [self.wire(p) for p in posts]


def contract_case() -> ContractCase:
    def start() -> ContractRig:
        api = FakeFiderApi()

        def connector() -> FiderConnector:
            return FiderConnector(
                {"base_url": BASE_URL, "api_key_env": API_KEY_ENV, "limit": 20},
                env={API_KEY_ENV: API_KEY},
                transport=api.transport(),
                now=lambda: START + timedelta(days=1),
            )

        return ContractRig(
            connector=connector,
            seed=api.add_posts,
            trigger_rate_limit=lambda: api.rate_limit_after(0),
        )

    return ContractCase(name="fider", start=start, initial_count=25, later_count=12)

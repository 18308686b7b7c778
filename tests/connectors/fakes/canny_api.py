"""A local Canny API v1 that speaks the wire format of posts, comments and boards.

What it honours (see reference/connectors.md §3.1): every call is a ``POST`` with a JSON
(or form-encoded) body carrying ``apiKey``; a missing or wrong key gets Canny's error
body ``{"error": "invalid api key"}``. ``/api/v1/posts/list`` takes ``boardID``,
``status`` (a comma list; **default: the open statuses only** — open, under review,
planned, in progress), ``sort`` (newest, the default; oldest; score), ``limit``
(default 10, at most 100) and ``skip``, and answers ``{"hasMore": bool, "posts": [...]}``.
``/api/v1/comments/list`` takes ``postID``/``boardID``/``limit``/``skip`` and answers
newest first ``{"hasMore": bool, "comments": [...]}``. ``/api/v1/boards/list`` answers
``{"boards": [...]}``. Anything else is a 404 with an error body.

Upstream behaviour it imitates: a deleted post is no longer listed and its comments go
with it; merging post A into B moves A's votes and comments to B, stops listing A and
adds ``{"created", "post": <snapshot of A>}`` to ``B.mergeHistory``.

Fault injection: ``rate_limit_after(n)`` (429 with ``Retry-After``), ``faults`` (the
shared scripted 5xx/timeouts), ``corrupt(post_id, **fields)`` (a malformed record) and
``repeat_pages`` (every ``posts/list`` page is the first one, with ``hasMore`` true).
"""

from __future__ import annotations

import itertools
import json
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import httpx

from connectors.canny import CannyConnector
from tests.connectors.contract import ContractCase, ContractRig
from tests.connectors.fakes import Faults, json_response

API_KEY = "canny-test-secret-9Fq2Lm"
API_KEY_ENV = "ANDON_CANNY_API_KEY"
BASE_URL = "https://canny.test"
DEFAULT_STATUSES = ("open", "under review", "planned", "in progress")
START = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
MAX_LIMIT = 100


def canny_time(moment: datetime) -> str:
    """``2024-05-01T10:00:00.000Z``, the way Canny writes times."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class FakeCannyApi:
    """An in-memory Canny company with boards, posts and comments."""

    def __init__(self, api_key: str = API_KEY, *, auth_status: int = 401) -> None:
        self.api_key = api_key
        self.auth_status = auth_status
        self.faults = Faults()
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.repeat_pages = False
        self.boards: dict[str, dict[str, Any]] = {}
        self.posts: dict[str, dict[str, Any]] = {}  # listed posts, by id
        self.gone: dict[str, dict[str, Any]] = {}  # deleted or merged away
        self.comments: list[dict[str, Any]] = []
        self._clock = START
        self._ids = itertools.count(1)
        self._rate_limit_at: int | None = None
        self._rate_limit_times = 0
        self._retry_after = "30"
        self.add_board("b1", "Feature Requests")

    # -- building the world ----------------------------------------------------------

    def _id(self) -> str:
        return f"{0x5F0C0000 + next(self._ids):024x}"

    def _tick(self, created: datetime | None) -> datetime:
        self._clock = created if created is not None else self._clock + timedelta(minutes=1)
        return self._clock

    def add_board(self, board_id: str, name: str) -> dict[str, Any]:
        board = {
            "id": board_id,
            "created": canny_time(START - timedelta(days=30)),
            "name": name,
            "postCount": 0,
            "url": f"https://acme.canny.io/{name.lower().replace(' ', '-')}",
        }
        self.boards[board_id] = board
        return board

    def user(self, name: str = "Lee Customer") -> dict[str, Any]:
        ident = f"u{zlib.crc32(name.encode()) % 10_000}"
        return {
            "id": ident,
            "avatarURL": None,
            "created": canny_time(START - timedelta(days=60)),
            "email": f"{name.split()[0].lower()}@example.com",
            "isAdmin": False,
            "name": name,
            "url": f"https://acme.canny.io/admin/users/{ident}",
            "userID": f"cust-{ident}",
        }

    def add_post(
        self,
        title: str,
        details: str = "",
        *,
        status: str = "open",
        score: int = 0,
        board: str = "b1",
        tags: tuple[str, ...] = (),
        created: datetime | None = None,
        author: str = "Lee Customer",
    ) -> dict[str, Any]:
        moment = self._tick(created)
        post_id = self._id()
        slug = title.lower().replace(" ", "-")
        post: dict[str, Any] = {
            "id": post_id,
            "author": self.user(author),
            "board": self.boards[board],
            "by": None,
            "category": None,
            "commentCount": 0,
            "created": canny_time(moment),
            "details": details,
            "eta": None,
            "imageURLs": [],
            "jira": {"linkedIssues": [], "linkedIssueIDs": []},
            "mergeHistory": [],
            "owner": None,
            "score": score,
            "status": status,
            "statusChangedAt": canny_time(moment),
            "tags": [{"id": f"t-{t}", "name": t, "postCount": 1, "url": ""} for t in tags],
            "title": title,
            "totalMRR": 0,
            "url": f"{self.boards[board]['url']}/p/{slug}",
        }
        self.posts[post_id] = post
        self.boards[board]["postCount"] += 1
        return post

    def add_posts(self, count: int, **kwargs: Any) -> list[str]:
        start = len(self.posts) + len(self.gone)
        return [
            self.add_post(f"Idea {start + n}", f"Details {start + n}", **kwargs)["id"]
            for n in range(count)
        ]

    def set_votes(self, post_id: str, score: int) -> None:
        self.posts[post_id]["score"] = score

    def set_status(self, post_id: str, status: str) -> None:
        post = self.posts[post_id]
        post["status"] = status
        post["statusChangedAt"] = canny_time(self._tick(None))

    def add_comment(
        self, post_id: str, value: str, *, internal: bool = False, author: str = "Sam Reply"
    ) -> dict[str, Any]:
        moment = self._tick(None)
        comment = {
            "id": self._id(),
            "author": self.user(author),
            "board": self.posts[post_id]["board"],
            "created": canny_time(moment),
            "imageURLs": [],
            "internal": internal,
            "likeCount": 0,
            "mentions": [],
            "parentID": None,
            "postID": post_id,  # internal link; the wire carries the whole post
            "value": value,
        }
        self.comments.append(comment)
        self.posts[post_id]["commentCount"] += 1
        return comment

    def delete_post(self, post_id: str) -> None:
        post = self.posts.pop(post_id)
        post["board"]["postCount"] -= 1
        self.gone[post_id] = post
        self.comments = [c for c in self.comments if c["postID"] != post_id]

    def merge(self, post_id: str, into: str) -> None:
        """Merge ``post_id`` into ``into``: votes and comments move, the post stops listing."""
        merged = self.posts.pop(post_id)
        self.gone[post_id] = merged
        target = self.posts[into]
        snapshot = {
            key: merged[key]
            for key in ("id", "title", "details", "created", "score", "commentCount", "status")
        }
        snapshot.update(url=merged["url"], author=merged["author"], tags=merged["tags"])
        target["mergeHistory"].append({"created": canny_time(self._tick(None)), "post": snapshot})
        target["score"] += merged["score"]
        target["commentCount"] += merged["commentCount"]
        for comment in self.comments:
            if comment["postID"] == post_id:
                comment["postID"] = into

    def corrupt(self, post_id: str, **fields: Any) -> None:
        """Serve ``post_id`` with broken fields (``created="yesterday"``, ``score="lots"``)."""
        self.posts[post_id].update(fields)

    def rate_limit_after(self, calls: int, *, retry_after: str = "30", times: int = 1) -> None:
        """After ``calls`` more calls, answer 429 ``times`` times."""
        self._rate_limit_at = len(self.calls) + calls
        self._rate_limit_times = times
        self._retry_after = retry_after

    # -- serving -----------------------------------------------------------------------

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        body = _body(request)
        self.calls.append((request.url.path, body))
        if self._rate_limit_at is not None and len(self.calls) > self._rate_limit_at:
            if self._rate_limit_times > 0:
                self._rate_limit_times -= 1
                return json_response(
                    429, {"error": "rate limit exceeded"}, {"Retry-After": self._retry_after}
                )
            self._rate_limit_at = None
        fault = self.faults.take(request, {"error": "internal server error"})
        if fault is not None:
            return fault
        routes: dict[str, Callable[[dict[str, Any]], httpx.Response]] = {
            "/api/v1/posts/list": self._posts_list,
            "/api/v1/comments/list": self._comments_list,
            "/api/v1/boards/list": self._boards_list,
        }
        route = routes.get(request.url.path)
        if request.method != "POST" or route is None:
            return json_response(404, {"error": "endpoint not found"})
        if body.get("apiKey") != self.api_key:
            return json_response(self.auth_status, {"error": "invalid api key"})
        try:
            return route(body)
        except _Invalid as exc:
            return json_response(400, {"error": str(exc)})

    def _posts_list(self, body: dict[str, Any]) -> httpx.Response:
        limit, skip = _paging(body)
        statuses = body.get("status")
        wanted = DEFAULT_STATUSES if statuses in (None, "") else str(statuses).split(",")
        posts = [p for p in self.posts.values() if p["status"] in wanted]
        board = body.get("boardID")
        if board is not None:
            if board not in self.boards:
                raise _Invalid("invalid board id")
            posts = [p for p in posts if p["board"]["id"] == board]
        sort = body.get("sort", "newest")
        if sort == "newest":
            posts.sort(key=lambda p: (p["created"], p["id"]), reverse=True)
        elif sort == "oldest":
            posts.sort(key=lambda p: (p["created"], p["id"]))
        elif sort == "score":
            posts.sort(key=lambda p: (p["score"], p["created"]), reverse=True)
        else:
            raise _Invalid(f"invalid sort: {sort}")
        if self.repeat_pages:
            return json_response(200, {"hasMore": True, "posts": posts[:limit]})
        page = posts[skip : skip + limit]
        return json_response(200, {"hasMore": skip + limit < len(posts), "posts": page})

    def _comments_list(self, body: dict[str, Any]) -> httpx.Response:
        limit, skip = _paging(body)
        comments = list(self.comments)
        if (post_id := body.get("postID")) is not None:
            if post_id not in self.posts:
                raise _Invalid("invalid post id")
            comments = [c for c in comments if c["postID"] == post_id]
        if (board := body.get("boardID")) is not None:
            comments = [c for c in comments if c["board"]["id"] == board]
        comments.sort(key=lambda c: (c["created"], c["id"]), reverse=True)
        page = [
            {**{k: v for k, v in c.items() if k != "postID"}, "post": self.posts[c["postID"]]}
            for c in comments[skip : skip + limit]
        ]
        return json_response(200, {"hasMore": skip + limit < len(comments), "comments": page})

    def _boards_list(self, body: dict[str, Any]) -> httpx.Response:
        return json_response(200, {"boards": list(self.boards.values())})

    def posts_list_calls(self) -> list[dict[str, Any]]:
        return [body for path, body in self.calls if path == "/api/v1/posts/list"]


class _Invalid(Exception):
    pass


def _body(request: httpx.Request) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "")
    raw = request.content.decode() if request.content else ""
    if "json" in content_type:
        loaded = json.loads(raw or "{}")
        return loaded if isinstance(loaded, dict) else {}
    return {key: values[-1] for key, values in parse_qs(raw).items()}


def _paging(body: dict[str, Any]) -> tuple[int, int]:
    limit, skip = body.get("limit", 10), body.get("skip", 0)
    for name, value in (("limit", limit), ("skip", skip)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise _Invalid(f"invalid {name}")
    return min(limit, MAX_LIMIT), skip


def contract_case() -> ContractCase:
    def start() -> ContractRig:
        api = FakeCannyApi()

        def connector() -> CannyConnector:
            return CannyConnector(
                {"api_key_env": API_KEY_ENV, "base_url": BASE_URL, "page_size": 10},
                env={API_KEY_ENV: API_KEY},
                transport=api.transport(),
                now=lambda: START + timedelta(days=1),
            )

        return ContractRig(
            connector=connector,
            seed=api.add_posts,
            trigger_rate_limit=lambda: api.rate_limit_after(0),
        )

    return ContractCase(name="canny", start=start, initial_count=25, later_count=12)

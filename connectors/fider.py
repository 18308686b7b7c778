"""Fider: ideas-portal posts from a (usually self-hosted) Fider site; votes are demand.

Wire format (``<base_url>/api/v1/...``): ``GET /api/v1/posts`` answers a **bare JSON
array** — no paging cursor, no since/updated filter. ``view`` picks the order and the
status filter: ``recent`` is newest id first over open, started and planned posts;
``all`` is newest id first over open, started, planned, completed and declined posts.
Neither lists ``duplicate`` or ``deleted`` posts. ``limit`` is an integer (or ``all``;
anything invalid means 30) and simply caps the answer: there is no way to ask for the
*next* page. Public sites answer anonymously; an admin API key goes in
``Authorization: Bearer <key>``.

Configuration::

    {"base_url": "https://feedback.example.com",   # required
     "api_key_env": "ANDON_FIDER_API_KEY",          # optional; names the env var
     "limit": 100, "refresh_limit": 100000, "refresh_every_hours": 24}

Consequence of the capped, cursorless list, and the strategy:

* **new posts** (incremental): ``view=recent&limit=<limit>``, keeping posts whose
  ``number`` is above the watermark (numbers grow by one per post within a site). If
  every returned post is new *and* the answer is full, more than ``limit`` posts may
  have arrived since the last sync and the older ones cannot be reached: the connector
  then starts a refresh pass at once instead of leaving a gap. A post closed (completed,
  declined) before it was ever seen is not in ``recent``: the next refresh returns it.
* **refresh** (every ``refresh_every_hours``, and on the first sync):
  ``view=all&limit=<refresh_limit>`` returns every listed post with its current
  ``votesCount``, ``commentsCount``, ``status`` and ``tags``. A full answer (as many
  posts as ``refresh_limit``) may be truncated; raise the limit for such sites. Numbers
  between 1 and the highest number that the listing skipped are duplicates or deleted
  posts: each is looked up with ``GET /api/v1/posts/:number`` (a few per pull). A
  duplicate answers with ``response.original``; a deleted post answers 404 and its
  number is remembered in ``gone`` so it is never looked up again.

Cursor (a JSON object; ``None`` starts with a refresh)::

    {"version": 1,
     "watermark": {"number": 42, "created": "2024-05-01T10:00:00+00:00"} | null,
     "refreshed_at": "..." | null,          # start of the last completed refresh
     "gone": [7, 19],                       # numbers known deleted upstream
     "pass": null | {"mode": "refresh", "stage": "list" | "resolve",
                     "started_at": "...",
                     "newest": {"number": ..., "created": ...} | null,  # the pass's own
                     "pending": [12, 30]}}  # numbers still to look up

The incremental walk is one request, so the watermark moves as soon as it answers; a
refresh moves it (and ``refreshed_at``) only after the last look-up. There is no page
to repeat, so no loop guard is needed. ``Page.has_more`` is true while a refresh is
in progress.

For every item ``raw`` is the upstream post plus ``raw["andon"]``::

    {"status": "planned", "tags": ["ui"], "board": None,
     "duplicate_of": "<number of the original>" | None,   # Fider status "duplicate"
     "merged": [], "refresh": True | False}

Posts are ``kind="idea"``, ``external_id`` is the post ``number`` (Fider's public id,
the one in URLs and in ``response.original``), ``metrics={"votes": votesCount,
"comments": commentsCount}``. When a post is marked duplicate, Fider copies its votes to
the original; the duplicate keeps its own count, so demand sums must skip items whose
``duplicate_of`` is set. Deleted posts are not emitted: the app detects deletions on
refresh only (an item not returned since ``refreshed_at`` moved forward is gone).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeGuard

import httpx

from connectors import http
from connectors.base import Author, Cursor, Page, Rejected, SourceItem, parse_time
from connectors.errors import AuthFailed, BadCursor, ConfigError, ProtocolError
from connectors.registry import register

log = logging.getLogger(__name__)

CHANNEL = "fider"
CURSOR_VERSION = 1
RESOLVE_PER_PULL = 5
STATUSES = ("open", "started", "completed", "declined", "planned", "duplicate", "deleted")


class _Malformed(Exception):
    """A record that cannot be normalised (becomes a ``Rejected``)."""


@dataclass(frozen=True, slots=True, order=True)
class _Mark:
    number: int
    created: datetime

    def dump(self) -> dict[str, Any]:
        return {"number": self.number, "created": self.created.isoformat()}

    @classmethod
    def load(cls, value: Any, name: str) -> _Mark | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise BadCursor(f"fider cursor: {name!r} must be an object or null")
        number, created = value.get("number"), value.get("created")
        if not _is_number(number) or not isinstance(created, str):
            raise BadCursor(f"fider cursor: {name!r} needs a 'number' and a 'created' time")
        return cls(number, _load_time(created, name))


def _newer(current: _Mark | None, candidate: _Mark | None) -> _Mark | None:
    if candidate is None:
        return current
    if current is None:
        return candidate
    return max(current, candidate)


@dataclass(slots=True)
class _Refresh:
    started_at: datetime
    stage: Literal["list", "resolve"] = "list"
    newest: _Mark | None = None
    pending: list[int] = field(default_factory=list)

    def dump(self) -> dict[str, Any]:
        return {
            "mode": "refresh",
            "stage": self.stage,
            "started_at": self.started_at.isoformat(),
            "newest": self.newest.dump() if self.newest else None,
            "pending": list(self.pending),
        }

    @classmethod
    def load(cls, value: Any) -> _Refresh | None:
        if value is None:
            return None
        if not isinstance(value, dict) or value.get("mode") != "refresh":
            raise BadCursor("fider cursor: 'pass' must be a refresh pass or null")
        started, pending, stage = value.get("started_at"), value.get("pending"), value.get("stage")
        if stage not in ("list", "resolve"):
            raise BadCursor(f"fider cursor: unknown refresh stage {stage!r}")
        if not isinstance(started, str):
            raise BadCursor("fider cursor: 'started_at' must be a string")
        if not isinstance(pending, list) or not all(_is_number(n) for n in pending):
            raise BadCursor("fider cursor: 'pending' must be a list of post numbers")
        return cls(
            started_at=_load_time(started, "started_at"),
            stage=stage,
            newest=_Mark.load(value.get("newest"), "newest"),
            pending=list(pending),
        )


@dataclass(slots=True)
class _State:
    watermark: _Mark | None = None
    refreshed_at: datetime | None = None
    gone: set[int] = field(default_factory=set)
    pass_: _Refresh | None = None

    def dump(self) -> Cursor:
        return {
            "version": CURSOR_VERSION,
            "watermark": self.watermark.dump() if self.watermark else None,
            "refreshed_at": self.refreshed_at.isoformat() if self.refreshed_at else None,
            "gone": sorted(self.gone),
            "pass": self.pass_.dump() if self.pass_ else None,
        }

    @classmethod
    def load(cls, cursor: Cursor | None) -> _State:
        if cursor is None:
            return cls()
        if not isinstance(cursor, dict):
            raise BadCursor("fider cursor must be a JSON object")
        if cursor.get("version") != CURSOR_VERSION:
            raise BadCursor(f"fider cursor: unsupported version {cursor.get('version')!r}")
        refreshed, gone = cursor.get("refreshed_at"), cursor.get("gone", [])
        if refreshed is not None and not isinstance(refreshed, str):
            raise BadCursor("fider cursor: 'refreshed_at' must be a string or null")
        if not isinstance(gone, list) or not all(_is_number(n) for n in gone):
            raise BadCursor("fider cursor: 'gone' must be a list of post numbers")
        return cls(
            watermark=_Mark.load(cursor.get("watermark"), "watermark"),
            refreshed_at=_load_time(refreshed, "refreshed_at") if refreshed else None,
            gone=set(gone),
            pass_=_Refresh.load(cursor.get("pass")),
        )


def _is_number(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _load_time(value: str, name: str) -> datetime:
    try:
        return parse_time(value)
    except ValueError:
        raise BadCursor(f"fider cursor: {name!r} is not an ISO-8601 time") from None


@register("fider")
class FiderConnector:
    """Pull Fider posts as ``kind="idea"``; see the module docstring for the strategy."""

    kind = "fider"

    def __init__(
        self,
        config: Mapping[str, Any],
        *,
        env: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        policy: http.RetryPolicy | None = None,
        sleep: Callable[[float], None] | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        base_url = str(config.get("base_url") or "").strip().rstrip("/")
        if not base_url.startswith(("https://", "http://")):
            raise ConfigError("fider: 'base_url' must be the site's http(s) URL")
        self.base_url = base_url
        api_key_env = config.get("api_key_env")
        if api_key_env is not None and (not isinstance(api_key_env, str) or not api_key_env):
            raise ConfigError("fider: 'api_key_env' must name an environment variable")
        self.api_key_env = api_key_env
        self.limit = _positive_int(config, "limit", 100)
        self.refresh_limit = _positive_int(config, "refresh_limit", 100_000)
        hours = config.get("refresh_every_hours", 24)
        if isinstance(hours, bool) or not isinstance(hours, int | float) or hours < 0:
            raise ConfigError("fider: 'refresh_every_hours' must be a number >= 0")
        self.refresh_every = timedelta(hours=hours)
        self._env: Mapping[str, str] = os.environ if env is None else env
        if policy is None:
            policy = http.RetryPolicy() if sleep is None else http.RetryPolicy(sleep=sleep)
        self._policy = policy
        self._now = now or (lambda: datetime.now(UTC))
        self._client = http.make_client(self.base_url, transport=transport)

    def __repr__(self) -> str:
        return f"FiderConnector(base_url={self.base_url!r})"

    def close(self) -> None:
        self._client.close()

    # -- the contract --------------------------------------------------------------

    def check(self) -> None:
        self._list({"view": "recent", "limit": "1"})

    def pull(self, cursor: Cursor | None) -> Page:
        state = _State.load(cursor)
        if state.pass_ is not None:
            if state.pass_.stage == "list":
                return self._refresh_list(state, state.pass_)
            return self._resolve_step(state, state.pass_)
        now = self._now()
        if state.refreshed_at is None or now - state.refreshed_at >= self.refresh_every:
            return self._refresh_list(state, _Refresh(started_at=now))
        return self._incremental(state, now)

    # -- passes --------------------------------------------------------------------

    def _incremental(self, state: _State, now: datetime) -> Page:
        posts = self._list({"view": "recent", "limit": str(self.limit)})
        items, rejects, numbers = self._ideas(posts, refresh=False, location="view=recent")
        mark = state.watermark
        fresh = [item for item in items if mark is None or int(item.external_id) > mark.number]
        if len(posts) >= self.limit and all(mark is None or n > mark.number for n in numbers):
            # Older new posts are beyond the cap and unreachable: walk everything.
            log.warning("fider: more than %d new posts since the last sync; refreshing", self.limit)
            state.pass_ = _Refresh(started_at=now)
            return Page(fresh, state.dump(), True, rejects)
        for item in fresh:
            state.watermark = _newer(state.watermark, _Mark(int(item.external_id), item.created_at))
        return Page(fresh, state.dump(), False, rejects)

    def _refresh_list(self, state: _State, step: _Refresh) -> Page:
        posts = self._list({"view": "all", "limit": str(self.refresh_limit)})
        if len(posts) >= self.refresh_limit:
            log.warning("fider: view=all returned %d posts, the refresh_limit", len(posts))
        items, rejects, numbers = self._ideas(posts, refresh=True, location="view=all")
        for item in items:
            step.newest = _newer(step.newest, _Mark(int(item.external_id), item.created_at))
        highest = max([*numbers, state.watermark.number if state.watermark else 0], default=0)
        listed = set(numbers)
        step.pending = [n for n in range(1, highest + 1) if n not in listed and n not in state.gone]
        step.stage = "resolve"
        state.pass_ = step
        if not step.pending:
            self._finish(state, step)
        return Page(items, state.dump(), state.pass_ is not None, rejects)

    def _resolve_step(self, state: _State, step: _Refresh) -> Page:
        items: list[SourceItem] = []
        rejects: list[Rejected] = []
        batch, step.pending = step.pending[:RESOLVE_PER_PULL], step.pending[RESOLVE_PER_PULL:]
        for number in batch:
            path = f"/api/v1/posts/{number}"
            response = self._get(path, {}, allow={404})
            if response.status_code == 404:
                state.gone.add(number)
                continue
            post = http.json_body(response)
            try:
                items.append(self._idea(post, refresh=True))
            except _Malformed as exc:
                rejects.append(_reject(exc, post, path))
        if not step.pending:
            self._finish(state, step)
        return Page(items, state.dump(), state.pass_ is not None, rejects)

    def _finish(self, state: _State, step: _Refresh) -> None:
        state.watermark = _newer(state.watermark, step.newest)
        state.refreshed_at = step.started_at
        state.pass_ = None

    # -- normalisation ---------------------------------------------------------------

    def _ideas(
        self, posts: list[Any], *, refresh: bool, location: str
    ) -> tuple[list[SourceItem], list[Rejected], list[int]]:
        items: list[SourceItem] = []
        rejects: list[Rejected] = []
        numbers: list[int] = []
        for index, post in enumerate(posts):
            number = post.get("number") if isinstance(post, dict) else None
            if _is_number(number):
                numbers.append(number)
            try:
                items.append(self._idea(post, refresh=refresh))
            except _Malformed as exc:
                rejects.append(_reject(exc, post, f"GET /api/v1/posts?{location} [{index}]"))
        return items, rejects, numbers

    def _idea(self, post: Any, *, refresh: bool) -> SourceItem:
        if not isinstance(post, dict):
            raise _Malformed("post is not a JSON object")
        number = post.get("number")
        if not _is_number(number):
            raise _Malformed("missing or invalid 'number'")
        title = post.get("title")
        if not isinstance(title, str) or not title.strip():
            raise _Malformed("missing 'title'")
        description = post.get("description") or ""
        if not isinstance(description, str):
            raise _Malformed("'description' is not a string")
        created_at = _time(post.get("createdAt"), "createdAt")
        status = post.get("status")
        if status not in STATUSES:
            raise _Malformed(f"unknown 'status': {status!r}")
        tags = post.get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise _Malformed("'tags' is not a list of slugs")
        updated_at = created_at
        duplicate_of: str | None = None
        response = post.get("response")
        if isinstance(response, dict):
            if isinstance(response.get("respondedAt"), str):
                updated_at = max(created_at, _time(response["respondedAt"], "respondedAt"))
            original = response.get("original")
            if status == "duplicate" and isinstance(original, dict):
                if not _is_number(original.get("number")):
                    raise _Malformed("duplicate whose 'original' has no 'number'")
                duplicate_of = str(original["number"])
        elif response is not None:
            raise _Malformed("'response' is not an object")
        slug = post.get("slug")
        andon = {
            "status": status,
            "tags": list(tags),
            "board": None,
            "duplicate_of": duplicate_of,
            "merged": [],
            "refresh": refresh,
        }
        return SourceItem(
            channel=CHANNEL,
            kind="idea",
            external_id=str(number),
            text="\n\n".join(part for part in (title, description) if part.strip()),
            title=title,
            created_at=created_at,
            updated_at=updated_at,
            author=_author(post.get("user")),
            url=f"{self.base_url}/posts/{number}" + (f"/{slug}" if isinstance(slug, str) else ""),
            metrics={
                "votes": _count(post, "votesCount"),
                "comments": _count(post, "commentsCount"),
            },
            raw={**post, "andon": andon},
        )

    # -- HTTP ------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        if self.api_key_env is None:
            return {}
        key = self._env.get(self.api_key_env, "").strip()
        if not key:
            raise AuthFailed(f"fider: environment variable {self.api_key_env} is not set")
        return {"Authorization": f"Bearer {key}"}

    def _get(
        self, path: str, params: dict[str, str], *, allow: set[int] | None = None
    ) -> httpx.Response:
        return http.request(
            self._client,
            "GET",
            path,
            policy=self._policy,
            allow=allow or set(),
            params=params,
            headers=self._headers(),
        )

    def _list(self, params: dict[str, str]) -> list[Any]:
        body = http.json_body(self._get("/api/v1/posts", params))
        if not isinstance(body, list):
            raise ProtocolError("GET /api/v1/posts: expected a JSON array")
        return body


def _positive_int(config: Mapping[str, Any], key: str, default: int) -> int:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"fider: {key!r} must be a positive integer")
    return value


def _reject(exc: _Malformed, record: Any, location: str) -> Rejected:
    number = record.get("number") if isinstance(record, dict) else None
    return Rejected(
        reason=str(exc),
        payload=json.dumps(record, sort_keys=True, default=str),
        external_id=str(number) if _is_number(number) else None,
        location=location,
    )


def _time(value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise _Malformed(f"missing '{name}' time")
    try:
        return parse_time(value)
    except ValueError:
        raise _Malformed(f"'{name}' is not an RFC 3339 time: {value!r}") from None


def _count(record: dict[str, Any], key: str) -> int:
    value = record.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _Malformed(f"'{key}' is not a non-negative integer: {value!r}")
    return value


def _author(user: Any) -> Author:
    if not isinstance(user, dict):
        return Author()
    ident, name = user.get("id"), user.get("name")
    return Author(
        id=str(ident) if isinstance(ident, int | str) and not isinstance(ident, bool) else None,
        display_name=name if isinstance(name, str) else None,
    )

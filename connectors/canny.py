"""Canny: ideas-portal posts (votes are demand) and, optionally, their comments.

Wire format (``https://canny.io/api/v1/...``): every call is a ``POST`` whose JSON body
carries the secret ``apiKey``; there is no header auth. ``posts/list`` pages with
``limit``/``skip`` and answers ``{"hasMore": bool, "posts": [...]}``. Two traps:

* the ``status`` filter defaults to the *open* statuses only (open, under review,
  planned, in progress): the connector always sends the full list, the built-in six
  plus any custom ones from the ``statuses`` setting (Canny has no "all" value);
* there is no updated-since filter: a new post is found by walking ``sort=newest``
  down to the watermark, but a vote, comment count or status change on an old post
  is only seen by walking everything again (a *refresh* pass, ``sort=oldest``).

Configuration::

    {"api_key_env": "ANDON_CANNY_API_KEY",   # names the env var holding the secret key
     "base_url": "https://canny.io", "board_id": None,  # None: every board
     "page_size": 100, "comments": False, "refresh_every_hours": 24,
     "statuses": [...]}                       # extra custom statuses, added to the six

Cursor (a JSON object; ``None`` starts with a refresh pass)::

    {"version": 1,
     "watermark": {"created": "2024-05-01T10:00:00+00:00", "id": "5f0c..."} | null,
     "comments_watermark": {"created": ..., "id": ...} | null,
     "refreshed_at": "2024-05-02T00:00:00+00:00" | null,   # start of the last full refresh
     "pass": null | {"mode": "incremental" | "refresh" | "comments",
                     "skip": 200,                 # offset of the next page
                     "newest": {"created": ..., "id": ...} | null,  # newest seen in the pass
                     "last_ids": ["..."],         # ids of the previous page (loop guard)
                     "started_at": "..."}}

Each ``pull`` sends one request. With no pass in progress it starts one: ``refresh``
when ``refresh_every_hours`` have passed since ``refreshed_at`` (or never ran), else
``incremental``. A pass walks pages until it ends (``hasMore`` false, an empty page, the
watermark reached, or a page whose ids all repeat the previous page: an API that
serves the same page again would otherwise loop forever). Then the pass's ``newest``
becomes the watermark — only then, because the API is newest-first: advancing earlier
would leave a permanent gap if the walk were interrupted. A finished refresh also sets
``refreshed_at`` to the time the pass *started*. With ``comments`` on, every posts pass
is followed by a ``comments`` pass over ``comments/list`` (newest first, down to
``comments_watermark``; internal admin-only comments are not customer feedback and are
skipped). ``Page.has_more`` is true while a pass is in progress.

The walk stops at the first post at or below the watermark: created earlier, or the
watermark post itself. Posts created in the same millisecond as the watermark are
handed out again (storage dedupes): at least once beats a gap. ``skip`` advances by the
number of posts actually returned. A post deleted upstream while an incremental walk
is in progress shifts the offsets by one and may hide one post from that walk; the
next refresh returns it.

What the app can rely on, for every item: ``raw`` is the upstream object plus
``raw["andon"]``::

    {"status": "planned" | None, "tags": ["ui"], "board": "Feature Requests" | None,
     "duplicate_of": "<external_id of the original>" | None,
     "merged": ["<external_id>", ...],   # posts merged into this one (mergeHistory)
     "refresh": True | False}            # True when the item came from a refresh pass

Posts are ``kind="idea"`` with ``metrics={"votes": score, "comments": commentCount}``;
``external_id`` is Canny's post id. Comments are ``kind="comment"`` with
``thread_id`` set to their post's id and ``metrics={"likes": likeCount}``.

Merges: when post A is merged into B, Canny moves A's votes to B, stops listing A and
records A in ``B.mergeHistory``. For each entry the connector emits A again (from the
snapshot in the entry) with ``duplicate_of = B``: demand sums must skip items whose
``duplicate_of`` is set, their votes already count in the original. Merges are seen
when B is listed: on the next refresh (or an incremental walk, if B is new).

Deletions: a deleted post is simply no longer returned; nothing is emitted for it. The
app detects deletions on refresh only: when ``refreshed_at`` in the stored cursor moves
forward, an item of this source not returned (``andon.refresh`` true) since that pass
started is gone upstream.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx

from connectors import http
from connectors.base import Author, Cursor, Page, Rejected, SourceItem, parse_time
from connectors.errors import (
    AuthFailed,
    BadCursor,
    ConfigError,
    ConnectorError,
    ProtocolError,
    RequestRejected,
)
from connectors.registry import register

log = logging.getLogger(__name__)

CHANNEL = "canny"
CURSOR_VERSION = 1
BUILTIN_STATUSES = ("open", "under review", "planned", "in progress", "complete", "closed")
MAX_PAGE_SIZE = 100

Mode = Literal["incremental", "refresh", "comments"]
MODES: tuple[str, ...] = ("incremental", "refresh", "comments")


class _Malformed(Exception):
    """A record that cannot be normalised (becomes a ``Rejected``)."""


@dataclass(frozen=True, slots=True, order=True)
class _Mark:
    """A position in a newest-first list: creation time, then id."""

    created: datetime
    id: str

    def dump(self) -> dict[str, str]:
        return {"created": self.created.isoformat(), "id": self.id}

    @classmethod
    def load(cls, value: Any, name: str) -> _Mark | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise BadCursor(f"canny cursor: {name!r} must be an object or null")
        created, ident = value.get("created"), value.get("id")
        if not isinstance(created, str) or not isinstance(ident, str) or not ident:
            raise BadCursor(f"canny cursor: {name!r} needs 'created' and 'id' strings")
        return cls(_load_time(created, name), ident)

    def covers(self, created: datetime, ident: str) -> bool:
        """True when a record at (created, ident) was already handed out."""
        return created < self.created or ident == self.id


def _newer(current: _Mark | None, candidate: _Mark | None) -> _Mark | None:
    if candidate is None:
        return current
    if current is None:
        return candidate
    return max(current, candidate)


@dataclass(slots=True)
class _Pass:
    mode: Mode
    started_at: datetime
    skip: int = 0
    newest: _Mark | None = None
    last_ids: list[str] = field(default_factory=list)

    def dump(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "skip": self.skip,
            "newest": self.newest.dump() if self.newest else None,
            "last_ids": list(self.last_ids),
            "started_at": self.started_at.isoformat(),
        }

    @classmethod
    def load(cls, value: Any) -> _Pass | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise BadCursor("canny cursor: 'pass' must be an object or null")
        mode, skip, last_ids = value.get("mode"), value.get("skip"), value.get("last_ids", [])
        if mode not in MODES:
            raise BadCursor(f"canny cursor: unknown pass mode {mode!r}")
        if isinstance(skip, bool) or not isinstance(skip, int) or skip < 0:
            raise BadCursor("canny cursor: 'skip' must be a non-negative integer")
        if not isinstance(last_ids, list) or not all(isinstance(i, str) for i in last_ids):
            raise BadCursor("canny cursor: 'last_ids' must be a list of strings")
        started = value.get("started_at")
        if not isinstance(started, str):
            raise BadCursor("canny cursor: 'started_at' must be a string")
        return cls(
            mode=mode,
            started_at=_load_time(started, "started_at"),
            skip=skip,
            newest=_Mark.load(value.get("newest"), "newest"),
            last_ids=list(last_ids),
        )


@dataclass(slots=True)
class _State:
    watermark: _Mark | None = None
    comments_watermark: _Mark | None = None
    refreshed_at: datetime | None = None
    pass_: _Pass | None = None

    def dump(self) -> Cursor:
        return {
            "version": CURSOR_VERSION,
            "watermark": self.watermark.dump() if self.watermark else None,
            "comments_watermark": (
                self.comments_watermark.dump() if self.comments_watermark else None
            ),
            "refreshed_at": self.refreshed_at.isoformat() if self.refreshed_at else None,
            "pass": self.pass_.dump() if self.pass_ else None,
        }

    @classmethod
    def load(cls, cursor: Cursor | None) -> _State:
        if cursor is None:
            return cls()
        if not isinstance(cursor, dict):
            raise BadCursor("canny cursor must be a JSON object")
        if cursor.get("version") != CURSOR_VERSION:
            raise BadCursor(f"canny cursor: unsupported version {cursor.get('version')!r}")
        refreshed = cursor.get("refreshed_at")
        if refreshed is not None and not isinstance(refreshed, str):
            raise BadCursor("canny cursor: 'refreshed_at' must be a string or null")
        return cls(
            watermark=_Mark.load(cursor.get("watermark"), "watermark"),
            comments_watermark=_Mark.load(cursor.get("comments_watermark"), "comments_watermark"),
            refreshed_at=_load_time(refreshed, "refreshed_at") if refreshed else None,
            pass_=_Pass.load(cursor.get("pass")),
        )


def _load_time(value: str, name: str) -> datetime:
    try:
        return parse_time(value)
    except ValueError:
        raise BadCursor(f"canny cursor: {name!r} is not an ISO-8601 time") from None


@register("canny")
class CannyConnector:
    """Pull Canny posts (``kind="idea"``) and optionally comments; see the module doc."""

    kind = "canny"

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
        api_key_env = config.get("api_key_env")
        if not isinstance(api_key_env, str) or not api_key_env.strip():
            raise ConfigError("canny: 'api_key_env' must name the environment variable")
        self.api_key_env = api_key_env.strip()
        base_url = str(config.get("base_url") or "https://canny.io").strip().rstrip("/")
        if not base_url.startswith(("https://", "http://")):
            raise ConfigError("canny: 'base_url' must be an http(s) URL")
        self.base_url = base_url
        board_id = config.get("board_id")
        if board_id is not None and (not isinstance(board_id, str) or not board_id.strip()):
            raise ConfigError("canny: 'board_id' must be a board id string or null")
        self.board_id = board_id.strip() if isinstance(board_id, str) else None
        page_size = config.get("page_size", MAX_PAGE_SIZE)
        if isinstance(page_size, bool) or not isinstance(page_size, int):
            raise ConfigError("canny: 'page_size' must be an integer")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ConfigError(f"canny: 'page_size' must be within 1..{MAX_PAGE_SIZE}")
        self.page_size = page_size
        comments = config.get("comments", False)
        if not isinstance(comments, bool):
            raise ConfigError("canny: 'comments' must be true or false")
        self.comments = comments
        hours = config.get("refresh_every_hours", 24)
        if isinstance(hours, bool) or not isinstance(hours, int | float) or hours < 0:
            raise ConfigError("canny: 'refresh_every_hours' must be a number >= 0")
        self.refresh_every = timedelta(hours=hours)
        extra = config.get("statuses", [])
        if not isinstance(extra, list) or not all(isinstance(s, str) and s for s in extra):
            raise ConfigError("canny: 'statuses' must be a list of status names")
        self.statuses = tuple(dict.fromkeys([*BUILTIN_STATUSES, *extra]))
        self._env: Mapping[str, str] = os.environ if env is None else env
        if policy is None:
            policy = http.RetryPolicy() if sleep is None else http.RetryPolicy(sleep=sleep)
        self._policy = policy
        self._now = now or (lambda: datetime.now(UTC))
        self._client = http.make_client(self.base_url, transport=transport)

    def __repr__(self) -> str:
        board = f", board_id={self.board_id!r}" if self.board_id else ""
        return f"CannyConnector(base_url={self.base_url!r}{board})"

    def close(self) -> None:
        self._client.close()

    # -- the contract --------------------------------------------------------------

    def check(self) -> None:
        data = self._call("/api/v1/boards/list", {})
        boards = data.get("boards")
        if not isinstance(boards, list):
            raise ProtocolError("POST /api/v1/boards/list: expected a 'boards' array")
        if self.board_id is not None:
            ids = {b.get("id") for b in boards if isinstance(b, dict)}
            if self.board_id not in ids:
                raise ConfigError(f"canny: board {self.board_id!r} is not visible to this key")

    def pull(self, cursor: Cursor | None) -> Page:
        state = _State.load(cursor)
        if state.pass_ is None:
            now = self._now()
            due = state.refreshed_at is None or now - state.refreshed_at >= self.refresh_every
            state.pass_ = _Pass(mode="refresh" if due else "incremental", started_at=now)
        if state.pass_.mode == "comments":
            return self._comments_step(state, state.pass_)
        return self._posts_step(state, state.pass_)

    # -- passes --------------------------------------------------------------------

    def _posts_step(self, state: _State, step: _Pass) -> Page:
        refresh = step.mode == "refresh"
        body: dict[str, Any] = {
            "limit": self.page_size,
            "skip": step.skip,
            "sort": "oldest" if refresh else "newest",
            "status": ",".join(self.statuses),
        }
        if self.board_id is not None:
            body["boardID"] = self.board_id
        path = "/api/v1/posts/list"
        posts, has_more = self._list(path, body, "posts")

        ids = [p["id"] for p in posts if isinstance(p, dict) and isinstance(p.get("id"), str)]
        repeated = bool(ids) and set(ids) <= set(step.last_ids)
        if repeated:
            log.warning("canny: %s at skip=%d repeated the previous page", path, step.skip)
        items: list[SourceItem] = []
        rejects: list[Rejected] = []
        reached = False
        for index, post in enumerate([] if repeated else posts):
            location = f"{path} skip={step.skip} [{index}]"
            try:
                item = self._idea(post, refresh=refresh)
            except _Malformed as exc:
                rejects.append(_reject(exc, post, location))
                continue
            if (
                not refresh
                and state.watermark
                and state.watermark.covers(item.created_at, item.external_id)
            ):
                reached = True
                break
            items.append(item)
            step.newest = _newer(step.newest, _Mark(item.created_at, item.external_id))
            links, bad = self._merged(post, item.external_id, refresh=refresh, location=location)
            items.extend(links)
            rejects.extend(bad)

        if reached or repeated or not has_more or not posts:
            state.watermark = _newer(state.watermark, step.newest)
            if refresh:
                state.refreshed_at = step.started_at
            state.pass_ = (
                _Pass(mode="comments", started_at=step.started_at) if self.comments else None
            )
        else:
            step.skip += len(posts)
            step.last_ids = ids
        return Page(items, state.dump(), state.pass_ is not None, rejects)

    def _comments_step(self, state: _State, step: _Pass) -> Page:
        body: dict[str, Any] = {"limit": self.page_size, "skip": step.skip}
        if self.board_id is not None:
            body["boardID"] = self.board_id
        path = "/api/v1/comments/list"
        comments, has_more = self._list(path, body, "comments")

        ids = [c["id"] for c in comments if isinstance(c, dict) and isinstance(c.get("id"), str)]
        repeated = bool(ids) and set(ids) <= set(step.last_ids)
        if repeated:
            log.warning("canny: %s at skip=%d repeated the previous page", path, step.skip)
        items: list[SourceItem] = []
        rejects: list[Rejected] = []
        reached = False
        for index, comment in enumerate([] if repeated else comments):
            try:
                item, internal = self._comment(comment)
            except _Malformed as exc:
                rejects.append(_reject(exc, comment, f"{path} skip={step.skip} [{index}]"))
                continue
            mark = state.comments_watermark
            if mark and mark.covers(item.created_at, item.external_id):
                reached = True
                break
            step.newest = _newer(step.newest, _Mark(item.created_at, item.external_id))
            if not internal:
                items.append(item)

        if reached or repeated or not has_more or not comments:
            state.comments_watermark = _newer(state.comments_watermark, step.newest)
            state.pass_ = None
        else:
            step.skip += len(comments)
            step.last_ids = ids
        return Page(items, state.dump(), state.pass_ is not None, rejects)

    # -- normalisation ---------------------------------------------------------------

    def _idea(self, post: Any, *, refresh: bool) -> SourceItem:
        if not isinstance(post, dict):
            raise _Malformed("post is not a JSON object")
        post_id = _text(post, "id", required=True)
        title = _text(post, "title")
        details = _text(post, "details")
        text = "\n\n".join(part for part in (title, details) if part.strip())
        if not text:
            raise _Malformed("post has neither 'title' nor 'details'")
        created_at = _time(post, "created")
        changed = post.get("statusChangedAt")
        updated_at = created_at
        if isinstance(changed, str) and changed:
            updated_at = max(created_at, _time(post, "statusChangedAt"))
        status = post.get("status")
        if status is not None and not isinstance(status, str):
            raise _Malformed("'status' is not a string")
        merged = [
            entry["post"]["id"]
            for entry in _list_of(post, "mergeHistory")
            if isinstance(entry, dict)
            and isinstance(entry.get("post"), dict)
            and isinstance(entry["post"].get("id"), str)
        ]
        andon = {
            "status": status,
            "tags": _tag_names(post),
            "board": _board_name(post),
            "duplicate_of": None,
            "merged": merged,
            "refresh": refresh,
        }
        return SourceItem(
            channel=CHANNEL,
            kind="idea",
            external_id=post_id,
            text=text,
            title=title or None,
            created_at=created_at,
            updated_at=updated_at,
            author=_author(post.get("author")),
            url=post.get("url") if isinstance(post.get("url"), str) else None,
            metrics={"votes": _count(post, "score"), "comments": _count(post, "commentCount")},
            raw={**post, "andon": andon},
        )

    def _merged(
        self, post: dict[str, Any], original: str, *, refresh: bool, location: str
    ) -> tuple[list[SourceItem], list[Rejected]]:
        """Items for posts merged into ``original``, linked with ``duplicate_of``."""
        items: list[SourceItem] = []
        rejects: list[Rejected] = []
        for index, entry in enumerate(_list_of(post, "mergeHistory")):
            where = f"{location} mergeHistory[{index}]"
            try:
                if not isinstance(entry, dict) or not isinstance(entry.get("post"), dict):
                    raise _Malformed("mergeHistory entry has no 'post' object")
                merged: dict[str, Any] = entry["post"]
                merged_id = _text(merged, "id", required=True)
                title = _text(merged, "title")
                details = _text(merged, "details")
                text = "\n\n".join(part for part in (title, details) if part.strip())
                created = merged.get("created") or entry.get("created")
                if not isinstance(created, str):
                    raise _Malformed("merged post has no 'created' time")
                created_at = _time({"created": created}, "created")
                metrics = {
                    name: value
                    for name, key in (("votes", "score"), ("comments", "commentCount"))
                    if isinstance(value := merged.get(key), int) and not isinstance(value, bool)
                }
                status = merged.get("status")
                andon = {
                    "status": status if isinstance(status, str) else None,
                    "tags": _tag_names(merged),
                    "board": _board_name(post),
                    "duplicate_of": original,
                    "merged": [],
                    "refresh": refresh,
                }
                items.append(
                    SourceItem(
                        channel=CHANNEL,
                        kind="idea",
                        external_id=merged_id,
                        text=text or f"(merged into {original})",
                        title=title or None,
                        created_at=created_at,
                        updated_at=_merge_time(entry, created_at),
                        author=_author(merged.get("author")),
                        url=merged.get("url") if isinstance(merged.get("url"), str) else None,
                        metrics=metrics,
                        raw={**merged, "mergedInto": original, "andon": andon},
                    )
                )
            except _Malformed as exc:
                rejects.append(_reject(exc, entry, where))
        return items, rejects

    def _comment(self, comment: Any) -> tuple[SourceItem, bool]:
        if not isinstance(comment, dict):
            raise _Malformed("comment is not a JSON object")
        comment_id = _text(comment, "id", required=True)
        post = comment.get("post")
        if not isinstance(post, dict) or not isinstance(post.get("id"), str) or not post["id"]:
            raise _Malformed("comment has no 'post' with an 'id'")
        value = _text(comment, "value")
        internal = comment.get("internal", False)
        if not isinstance(internal, bool):
            raise _Malformed("'internal' is not a boolean")
        if not value.strip() and not internal:
            raise _Malformed("comment has an empty 'value'")
        likes = comment.get("likeCount", 0)
        if isinstance(likes, bool) or not isinstance(likes, int):
            raise _Malformed("'likeCount' is not an integer")
        andon: dict[str, Any] = {
            "status": None,
            "tags": [],
            "board": _board_name(comment),
            "duplicate_of": None,
            "merged": [],
            "refresh": False,
        }
        item = SourceItem(
            channel=CHANNEL,
            kind="comment",
            external_id=comment_id,
            text=value or "(internal)",
            created_at=_time(comment, "created"),
            author=_author(comment.get("author")),
            url=post.get("url") if isinstance(post.get("url"), str) else None,
            metrics={"likes": likes},
            thread_id=post["id"],
            raw={**comment, "andon": andon},
        )
        return item, internal

    # -- HTTP ------------------------------------------------------------------------

    def _api_key(self) -> str:
        key = self._env.get(self.api_key_env, "").strip()
        if not key:
            raise AuthFailed(f"canny: environment variable {self.api_key_env} is not set")
        return key

    def _list(self, path: str, body: dict[str, Any], key: str) -> tuple[list[Any], bool]:
        data = self._call(path, body)
        records, has_more = data.get(key), data.get("hasMore")
        if not isinstance(records, list) or not isinstance(has_more, bool):
            raise ProtocolError(f"POST {path}: expected {{'{key}': [...], 'hasMore': bool}}")
        return records, has_more

    def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        api_key = self._api_key()
        try:
            response = http.request(
                self._client,
                "POST",
                path,
                policy=self._policy,
                allow={400},
                json={"apiKey": api_key, **body},
            )
            data = http.json_body(response)
            if response.status_code == 400:
                error = data.get("error") if isinstance(data, dict) else None
                message = error if isinstance(error, str) else "bad request"
                if "api key" in message.lower():
                    raise AuthFailed(f"POST {path}: Canny refused the API key ({message})")
                raise RequestRejected(f"POST {path}: 400 {message}", 400, response.text)
            if not isinstance(data, dict):
                raise ProtocolError(f"POST {path}: expected a JSON object")
            return data
        except ConnectorError as exc:
            _scrub(exc, api_key)
            raise


def _scrub(exc: ConnectorError, secret: str) -> None:
    """Remove ``secret`` from an error in place, should upstream ever echo it back."""
    exc.args = tuple(a.replace(secret, "***") if isinstance(a, str) else a for a in exc.args)
    if isinstance(exc, RequestRejected):
        exc.body = exc.body.replace(secret, "***")


def _reject(exc: _Malformed, record: Any, location: str) -> Rejected:
    ident = record.get("id") if isinstance(record, dict) else None
    return Rejected(
        reason=str(exc),
        payload=json.dumps(record, sort_keys=True, default=str),
        external_id=ident if isinstance(ident, str) and ident else None,
        location=location,
    )


def _text(record: dict[str, Any], key: str, *, required: bool = False) -> str:
    value = record.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise _Malformed(f"missing or invalid '{key}'")
    return value


def _time(record: dict[str, Any], key: str) -> datetime:
    value = record.get(key)
    if not isinstance(value, str):
        raise _Malformed(f"missing '{key}' time")
    try:
        return parse_time(value)
    except ValueError:
        raise _Malformed(f"'{key}' is not an ISO-8601 time: {value!r}") from None


def _merge_time(entry: dict[str, Any], fallback: datetime) -> datetime:
    value = entry.get("created")
    if isinstance(value, str):
        try:
            return max(fallback, parse_time(value))
        except ValueError:
            return fallback
    return fallback


def _count(record: dict[str, Any], key: str) -> int:
    value = record.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _Malformed(f"'{key}' is not a non-negative integer: {value!r}")
    return value


def _list_of(record: dict[str, Any], key: str) -> list[Any]:
    value = record.get(key)
    return value if isinstance(value, list) else []


def _tag_names(record: dict[str, Any]) -> list[str]:
    return [
        tag["name"]
        for tag in _list_of(record, "tags")
        if isinstance(tag, dict) and isinstance(tag.get("name"), str)
    ]


def _board_name(record: dict[str, Any]) -> str | None:
    board = record.get("board")
    if isinstance(board, dict) and isinstance(board.get("name"), str):
        name: str = board["name"]
        return name
    return None


def _author(user: Any) -> Author:
    if not isinstance(user, dict):
        return Author()  # the author's account was deleted
    ident, name, email = (user.get(k) for k in ("id", "name", "email"))
    return Author(
        id=ident if isinstance(ident, str) else None,
        display_name=name if isinstance(name, str) else None,
        email=email if isinstance(email, str) else None,
    )

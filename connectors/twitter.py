"""X (Twitter) API v2: recent search and user mentions.

Both endpoints answer newest first and page backwards with ``meta.next_token``. The
watermark (``since_id``) may only move once the whole ``next_token`` chain has been
walked: storing it earlier would turn an interruption into a permanent gap. So the
cursor has two shapes::

    {"since_id": "1790000000000000002"}            at rest (or {} before the first item)
    {"since_id": "1790000000000000002",             while walking a chain:
     "start_time": null,                              the old bounds, sent again with the token
     "next_token": "b26v89c19zqg8o3fpz5m",
     "newest_id": "1790000000000000042"}              the chain's first page's meta.newest_id

Without a watermark the connector asks for ``start_time = now - lookback_days + ε``. A
``since_id`` older than the search window is refused upstream with a 400 invalid-request;
the connector then falls back to the same ``start_time`` (at least once: storage dedupes).

Edited tweets get a new id; ``edit_history_tweet_ids[0]`` (the original id) is the
``external_id`` so an edit updates the item it edits. The current id stays in ``raw``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeGuard

import httpx

from connectors import http
from connectors.base import Author, Cursor, Page, Rejected, SourceItem, parse_time
from connectors.errors import AuthFailed, BadCursor, ConfigError, ProtocolError, RequestRejected
from connectors.registry import register

DEFAULT_BASE_URL = "https://api.twitter.com"
DEFAULT_TOKEN_ENV = "ANDON_TWITTER_BEARER_TOKEN"
TWEET_FIELDS = (
    "author_id,conversation_id,created_at,edit_history_tweet_ids,lang,public_metrics,"
    "referenced_tweets"
)
USER_FIELDS = "name,username,public_metrics"
EXPANSIONS = "author_id"
SEARCH_WINDOW_DAYS = 7
# Keep the fallback start_time safely inside the window: the request takes time to arrive.
START_TIME_MARGIN = timedelta(seconds=60)
INVALID_REQUEST = "https://api.twitter.com/2/problems/invalid-request"
MAX_RESULTS_RANGE = {"search": (10, 100), "mentions": (5, 100)}
METRICS = {
    "likes": "like_count",
    "reposts": "retweet_count",
    "replies": "reply_count",
    "quotes": "quote_count",
}


@register("twitter")
class TwitterConnector:
    """Pull tweets from recent search (``mode="search"``) or a user's mentions."""

    kind = "twitter"

    def __init__(
        self,
        config: Mapping[str, Any],
        *,
        env: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.mode = str(config.get("mode", "search"))
        if self.mode not in MAX_RESULTS_RANGE:
            raise ConfigError(f"twitter: mode must be 'search' or 'mentions', not {self.mode!r}")
        self.query = str(config.get("query") or "").strip()
        self.user_id = str(config.get("user_id") or "").strip()
        if self.mode == "search" and not self.query:
            raise ConfigError("twitter: mode 'search' needs a non-empty 'query'")
        if self.mode == "mentions" and not self.user_id.isdigit():
            raise ConfigError("twitter: mode 'mentions' needs a numeric 'user_id'")
        self.token_env = str(config.get("bearer_token_env") or DEFAULT_TOKEN_ENV)
        self.base_url = str(config.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
        if not self.base_url.startswith(("https://", "http://")):
            raise ConfigError("twitter: 'base_url' must be an http(s) URL")
        low, high = MAX_RESULTS_RANGE[self.mode]
        self.max_results = _int_option(config, "max_results", 100)
        if not low <= self.max_results <= high:
            raise ConfigError(
                f"twitter: 'max_results' must be within {low}..{high} for {self.mode}"
            )
        self.retweets = str(config.get("retweets", "skip"))
        if self.retweets not in ("skip", "link"):
            raise ConfigError("twitter: 'retweets' must be 'skip' or 'link'")
        self.lookback_days = _int_option(config, "lookback_days", SEARCH_WINDOW_DAYS)
        if self.lookback_days < 1 or (
            self.mode == "search" and self.lookback_days > SEARCH_WINDOW_DAYS
        ):
            raise ConfigError(
                f"twitter: 'lookback_days' must be 1..{SEARCH_WINDOW_DAYS} for recent search"
                if self.mode == "search"
                else "twitter: 'lookback_days' must be at least 1"
            )
        self._env: Mapping[str, str] = os.environ if env is None else env
        self._now = now or (lambda: datetime.now(UTC))
        self._policy = http.RetryPolicy() if sleep is None else http.RetryPolicy(sleep=sleep)
        self._client = http.make_client(self.base_url, transport=transport)

    def __repr__(self) -> str:
        target = f"query={self.query!r}" if self.mode == "search" else f"user_id={self.user_id!r}"
        return f"TwitterConnector(mode={self.mode!r}, {target}, base_url={self.base_url!r})"

    @property
    def _path(self) -> str:
        if self.mode == "search":
            return "/2/tweets/search/recent"
        return f"/2/users/{self.user_id}/mentions"

    @property
    def _token_param(self) -> str:
        # Search accepts both names; mentions only knows pagination_token.
        return "next_token" if self.mode == "search" else "pagination_token"

    def _headers(self) -> dict[str, str]:
        token = self._env.get(self.token_env, "").strip()
        if not token:
            raise AuthFailed(f"twitter: environment variable {self.token_env} is not set")
        return {"Authorization": f"Bearer {token}"}

    def check(self) -> None:
        """One small authenticated request against the configured endpoint."""
        params: dict[str, str] = {"max_results": str(MAX_RESULTS_RANGE[self.mode][0])}
        if self.mode == "search":
            params["query"] = self.query
        response = http.request(
            self._client,
            "GET",
            self._path,
            policy=self._policy,
            params=params,
            headers=self._headers(),
        )
        _envelope(response)

    def pull(self, cursor: Cursor | None) -> Page:
        state = _ChainState.load(cursor)
        headers = self._headers()
        response = self._get(state, headers)
        if response.status_code == 400:
            problem = _problem(response)
            if (state.since_id and _names_parameter(problem, "since_id")) or (
                state.start_time and _names_parameter(problem, "start_time")
            ):
                # The bound fell out of the search window: restart from the window's start.
                state = _ChainState(start_time=self._window_start())
            elif state.next_token and _names_parameter(problem, self._token_param):
                # The token expired: walk the chain again from the old bounds.
                state = _ChainState(since_id=state.since_id, start_time=state.start_time)
            else:
                raise RequestRejected(
                    f"GET {self._path}: 400 {problem.get('detail') or problem.get('title')}",
                    400,
                    response.text,
                )
            response = self._get(state, headers)
            if response.status_code == 400:
                raise RequestRejected(f"GET {self._path}: 400 after fallback", 400, response.text)
        body = _envelope(response)
        return self._page(state, body)

    def _get(self, state: _ChainState, headers: Mapping[str, str]) -> httpx.Response:
        params: dict[str, str] = {
            "max_results": str(self.max_results),
            "tweet.fields": TWEET_FIELDS,
            "user.fields": USER_FIELDS,
            "expansions": EXPANSIONS,
        }
        if self.mode == "search":
            params["query"] = self.query
        # Never both bounds: on mentions since_id silently wins over start_time.
        if state.since_id:
            params["since_id"] = state.since_id
        else:
            params["start_time"] = state.start_time or self._window_start()
        if state.next_token:
            params[self._token_param] = state.next_token
        return http.request(
            self._client,
            "GET",
            self._path,
            policy=self._policy,
            allow={400},
            params=params,
            headers=headers,
        )

    def _window_start(self) -> str:
        start = self._now().astimezone(UTC) - timedelta(days=self.lookback_days)
        return (start + START_TIME_MARGIN).strftime("%Y-%m-%dT%H:%M:%SZ")

    def _page(self, state: _ChainState, body: Mapping[str, Any]) -> Page:
        data = body.get("data", [])
        meta = body.get("meta", {})
        includes = body.get("includes", {})
        if not isinstance(data, list) or not isinstance(meta, dict):
            raise ProtocolError(f"GET {self._path}: 'data' must be a list and 'meta' an object")
        users: dict[str, Mapping[str, Any]] = {}
        if isinstance(includes, dict) and isinstance(includes.get("users"), list):
            for user in includes["users"]:
                if isinstance(user, dict) and isinstance(user.get("id"), str):
                    users[user["id"]] = user

        items: list[SourceItem] = []
        rejects: list[Rejected] = []
        page_ids: list[int] = []
        for index, tweet in enumerate(data):
            location = f"{self._path} data[{index}]"
            if isinstance(tweet, dict) and _is_id(tweet.get("id")):
                page_ids.append(int(tweet["id"]))
            try:
                item = self._item(tweet, users)
            except _Malformed as exc:
                tweet_id = tweet.get("id") if isinstance(tweet, dict) else None
                rejects.append(
                    Rejected(
                        reason=str(exc),
                        payload=json.dumps(tweet, sort_keys=True, default=str),
                        external_id=tweet_id if isinstance(tweet_id, str) else None,
                        location=location,
                    )
                )
                continue
            if item is not None:
                items.append(item)

        page_newest = meta.get("newest_id")
        if not _is_id(page_newest):
            page_newest = str(max(page_ids)) if page_ids else None
        chain_newest = state.newest_id or page_newest
        next_token = meta.get("next_token")
        if next_token is not None:
            if not isinstance(next_token, str) or not next_token:
                raise ProtocolError(f"GET {self._path}: meta.next_token is not a string")
            if next_token == state.next_token:
                raise ProtocolError(f"GET {self._path}: next_token repeated; refusing to loop")
            pending = _ChainState(
                since_id=state.since_id,
                start_time=state.start_time,
                next_token=next_token,
                newest_id=chain_newest,
            )
            return Page(items=items, next_cursor=pending.dump(), has_more=True, rejects=rejects)
        # The chain is complete: only now may the watermark move.
        watermark = _max_id(state.since_id, chain_newest)
        done: Cursor = {"since_id": watermark} if watermark else {}
        return Page(items=items, next_cursor=done, has_more=False, rejects=rejects)

    def _item(self, tweet: Any, users: Mapping[str, Mapping[str, Any]]) -> SourceItem | None:
        if not isinstance(tweet, dict):
            raise _Malformed("tweet is not a JSON object")
        tweet_id = tweet.get("id")
        if not _is_id(tweet_id):
            raise _Malformed("missing or invalid 'id'")
        text = tweet.get("text")
        if not isinstance(text, str):
            raise _Malformed("missing 'text'")
        created_raw = tweet.get("created_at")
        if not isinstance(created_raw, str):
            raise _Malformed("missing 'created_at'")
        try:
            created_at = parse_time(created_raw)
        except ValueError:
            raise _Malformed(f"invalid 'created_at' {created_raw[:40]!r}") from None

        references = tweet.get("referenced_tweets") or []
        retweet_of = None
        if isinstance(references, list):
            for ref in references:
                if isinstance(ref, dict) and ref.get("type") == "retweeted":
                    retweet_of = ref.get("id")
        if retweet_of is not None and self.retweets == "skip":
            return None

        history = tweet.get("edit_history_tweet_ids")
        original_id = tweet_id
        if isinstance(history, list) and history and _is_id(history[0]):
            original_id = history[0]
        edited = original_id != tweet_id

        author_id = tweet.get("author_id")
        user = users.get(author_id, {}) if isinstance(author_id, str) else {}
        username = user.get("username") if isinstance(user.get("username"), str) else None
        display = user.get("name") if isinstance(user.get("name"), str) else None
        user_metrics = user.get("public_metrics")
        followers = user_metrics.get("followers_count") if isinstance(user_metrics, dict) else None
        author = Author(
            id=author_id if isinstance(author_id, str) else None,
            handle=username,
            display_name=display,
            followers=followers if isinstance(followers, int) else None,
        )

        public = tweet.get("public_metrics")
        metrics: dict[str, int] = {}
        if isinstance(public, dict):
            for name, key in METRICS.items():
                value = public.get(key)
                if isinstance(value, int) and not isinstance(value, bool):
                    metrics[name] = value

        lang = tweet.get("lang")
        conversation = tweet.get("conversation_id")
        if retweet_of is not None:
            thread_id: str | None = str(retweet_of)
        elif isinstance(conversation, str) and conversation != original_id:
            thread_id = conversation
        else:
            thread_id = None
        url = (
            f"https://x.com/{username}/status/{tweet_id}"
            if username
            else f"https://x.com/i/web/status/{tweet_id}"
        )
        return SourceItem(
            channel="twitter",
            kind="post",
            external_id=original_id,
            text=text,
            created_at=created_at,
            author=author,
            updated_at=created_at if edited else None,
            url=url,
            metrics=metrics,
            lang=lang if isinstance(lang, str) and lang and lang != "und" else None,
            thread_id=thread_id,
            raw=tweet,
        )


class _Malformed(Exception):
    """A tweet that cannot become a SourceItem; it becomes a Rejected."""


class _ChainState:
    """The cursor, parsed: watermark bounds plus the pending ``next_token`` chain."""

    __slots__ = ("newest_id", "next_token", "since_id", "start_time")

    def __init__(
        self,
        *,
        since_id: str | None = None,
        start_time: str | None = None,
        next_token: str | None = None,
        newest_id: str | None = None,
    ) -> None:
        self.since_id = since_id
        self.start_time = start_time
        self.next_token = next_token
        self.newest_id = newest_id

    @classmethod
    def load(cls, cursor: Cursor | None) -> _ChainState:
        if cursor is None:
            return cls()
        if not isinstance(cursor, dict):
            raise BadCursor("twitter: the cursor must be a JSON object")
        unknown = set(cursor) - {"since_id", "start_time", "next_token", "newest_id"}
        if unknown:
            raise BadCursor(f"twitter: unknown cursor keys {sorted(unknown)}")
        since_id = cursor.get("since_id")
        newest_id = cursor.get("newest_id")
        next_token = cursor.get("next_token")
        start_time = cursor.get("start_time")
        for name, value in (("since_id", since_id), ("newest_id", newest_id)):
            if value is not None and not _is_id(value):
                raise BadCursor(f"twitter: cursor {name} must be a numeric string")
        if next_token is not None and (not isinstance(next_token, str) or not next_token):
            raise BadCursor("twitter: cursor next_token must be a non-empty string")
        if start_time is not None:
            try:
                parse_time(start_time)
            except (TypeError, ValueError, AttributeError):
                raise BadCursor("twitter: cursor start_time must be an ISO-8601 time") from None
        return cls(
            since_id=since_id, start_time=start_time, next_token=next_token, newest_id=newest_id
        )

    def dump(self) -> Cursor:
        return {
            "since_id": self.since_id,
            "start_time": self.start_time,
            "next_token": self.next_token,
            "newest_id": self.newest_id,
        }


def _int_option(config: Mapping[str, Any], key: str, default: int) -> int:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConfigError(f"twitter: {key!r} must be an integer")
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"twitter: {key!r} must be an integer") from None


def _is_id(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and value.isascii() and value.isdigit()


def _max_id(*ids: str | None) -> str | None:
    present = [int(value) for value in ids if value]
    return str(max(present)) if present else None


def _envelope(response: httpx.Response) -> dict[str, Any]:
    body = http.json_body(response)
    path = response.request.url.path
    if not isinstance(body, dict):
        raise ProtocolError(f"{path}: expected a JSON object")
    errors = body.get("errors")
    if response.status_code == 200 and "meta" not in body and isinstance(errors, list):
        # A 200 with only errors: the request as a whole failed (e.g. unknown user id).
        details = [
            str(error.get("detail") or error.get("message") or error.get("title"))
            for error in errors
            if isinstance(error, dict)
        ]
        summary = "; ".join(details)[:300] or "errors without details"
        if any(
            isinstance(error, dict) and str(error.get("type", "")).endswith("/resource-not-found")
            for error in errors
        ):
            raise ConfigError(f"twitter: {path}: {summary}")
        raise ProtocolError(f"{path}: 200 without meta: {summary}")
    return body


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        return _envelope(response)
    except ProtocolError:
        raise RequestRejected(
            f"{response.request.url.path}: 400 with an unreadable body", 400, response.text
        ) from None


def _names_parameter(problem: Mapping[str, Any], parameter: str) -> bool:
    """Is this an invalid-request problem about ``parameter``?"""
    if problem.get("type") not in (INVALID_REQUEST, None) and problem.get("title") != (
        "Invalid Request"
    ):
        return False
    errors = problem.get("errors")
    if not isinstance(errors, list):
        return False
    for error in errors:
        if not isinstance(error, dict):
            continue
        parameters = error.get("parameters")
        if isinstance(parameters, dict) and parameter in parameters:
            return True
    return False

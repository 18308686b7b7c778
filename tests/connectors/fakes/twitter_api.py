"""A local X API v2 that speaks the wire format of recent search and user mentions.

What it honours (see reference/connectors.md §1): ``query`` (plain terms, ``-`` negation,
``from:``, ``lang:``, ``is:retweet``), ``since_id`` / ``until_id`` (exclusive),
``start_time`` / ``end_time`` (inclusive / exclusive, inside the 7-day window for search),
``max_results`` (10-100 search, 5-100 mentions), ``next_token`` (search) and
``pagination_token`` (both), ``tweet.fields`` / ``user.fields`` / ``expansions=author_id``.
Answers are newest first; ``data`` is absent when nothing matched; ``meta`` carries
``newest_id``, ``oldest_id``, ``result_count`` and ``next_token`` only when another page
exists (mentions also ``previous_token``). Unknown or invalid parameters, and a
``since_id`` older than the window, get the 400 invalid-request problem.

Tweet ids are snowflakes derived from ``created_at`` (so the fake can tell how old a
``since_id`` is). Every answer carries ``x-rate-limit-*`` headers; the reset is wall-clock
epoch seconds because that is what clients compare it with.
"""

from __future__ import annotations

import base64
import itertools
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from connectors.base import parse_time
from connectors.twitter import TwitterConnector
from tests.connectors.contract import ContractCase, ContractRig
from tests.connectors.fakes import Faults, json_response

TWITTER_EPOCH_MS = 1288834974657
WINDOW = timedelta(days=7)
RATE_WINDOW_SECONDS = 15 * 60
PROBLEMS = "https://api.twitter.com/2/problems"
TOKEN = "x-test-bearer-Zq81"
TOKEN_ENV = "ANDON_TWITTER_BEARER_TOKEN"

TWEET_FIELDS = frozenset(
    [
        "attachments",
        "author_id",
        "context_annotations",
        "conversation_id",
        "created_at",
        "edit_controls",
        "edit_history_tweet_ids",
        "entities",
        "geo",
        "id",
        "in_reply_to_user_id",
        "lang",
        "non_public_metrics",
        "organic_metrics",
        "possibly_sensitive",
        "promoted_metrics",
        "public_metrics",
        "referenced_tweets",
        "reply_settings",
        "source",
        "text",
        "withheld",
    ]
)
USER_FIELDS = frozenset(
    [
        "created_at",
        "description",
        "entities",
        "id",
        "location",
        "name",
        "pinned_tweet_id",
        "profile_image_url",
        "protected",
        "public_metrics",
        "url",
        "username",
        "verified",
        "withheld",
    ]
)
EXPANSIONS = frozenset(
    [
        "attachments.media_keys",
        "attachments.poll_ids",
        "author_id",
        "edit_history_tweet_ids",
        "entities.mentions.username",
        "geo.place_id",
        "in_reply_to_user_id",
        "referenced_tweets.id",
        "referenced_tweets.id.author_id",
    ]
)
COMMON_PARAMS = frozenset(
    [
        "start_time",
        "end_time",
        "since_id",
        "until_id",
        "max_results",
        "pagination_token",
        "tweet.fields",
        "user.fields",
        "expansions",
        "media.fields",
        "poll.fields",
        "place.fields",
    ]
)
SEARCH_PARAMS = COMMON_PARAMS | {"query", "next_token", "sort_order"}
DEFAULT_TWEET_FIELDS = ("id", "text", "edit_history_tweet_ids")
DEFAULT_USER_FIELDS = ("id", "name", "username")


def snowflake(moment: datetime, sequence: int = 0) -> str:
    """The id X would give a tweet created at ``moment``."""
    millis = int(moment.timestamp() * 1000) - TWITTER_EPOCH_MS
    return str((millis << 22) | (sequence & 0x3FFFFF))


def snowflake_time(tweet_id: str) -> datetime:
    millis = (int(tweet_id) >> 22) + TWITTER_EPOCH_MS
    return datetime.fromtimestamp(millis / 1000, tz=UTC)


def x_time(moment: datetime) -> str:
    """``2021-01-06T18:40:40.000Z``, the way X writes ``created_at``."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


class FakeXApi:
    """In-memory tweets and users behind ``httpx.MockTransport``."""

    def __init__(
        self,
        *,
        token: str = TOKEN,
        now: Callable[[], datetime] | None = None,
        rate_limit: int = 450,
    ) -> None:
        self.token = token
        self.now = now or (lambda: datetime.now(UTC))
        self.rate_limit = rate_limit
        self.remaining = rate_limit
        self.tweets: list[dict[str, Any]] = []  # newest first
        self.users: dict[str, dict[str, Any]] = {}
        self.wire_edits: dict[str, Callable[[dict[str, Any]], None]] = {}
        self.faults = Faults()
        self.requests: list[httpx.Request] = []
        self._sequence = itertools.count(1)
        self._clock: datetime | None = None

    # -- seeding -----------------------------------------------------------------------

    def add_user(
        self, username: str, *, name: str | None = None, followers: int = 0, user_id: str = ""
    ) -> dict[str, Any]:
        user_id = user_id or str(1000 + len(self.users))
        user = {
            "id": user_id,
            "name": name or username.title(),
            "username": username,
            "created_at": "2015-03-01T12:00:00.000Z",
            "description": f"{username} writes about things",
            "protected": False,
            "verified": False,
            "public_metrics": {
                "followers_count": followers,
                "following_count": 12,
                "tweet_count": 345,
                "listed_count": 1,
            },
        }
        self.users[user_id] = user
        return user

    def _next_time(self, created_at: datetime | None) -> datetime:
        if created_at is None:
            base = self._clock or (self.now() - timedelta(hours=3))
            created_at = base + timedelta(seconds=1)
        self._clock = created_at if self._clock is None else max(self._clock, created_at)
        return created_at

    def add_tweet(
        self,
        text: str,
        *,
        author: dict[str, Any],
        created_at: datetime | None = None,
        lang: str = "en",
        likes: int = 0,
        retweets: int = 0,
        replies: int = 0,
        quotes: int = 0,
        reply_to: dict[str, Any] | None = None,
        wire_edit: Callable[[dict[str, Any]], None] | None = None,
        _references: Sequence[dict[str, str]] = (),
        _history: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Store a tweet; ``wire_edit`` mutates its JSON on the way out (malformed records)."""
        moment = self._next_time(created_at)
        tweet_id = snowflake(moment, next(self._sequence))
        references = list(_references)
        if reply_to is not None:
            references.append({"type": "replied_to", "id": reply_to["id"]})
        tweet: dict[str, Any] = {
            "id": tweet_id,
            "text": text,
            "edit_history_tweet_ids": [*_history, tweet_id],
            "author_id": author["id"],
            "created_at": x_time(moment),
            "conversation_id": reply_to["conversation_id"] if reply_to else tweet_id,
            "lang": lang,
            "public_metrics": {
                "retweet_count": retweets,
                "reply_count": replies,
                "like_count": likes,
                "quote_count": quotes,
            },
            "possibly_sensitive": False,
            "reply_settings": "everyone",
            "source": "Twitter Web App",
            "edit_controls": {
                "edits_remaining": 5,
                "is_edit_eligible": True,
                "editable_until": x_time(moment + timedelta(minutes=30)),
            },
        }
        if reply_to is not None:
            tweet["in_reply_to_user_id"] = reply_to["author_id"]
        if references:
            tweet["referenced_tweets"] = references
        if wire_edit is not None:
            self.wire_edits[tweet_id] = wire_edit
        self.tweets.append(tweet)
        self.tweets.sort(key=lambda t: int(t["id"]), reverse=True)
        return tweet

    def retweet(self, original: dict[str, Any], *, by: dict[str, Any]) -> dict[str, Any]:
        author = self.users[original["author_id"]]
        text = f"RT @{author['username']}: {original['text']}"[:140]
        return self.add_tweet(
            text,
            author=by,
            lang=original["lang"],
            _references=[{"type": "retweeted", "id": original["id"]}],
        )

    def edit(self, tweet: dict[str, Any], new_text: str) -> dict[str, Any]:
        """An edit is a new tweet whose history starts with the original id."""
        history = tweet["edit_history_tweet_ids"]
        edited = self.add_tweet(
            new_text,
            author=self.users[tweet["author_id"]],
            lang=tweet["lang"],
            _references=tweet.get("referenced_tweets", ()),
            _history=history,
        )
        for other in self.tweets:
            if other["id"] in history:
                other["edit_controls"]["edits_remaining"] -= 1
        return edited

    def rate_limit_after(self, calls: int) -> None:
        """Allow ``calls`` more requests in this window, then answer 429."""
        self.remaining = calls

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    # -- the API -----------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        response = self._dispatch(request)
        # Every answer carries the limits; the 429 already set remaining to 0.
        reset = int(time.time()) + RATE_WINDOW_SECONDS
        for name, value in self._limit_headers(max(self.remaining, 0), reset).items():
            response.headers.setdefault(name, value)
        return response

    def _dispatch(self, request: httpx.Request) -> httpx.Response:
        reset = int(time.time()) + RATE_WINDOW_SECONDS
        fault = self.faults.take(request, _problem_body(503, "Service Unavailable"))
        if fault is not None:
            return fault
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return json_response(401, _problem_body(401, "Unauthorized"))
        if self.remaining <= 0:
            return json_response(
                429,
                _problem_body(429, "Too Many Requests"),
                self._limit_headers(0, reset),
            )
        self.remaining -= 1
        headers = self._limit_headers(self.remaining, reset)
        path = request.url.path
        if request.method != "GET":
            return json_response(405, _problem_body(405, "Method Not Allowed"), headers)
        if path == "/2/tweets/search/recent":
            return self._timeline(request, headers, search=True, user=None)
        parts = path.split("/")
        if len(parts) == 5 and parts[1:3] == ["2", "users"] and parts[4] == "mentions":
            user_id = parts[3]
            if user_id not in self.users:
                return json_response(
                    200,
                    {
                        "errors": [
                            {
                                "value": user_id,
                                "detail": f"Could not find user with id: [{user_id}].",
                                "title": "Not Found Error",
                                "resource_type": "user",
                                "parameter": "id",
                                "resource_id": user_id,
                                "type": f"{PROBLEMS}/resource-not-found",
                            }
                        ]
                    },
                    headers,
                )
            return self._timeline(request, headers, search=False, user=self.users[user_id])
        return json_response(404, _problem_body(404, "Not Found"), headers)

    def _limit_headers(self, remaining: int, reset: int) -> dict[str, str]:
        return {
            "x-rate-limit-limit": str(self.rate_limit),
            "x-rate-limit-remaining": str(remaining),
            "x-rate-limit-reset": str(reset),
        }

    def _timeline(
        self,
        request: httpx.Request,
        headers: dict[str, str],
        *,
        search: bool,
        user: dict[str, Any] | None,
    ) -> httpx.Response:
        params = request.url.params
        try:
            query = self._validate(params, search=search)
        except _Invalid as exc:
            return json_response(400, exc.body(), headers)
        now = self.now()
        since_id = params.get("since_id")
        until_id = params.get("until_id")
        start = parse_time(params["start_time"]) if "start_time" in params else None
        end = parse_time(params["end_time"]) if "end_time" in params else None
        token = params.get("pagination_token") or params.get("next_token")
        below = _decode_token(token) if token else None
        max_results = int(params.get("max_results", "10"))

        matches = []
        for tweet in self.tweets:
            created = parse_time(tweet["created_at"])
            tweet_id = int(tweet["id"])
            if search and created < now - WINDOW:
                continue
            if since_id is not None and tweet_id <= int(since_id):
                continue
            if until_id is not None and tweet_id >= int(until_id):
                continue
            if start is not None and created < start:
                continue
            if end is not None and created >= end:
                continue
            if below is not None and tweet_id >= below:
                continue
            if search and not self._matches(tweet, query):
                continue
            if user is not None and f"@{user['username']}".lower() not in tweet["text"].lower():
                continue
            matches.append(tweet)
        page = matches[:max_results]
        body: dict[str, Any] = {}
        if page:
            tweet_fields = _field_list(params.get("tweet.fields"))
            body["data"] = [self._project(tweet, tweet_fields) for tweet in page]
            if "author_id" in _field_list(params.get("expansions")):
                user_fields = _field_list(params.get("user.fields"))
                authors = dict.fromkeys(tweet["author_id"] for tweet in page)
                body["includes"] = {
                    "users": [
                        _pick(self.users[author_id], DEFAULT_USER_FIELDS, user_fields)
                        for author_id in authors
                        if author_id in self.users
                    ]
                }
            meta: dict[str, Any] = {
                "newest_id": page[0]["id"],
                "oldest_id": page[-1]["id"],
                "result_count": len(page),
            }
            if len(matches) > len(page):
                meta["next_token"] = _encode_token(int(page[-1]["id"]))
            if not search and token:
                meta["previous_token"] = _encode_token(int(page[0]["id"]) + 1)
        else:
            meta = {"result_count": 0}
        body["meta"] = meta
        return json_response(200, body, headers)

    def _validate(self, params: httpx.QueryParams, *, search: bool) -> str:
        allowed = SEARCH_PARAMS if search else COMMON_PARAMS
        for name in params:
            if name not in allowed:
                raise _Invalid(
                    name,
                    params[name],
                    f"The query parameter [{name}] is not one of [{', '.join(sorted(allowed))}]",
                )
        query = str(params.get("query", ""))
        if search and not query.strip():
            raise _Invalid("query", query, "The `query` query parameter can not be empty")
        low, high = (10, 100) if search else (5, 100)
        if "max_results" in params:
            value = params["max_results"]
            if not value.isdigit() or not low <= int(value) <= high:
                raise _Invalid(
                    "max_results",
                    value,
                    f"The `max_results` query parameter value [{value}] is not between "
                    f"{low} and {high}",
                )
        for name, valid in (
            ("tweet.fields", TWEET_FIELDS),
            ("user.fields", USER_FIELDS),
            ("expansions", EXPANSIONS),
        ):
            for field in _field_list(params.get(name)):
                if field not in valid:
                    raise _Invalid(
                        name,
                        field,
                        f"The `{name}` query parameter value [{field}] is not one of "
                        f"[{', '.join(sorted(valid))}]",
                    )
        oldest = self.now() - WINDOW
        for name in ("since_id", "until_id"):
            if name in params:
                value = params[name]
                if not value.isdigit():
                    raise _Invalid(
                        name, value, f"The `{name}` query parameter value [{value}] is not valid"
                    )
                if search and name == "since_id" and snowflake_time(value) < oldest:
                    raise _Invalid(
                        name,
                        value,
                        f"Invalid '{name}':'{value}'. 'since_id' must be a tweet id created "
                        f"after {x_time(oldest)}. Please use a 'since_id' that is larger than "
                        f"{snowflake(oldest)}",
                    )
        for name in ("start_time", "end_time"):
            if name in params:
                value = params[name]
                try:
                    moment = parse_time(value)
                except ValueError:
                    raise _Invalid(name, value, f"Invalid '{name}':'{value}'.") from None
                if search and moment < oldest:
                    raise _Invalid(
                        name,
                        value,
                        f"Invalid '{name}':'{value}'. '{name}' must be on or after "
                        f"{x_time(oldest)}",
                    )
        for name in ("next_token", "pagination_token"):
            if name in params and _decode_token(params[name]) is None:
                raise _Invalid(name, params[name], f"The `{name}` query parameter is not valid")
        return query

    def _matches(self, tweet: dict[str, Any], query: str) -> bool:
        author = self.users.get(tweet["author_id"], {})
        retweeted = any(ref["type"] == "retweeted" for ref in tweet.get("referenced_tweets", ()))
        for term in query.split():
            negate = term.startswith("-")
            term = term.lstrip("-").lower()
            if term == "is:retweet":
                hit = retweeted
            elif term.startswith("from:"):
                hit = author.get("username", "").lower() == term[5:]
            elif term.startswith("lang:"):
                hit = tweet["lang"] == term[5:]
            else:
                hit = term in tweet["text"].lower()
            if hit == negate:
                return False
        return True

    def _project(self, tweet: dict[str, Any], fields: Sequence[str]) -> dict[str, Any]:
        wire = _pick(tweet, DEFAULT_TWEET_FIELDS, fields)
        if (edit := self.wire_edits.get(tweet["id"])) is not None:
            edit(wire)
        return wire


class _Invalid(Exception):
    def __init__(self, parameter: str, value: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.value = value
        self.message = message

    def body(self) -> dict[str, Any]:
        return {
            "errors": [{"parameters": {self.parameter: [self.value]}, "message": self.message}],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": f"{PROBLEMS}/invalid-request",
        }


def _problem_body(status: int, title: str) -> dict[str, Any]:
    return {"title": title, "detail": title, "type": "about:blank", "status": status}


def _field_list(value: str | None) -> list[str]:
    return [part for part in (value or "").split(",") if part]


def _pick(record: dict[str, Any], defaults: Sequence[str], asked: Sequence[str]) -> dict[str, Any]:
    wanted = [*defaults, *(name for name in asked if name not in defaults)]
    return {name: record[name] for name in wanted if name in record}


def _encode_token(below_id: int) -> str:
    return base64.b32encode(f"b{below_id}".encode()).decode().rstrip("=").lower()


def _decode_token(token: str) -> int | None:
    padded = token.upper() + "=" * (-len(token) % 8)
    try:
        text = base64.b32decode(padded).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    return int(text[1:]) if text.startswith("b") and text[1:].isdigit() else None


# -- the contract cases -------------------------------------------------------------------


def _rig(mode: str) -> ContractRig:
    api = FakeXApi()
    brand = api.add_user("acme", name="Acme Support", followers=50_000)
    people = [api.add_user(f"user{n}", followers=10 * n) for n in range(4)]
    config: dict[str, Any] = {"mode": mode, "max_results": 10}
    if mode == "search":
        config["query"] = "acme"
    else:
        config["user_id"] = brand["id"]
        config["max_results"] = 5

    def seed(count: int) -> list[str]:
        return [
            api.add_tweet(f"@acme feedback number {n}", author=people[n % len(people)])["id"]
            for n in range(count)
        ]

    def connector() -> TwitterConnector:
        return TwitterConnector(
            config, env={TOKEN_ENV: TOKEN}, transport=api.transport(), sleep=lambda _: None
        )

    return ContractRig(
        connector=connector, seed=seed, trigger_rate_limit=lambda: api.rate_limit_after(0)
    )


def contract_case() -> list[ContractCase]:
    return [
        ContractCase(
            name="twitter-search",
            start=lambda: _rig("search"),
            initial_count=23,
            later_count=12,
        ),
        ContractCase(
            name="twitter-mentions",
            start=lambda: _rig("mentions"),
            initial_count=12,
            later_count=7,
        ),
    ]

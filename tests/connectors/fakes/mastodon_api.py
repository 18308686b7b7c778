"""A local Mastodon instance: hashtag timeline and notifications, with Mastodon's paging.

What it honours (see reference/connectors.md §2): ``max_id`` (strictly lower),
``since_id`` (strictly greater, *newest* page first: the gap pitfall), ``min_id``
(immediately greater: the page just above the id), ``limit`` (default 20 / 40, clamped to
40 / 80), ``types[]`` / ``exclude_types[]`` on notifications. Bodies are always newest
first. A non-empty answer carries ``Link: <...max_id=oldest>; rel="next",
<...min_id=newest>; rel="prev"``; an empty one has no ``Link``. Every answer carries
``X-RateLimit-Limit/Remaining/Reset`` (reset as an ISO-8601 time, on the wall clock).

Ids are Mastodon snowflakes: milliseconds << 16 plus a sequence, as strings. Statuses
created before 2018-05-09T15:15:06Z have 17 digits and later ones 18, so comparing ids as
text goes wrong across that line (tests use it).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any

import httpx

from connectors.mastodon import MastodonConnector
from tests.connectors.contract import ContractCase, ContractRig
from tests.connectors.fakes import Faults, json_response

BASE_URL = "https://example.social"
TOKEN = "masto-test-token-4Rk2"
TOKEN_ENV = "ANDON_MASTODON_TOKEN"
RATE_WINDOW = timedelta(minutes=5)
LIMITS = {"tag": (20, 40), "notifications": (40, 80)}


def mastodon_id(moment: datetime, sequence: int = 0) -> str:
    return str((int(moment.timestamp() * 1000) << 16) | (sequence & 0xFFFF))


def masto_time(moment: datetime) -> str:
    text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.")
    return text + f"{moment.microsecond // 1000:03d}Z"


class FakeMastodonApi:
    """In-memory statuses and notifications behind ``httpx.MockTransport``.

    ``public_tag_timeline=False`` makes the tag timeline need a token, as on instances
    that disabled public preview. Notifications always need the token.
    """

    def __init__(
        self,
        *,
        token: str = TOKEN,
        public_tag_timeline: bool = True,
        rate_limit: int = 300,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.token = token
        self.public_tag_timeline = public_tag_timeline
        self.rate_limit = rate_limit
        self.remaining = rate_limit
        self.now = now or (lambda: datetime.now(UTC))
        self.statuses: list[dict[str, Any]] = []  # newest first
        self.notifications: list[dict[str, Any]] = []  # newest first
        self.tag_index: dict[str, set[str]] = {}  # status id -> tags it is listed under
        self.known_tags: set[str] = set()
        self.wire_edits: dict[str, Callable[[dict[str, Any]], None]] = {}
        self.faults = Faults()
        self.requests: list[httpx.Request] = []
        self._sequence = itertools.count(1)
        self._clock: datetime | None = None
        self._accounts = itertools.count(7)
        # Notification ids are a plain bigint sequence, unrelated to status ids.
        self._notification_ids = itertools.count(34_975_800)

    # -- seeding -----------------------------------------------------------------------

    def add_account(
        self,
        username: str,
        *,
        display_name: str | None = None,
        followers: int = 0,
        domain: str | None = None,
    ) -> dict[str, Any]:
        account_id = str(next(self._accounts))
        host = domain or BASE_URL.removeprefix("https://")
        return {
            "id": account_id,
            "username": username,
            "acct": f"{username}@{domain}" if domain else username,
            "display_name": display_name if display_name is not None else username.title(),
            "locked": False,
            "bot": False,
            "url": f"https://{host}/@{username}",
            "note": "<p>Writes about tools.</p>",
            "avatar": f"https://{host}/avatars/{account_id}.png",
            "created_at": "2019-04-01T00:00:00.000Z",
            "followers_count": followers,
            "following_count": 80,
            "statuses_count": 900,
            "last_status_at": "2024-05-13",
        }

    def _next_time(self, created_at: datetime | None) -> datetime:
        if created_at is None:
            base = self._clock or (self.now() - timedelta(hours=3))
            created_at = base + timedelta(seconds=1)
        self._clock = created_at if self._clock is None else max(self._clock, created_at)
        return created_at

    def add_status(
        self,
        content: str,
        *,
        account: dict[str, Any],
        tags: tuple[str, ...] = ("acme",),
        created_at: datetime | None = None,
        html: bool = False,
        spoiler_text: str = "",
        language: str | None = "en",
        in_reply_to: dict[str, Any] | None = None,
        visibility: str = "public",
        favourites: int = 0,
        reblogs: int = 0,
        replies: int = 0,
        wire_edit: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Store a status; plain ``content`` is wrapped in ``<p>`` like Mastodon renders it."""
        moment = self._next_time(created_at)
        status_id = mastodon_id(moment, next(self._sequence))
        body = content if html else f"<p>{escape(content)}</p>"
        status = {
            "id": status_id,
            "uri": f"{BASE_URL}/users/{account['username']}/statuses/{status_id}",
            "url": f"{BASE_URL}/@{account['username']}/{status_id}",
            "created_at": masto_time(moment),
            "edited_at": None,
            "account": account,
            "content": body,
            "text": None,
            "spoiler_text": spoiler_text,
            "sensitive": bool(spoiler_text),
            "visibility": visibility,
            "language": language,
            "in_reply_to_id": in_reply_to["id"] if in_reply_to else None,
            "in_reply_to_account_id": in_reply_to["account"]["id"] if in_reply_to else None,
            "replies_count": replies,
            "reblogs_count": reblogs,
            "favourites_count": favourites,
            "reblog": None,
            "mentions": [],
            "tags": [{"name": tag, "url": f"{BASE_URL}/tags/{tag}"} for tag in tags],
            "media_attachments": [],
            "emojis": [],
            "card": None,
            "poll": None,
        }
        self._store(status, set(tags), wire_edit)
        return status

    def boost(
        self, original: dict[str, Any], *, by: dict[str, Any], listed_under_tags: bool = True
    ) -> dict[str, Any]:
        """A reblog: an empty wrapper status whose ``reblog`` is the original.

        Mastodon's own tag feed leaves boosts out, but other servers and relays list them;
        ``listed_under_tags`` puts the boost in the original's tag timelines.
        """
        moment = self._next_time(None)
        status_id = mastodon_id(moment, next(self._sequence))
        status: dict[str, Any] = {
            **dict.fromkeys(("in_reply_to_id", "in_reply_to_account_id", "language")),
            "id": status_id,
            "uri": f"{BASE_URL}/users/{by['username']}/statuses/{status_id}/activity",
            "url": None,
            "created_at": masto_time(moment),
            "edited_at": None,
            "account": by,
            "content": "",
            "text": None,
            "spoiler_text": "",
            "sensitive": False,
            "visibility": "public",
            "replies_count": 0,
            "reblogs_count": 0,
            "favourites_count": 0,
            "reblog": original,
            "mentions": [],
            "tags": [],
            "media_attachments": [],
            "emojis": [],
        }
        tags = {tag["name"] for tag in original["tags"]} if listed_under_tags else set()
        self._store(status, tags, None)
        original["reblogs_count"] += 1
        return status

    def _store(
        self,
        status: dict[str, Any],
        tags: set[str],
        wire_edit: Callable[[dict[str, Any]], None] | None,
    ) -> None:
        self.tag_index[status["id"]] = {tag.lower() for tag in tags}
        self.known_tags |= self.tag_index[status["id"]]
        if wire_edit is not None:
            self.wire_edits[status["id"]] = wire_edit
        self.statuses.append(status)
        self.statuses.sort(key=lambda s: int(s["id"]), reverse=True)

    def notify(
        self, kind: str, *, account: dict[str, Any], status: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """A notification for the token's account; its id is its own, not the status's."""
        moment = self._next_time(None)
        notification = {
            "id": str(next(self._notification_ids)),
            "type": kind,
            "created_at": masto_time(moment),
            "group_key": f"ungrouped-{len(self.notifications)}",
            "account": account,
            "status": status,
        }
        self.notifications.append(notification)
        self.notifications.sort(key=lambda n: int(n["id"]), reverse=True)
        return notification

    def rate_limit_after(self, calls: int) -> None:
        self.remaining = calls

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    # -- the API -----------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        response = self._dispatch(request)
        reset = datetime.now(UTC) + RATE_WINDOW  # the wall clock: clients compare with it
        for name, value in self._limits(max(self.remaining, 0), reset).items():
            response.headers.setdefault(name, value)
        return response

    def _dispatch(self, request: httpx.Request) -> httpx.Response:
        reset = datetime.now(UTC) + RATE_WINDOW
        fault = self.faults.take(request, {"error": "Remote data could not be fetched"})
        if fault is not None:
            return fault
        authorization = request.headers.get("authorization")
        if authorization is not None and authorization != f"Bearer {self.token}":
            return json_response(401, {"error": "The access token is invalid"})
        if self.remaining <= 0:
            return json_response(429, {"error": "Too many requests"}, self._limits(0, reset))
        self.remaining -= 1
        headers = self._limits(self.remaining, reset)
        path = request.url.path
        if path.startswith("/api/v1/timelines/tag/"):
            if authorization is None and not self.public_tag_timeline:
                return json_response(401, {"error": "The access token is invalid"}, headers)
            tag = path.removeprefix("/api/v1/timelines/tag/").lower()
            if tag not in self.known_tags:
                return json_response(404, {"error": "Record not found"}, headers)
            rows = [s for s in self.statuses if tag in self.tag_index[s["id"]]]
            return self._paged(request, headers, rows, "tag")
        if path == "/api/v1/notifications":
            if authorization is None:
                return json_response(401, {"error": "The access token is invalid"}, headers)
            types = request.url.params.get_list("types[]")
            excluded = request.url.params.get_list("exclude_types[]")
            rows = [
                n
                for n in self.notifications
                if (not types or n["type"] in types) and n["type"] not in excluded
            ]
            return self._paged(request, headers, rows, "notifications")
        return json_response(404, {"error": "Record not found"}, headers)

    def _limits(self, remaining: int, reset: datetime) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.rate_limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": masto_time(reset),
        }

    def _paged(
        self,
        request: httpx.Request,
        headers: dict[str, str],
        rows: list[dict[str, Any]],
        endpoint: str,
    ) -> httpx.Response:
        params = request.url.params
        default, ceiling = LIMITS[endpoint]
        raw_limit = params.get("limit", "")
        limit = min(int(raw_limit), ceiling) if raw_limit.isdigit() and int(raw_limit) else default

        def bound(name: str) -> int | None:
            value = params.get(name, "")
            return int(value) if value.isdigit() else None

        max_id, since_id, min_id = bound("max_id"), bound("since_id"), bound("min_id")
        selected = [
            row
            for row in rows
            if (max_id is None or int(row["id"]) < max_id)
            and (since_id is None or int(row["id"]) > since_id)
            and (min_id is None or int(row["id"]) > min_id)
        ]
        if min_id is not None:
            page = list(reversed(list(reversed(selected))[:limit]))  # just above min_id
        else:
            page = selected[:limit]  # the newest
        body = [self._wire(row, endpoint) for row in page]
        if page:
            keep = [
                (k, v) for k, v in params.multi_items() if k not in ("max_id", "min_id", "since_id")
            ]
            url = request.url.copy_with(query=None)
            older = url.copy_merge_params(httpx.QueryParams([*keep, ("max_id", page[-1]["id"])]))
            newer = url.copy_merge_params(httpx.QueryParams([*keep, ("min_id", page[0]["id"])]))
            headers = {**headers, "Link": f'<{older}>; rel="next", <{newer}>; rel="prev"'}
        return json_response(200, body, headers)

    def _wire(self, row: dict[str, Any], endpoint: str) -> dict[str, Any]:
        wire = dict(row)
        target = wire if endpoint == "tag" else wire.get("status")
        if target is not None and (edit := self.wire_edits.get(target["id"])) is not None:
            target = dict(target)
            edit(target)
            if endpoint == "tag":
                wire = target
            else:
                wire["status"] = target
        return wire


# -- the contract cases -------------------------------------------------------------------


def _rig(mode: str) -> ContractRig:
    api = FakeMastodonApi()
    people = [api.add_account(f"user{n}", followers=n * 3) for n in range(3)]
    api.known_tags.add("acme")
    config: dict[str, Any] = {"base_url": BASE_URL, "mode": mode, "limit": 4}
    if mode == "hashtag":
        config["hashtag"] = "acme"
    else:
        config["token_env"] = TOKEN_ENV

    def seed(count: int) -> list[str]:
        seeded = []
        for n in range(count):
            status = api.add_status(f"@acme feedback #{n} about #acme", account=people[n % 3])
            if mode == "mentions":
                api.notify("mention", account=people[n % 3], status=status)
                api.notify("favourite", account=people[(n + 1) % 3], status=status)
            seeded.append(status["id"])
        return seeded

    def connector() -> MastodonConnector:
        return MastodonConnector(
            config, env={TOKEN_ENV: TOKEN}, transport=api.transport(), sleep=lambda _: None
        )

    return ContractRig(
        connector=connector, seed=seed, trigger_rate_limit=lambda: api.rate_limit_after(0)
    )


def contract_case() -> list[ContractCase]:
    # The first pull anchors on the newest page only, so the initial seed fits in one page
    # (limit 4); the later seed is bigger than a page to exercise min_id paging.
    return [
        ContractCase(
            name="mastodon-hashtag", start=lambda: _rig("hashtag"), initial_count=4, later_count=11
        ),
        ContractCase(
            name="mastodon-mentions",
            start=lambda: _rig("mentions"),
            initial_count=4,
            later_count=9,
        ),
    ]

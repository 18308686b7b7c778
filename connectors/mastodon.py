"""Mastodon: a hashtag timeline or the account's mentions, polled without gaps.

``since_id`` answers with the *newest* page above the id, so a burst of more than
``limit`` new statuses would silently lose the middle. ``min_id`` answers with the page
*immediately* above the id, so the connector walks forward until an empty page. The
cursor is the highest id handed out (a status id for hashtags, a notification id for
mentions)::

    {"min_id": "110000000000000009"}      or {} before anything was seen

The next ``min_id`` comes from the ``Link`` header's ``rel="prev"`` when the server sends
one (Mastodon's own paging, which clients should follow rather than compute); otherwise
from the page's highest id. Ids are 64-bit numbers in strings: they are compared as
integers, never as text. The first pull (no cursor) takes the newest page and starts the
watermark there: history older than that page is not backfilled.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from html.parser import HTMLParser
from typing import Any, TypeGuard

import httpx

from connectors import http
from connectors.base import Author, Cursor, Page, Rejected, SourceItem, parse_time
from connectors.errors import AuthFailed, BadCursor, ConfigError, ProtocolError
from connectors.registry import register

MAX_LIMIT = {"hashtag": 40, "mentions": 80}
METRICS = {"likes": "favourites_count", "reposts": "reblogs_count", "replies": "replies_count"}


@register("mastodon")
class MastodonConnector:
    """Pull statuses from ``/api/v1/timelines/tag/:hashtag`` or mention notifications."""

    kind = "mastodon"

    def __init__(
        self,
        config: Mapping[str, Any],
        *,
        env: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        base_url = str(config.get("base_url") or "").strip().rstrip("/")
        if not base_url.startswith(("https://", "http://")):
            raise ConfigError("mastodon: 'base_url' must be the instance's http(s) URL")
        self.base_url = base_url
        self.mode = str(config.get("mode", "hashtag"))
        if self.mode not in MAX_LIMIT:
            raise ConfigError(f"mastodon: mode must be 'hashtag' or 'mentions', not {self.mode!r}")
        self.hashtag = str(config.get("hashtag") or "").strip().lstrip("#")
        if self.mode == "hashtag" and not re.fullmatch(r"\w+", self.hashtag):
            raise ConfigError("mastodon: mode 'hashtag' needs a 'hashtag' (letters, digits, _)")
        token_env = config.get("token_env")
        self.token_env = str(token_env) if token_env else None
        if self.mode == "mentions" and self.token_env is None:
            raise ConfigError("mastodon: mode 'mentions' needs 'token_env' (a user token)")
        limit = config.get("limit", 40)
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise ConfigError("mastodon: 'limit' must be an integer")
        if not 1 <= limit <= MAX_LIMIT[self.mode]:
            raise ConfigError(f"mastodon: 'limit' must be within 1..{MAX_LIMIT[self.mode]}")
        self.limit = limit
        self.boosts = str(config.get("boosts", "resolve"))
        if self.boosts not in ("resolve", "skip"):
            raise ConfigError("mastodon: 'boosts' must be 'resolve' or 'skip'")
        self._env: Mapping[str, str] = os.environ if env is None else env
        self._policy = http.RetryPolicy() if sleep is None else http.RetryPolicy(sleep=sleep)
        self._client = http.make_client(self.base_url, transport=transport)

    def __repr__(self) -> str:
        target = f"hashtag={self.hashtag!r}" if self.mode == "hashtag" else "mentions"
        return f"MastodonConnector(base_url={self.base_url!r}, {target})"

    @property
    def _path(self) -> str:
        if self.mode == "hashtag":
            return f"/api/v1/timelines/tag/{self.hashtag}"
        return "/api/v1/notifications"

    def _headers(self) -> dict[str, str]:
        if self.token_env is None:
            return {}
        token = self._env.get(self.token_env, "").strip()
        if not token:
            raise AuthFailed(f"mastodon: environment variable {self.token_env} is not set")
        return {"Authorization": f"Bearer {token}"}

    def check(self) -> None:
        self._get({"limit": "1"})

    def pull(self, cursor: Cursor | None) -> Page:
        min_id = _load_cursor(cursor)
        params = {"limit": str(self.limit)}
        if min_id is not None:
            params["min_id"] = str(min_id)
        response, entries = self._get(params)

        items: list[SourceItem] = []
        rejects: list[Rejected] = []
        seen: set[str] = set()
        page_ids: list[int] = []
        for index, entry in enumerate(entries):
            location = f"{self._path}[{index}]"
            entry_id = entry.get("id") if isinstance(entry, dict) else None
            if _is_id(entry_id):
                page_ids.append(int(entry_id))
            try:
                item = self._item(entry)
            except _Malformed as exc:
                rejects.append(
                    Rejected(
                        reason=str(exc),
                        payload=json.dumps(entry, sort_keys=True, default=str),
                        external_id=entry_id if isinstance(entry_id, str) else None,
                        location=location,
                    )
                )
                continue
            # Two boosts of one status resolve to the same item: hand it out once.
            if item is not None and item.external_id not in seen:
                seen.add(item.external_id)
                items.append(item)

        watermark = min_id
        prev_min_id = _link_min_id(response)
        for candidate in (prev_min_id, max(page_ids, default=None)):
            if candidate is not None and (watermark is None or candidate > watermark):
                watermark = candidate
                break
        if entries and watermark == min_id:
            raise ProtocolError(f"GET {self._path}: a non-empty page did not advance the cursor")
        next_cursor: Cursor = {"min_id": str(watermark)} if watermark is not None else {}
        # The first pull only anchors the watermark on the newest page.
        has_more = min_id is not None and bool(entries)
        return Page(items=items, next_cursor=next_cursor, has_more=has_more, rejects=rejects)

    def _get(self, params: dict[str, str]) -> tuple[httpx.Response, list[Any]]:
        query: dict[str, str | list[str]] = dict(params)
        if self.mode == "mentions":
            query["types[]"] = ["mention"]
        response = http.request(
            self._client,
            "GET",
            self._path,
            policy=self._policy,
            allow={404},
            params=query,
            headers=self._headers(),
        )
        if response.status_code == 404:
            if self.mode == "hashtag":
                raise ConfigError(
                    f"mastodon: hashtag #{self.hashtag} does not exist on {self.base_url}"
                )
            raise ConfigError(f"mastodon: {self.base_url} has no {self._path} endpoint")
        body = http.json_body(response)
        if not isinstance(body, list):
            raise ProtocolError(f"GET {self._path}: expected a JSON array")
        return response, body

    def _item(self, entry: Any) -> SourceItem | None:
        if not isinstance(entry, dict):
            raise _Malformed("entry is not a JSON object")
        status: Any = entry
        if self.mode == "mentions":
            if entry.get("type") != "mention":
                return None
            status = entry.get("status")
            if not isinstance(status, dict):
                raise _Malformed("mention notification without a status")
        reblog = status.get("reblog")
        if reblog is not None:
            if self.boosts == "skip":
                return None
            if not isinstance(reblog, dict):
                raise _Malformed("'reblog' is not a status object")
            original: dict[str, Any] = reblog
        else:
            original = status

        status_id = original.get("id")
        if not _is_id(status_id):
            raise _Malformed("missing or invalid status 'id'")
        content = original.get("content")
        if not isinstance(content, str):
            raise _Malformed("missing 'content'")
        created_raw = original.get("created_at")
        if not isinstance(created_raw, str):
            raise _Malformed("missing 'created_at'")
        try:
            created_at = parse_time(created_raw)
            edited_raw = original.get("edited_at")
            updated_at = parse_time(edited_raw) if isinstance(edited_raw, str) else None
        except ValueError:
            raise _Malformed(f"invalid 'created_at' or 'edited_at' {created_raw[:40]!r}") from None
        account = original.get("account")
        if not isinstance(account, dict):
            raise _Malformed("missing 'account'")

        followers = account.get("followers_count")
        author = Author(
            id=_str_or_none(account.get("id")),
            handle=_str_or_none(account.get("acct")),
            display_name=_str_or_none(account.get("display_name")),
            followers=followers if isinstance(followers, int) else None,
        )
        metrics: dict[str, int] = {}
        for name, key in METRICS.items():
            value = original.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                metrics[name] = value
        spoiler = original.get("spoiler_text")
        text = html_to_text(content)
        if not text and isinstance(original.get("text"), str):
            text = original["text"]
        return SourceItem(
            channel="mastodon",
            kind="message" if original.get("visibility") == "direct" else "post",
            external_id=status_id,
            text=text,
            title=(spoiler.strip() or None) if isinstance(spoiler, str) else None,
            created_at=created_at,
            updated_at=updated_at,
            author=author,
            url=_str_or_none(original.get("url")) or _str_or_none(original.get("uri")),
            metrics=metrics,
            lang=_str_or_none(original.get("language")),
            thread_id=_str_or_none(original.get("in_reply_to_id")),
            raw=entry,
        )


class _Malformed(Exception):
    """A status that cannot become a SourceItem; it becomes a Rejected."""


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == "p":
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        # Newlines in the HTML source are layout, not text: only <br> and </p> break lines.
        self.parts.append(re.sub(r"\s+", " ", data))


def html_to_text(content: str) -> str:
    """Mastodon's sanitised HTML as plain text.

    ``<br>`` is a line break and ``</p>`` a paragraph break (a blank line); links keep
    their visible text; entities are unescaped; other whitespace runs become one space.
    """
    parser = _TextExtractor()
    parser.feed(content)
    parser.close()
    lines = [re.sub(r"\s+", " ", line).strip() for line in "".join(parser.parts).split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _load_cursor(cursor: Cursor | None) -> int | None:
    if cursor is None:
        return None
    if not isinstance(cursor, dict) or set(cursor) - {"min_id"}:
        raise BadCursor("mastodon: the cursor must be {} or {'min_id': '<id>'}")
    value = cursor.get("min_id")
    if value is None:
        return None
    if not _is_id(value):
        raise BadCursor("mastodon: cursor min_id must be a numeric string")
    return int(value)


def _link_min_id(response: httpx.Response) -> int | None:
    prev = response.links.get("prev")
    if not prev or "url" not in prev:
        return None
    value = httpx.URL(prev["url"]).params.get("min_id")
    return int(value) if _is_id(value) else None


def _is_id(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and value.isascii() and value.isdigit()


def _str_or_none(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) and value else None

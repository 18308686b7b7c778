"""The ``jsonl`` connector: a user's own JSON Lines export, read incrementally.

Configuration::

    {"path": "exports/feedback.jsonl",  # required
     "channel": "import",               # channel for lines that carry none
     "kind": "post",                    # kind for lines that carry none
     "page_size": 200}                  # physical lines read per pull

Every line is one JSON object with at least a non-empty ``id`` and ``text``. The other
fields map onto :class:`~connectors.base.SourceItem` when present (see
:func:`item_from_record`); the whole object is kept as ``raw``. A line that cannot be
mapped becomes a :class:`~connectors.base.Rejected` located at ``"line N"`` (1-based)
with the line itself as payload — it never stops the page. Blank lines are skipped.

Cursor (a JSON object)::

    {"offset": 1234,        # byte offset just after the last consumed line
     "line": 17,            # number of the last consumed line
     "size": 5678,          # file size when the cursor was made
     "inode": 4242,         # st_ino of the file
     "mtime": 1.7e9,        # st_mtime of the file
     "tail": "ab12...",     # sha256 of the (up to 256) bytes just before ``offset``
     "unterminated": false} # the last consumed line had no newline yet

A later pull continues at ``offset``, so lines appended to the file are picked up. The
file counts as replaced — and is read again from the start, storage dedupes — when its
inode changed, it shrank below ``offset``, or the bytes before ``offset`` are no longer
the ones consumed (rewritten in place). Size and mtime unchanged means nothing new.

A last line without a newline is taken as complete only if it is valid JSON: a writer
may still be appending to it, and a half-written object must not be quarantined. An
unparsable unterminated line is left unconsumed (``has_more`` is false) and read once
it is finished. When a parsed unterminated line later gets its newline, that newline
closes the same line and is not counted as a new one.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from connectors.base import KINDS, Author, Cursor, Page, Rejected, SourceItem, parse_time
from connectors.errors import BadCursor, ConfigError
from connectors.registry import register

DEFAULT_CHANNEL = "import"
DEFAULT_KIND = "post"
DEFAULT_PAGE_SIZE = 200
MAX_PAGE_SIZE = 10_000
METRIC_KEYS = ("likes", "reposts", "replies", "votes", "comments")
_TAIL_BYTES = 256
_BOM = b"\xef\xbb\xbf"


class RecordError(ValueError):
    """A record cannot be mapped to a ``SourceItem``; ``str(exc)`` is the reason."""

    def __init__(self, reason: str, external_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.external_id = external_id


# --------------------------------------------------------------------------- mapping


def item_from_record(
    record: Mapping[str, Any],
    *,
    channel: str = DEFAULT_CHANNEL,
    kind: str = DEFAULT_KIND,
    default_created_at: datetime,
) -> SourceItem:
    """Map one decoded JSON Lines record onto a :class:`SourceItem`.

    ``channel`` and ``kind`` apply when the record carries none; ``default_created_at``
    (aware) applies when it has no ``created_at``. Raises :class:`RecordError` with a
    readable reason when the record is unusable.
    """
    external_id = _identifier(record.get("id"))
    if external_id is None:
        raise RecordError("missing or empty 'id'")
    try:
        return _map(record, external_id, channel, kind, default_created_at)
    except RecordError as exc:
        raise RecordError(exc.reason, external_id) from None


def item_from_line(
    line: str,
    *,
    channel: str = DEFAULT_CHANNEL,
    kind: str = DEFAULT_KIND,
    default_created_at: datetime,
) -> SourceItem:
    """Decode one JSON Lines line and map it with :func:`item_from_record`."""
    return item_from_record(
        _decode(line), channel=channel, kind=kind, default_created_at=default_created_at
    )


def _decode(line: str) -> Mapping[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise RecordError(f"invalid JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(record, dict):
        raise RecordError(f"expected a JSON object, got {_json_type(record)}")
    return record


def _map(
    record: Mapping[str, Any],
    external_id: str,
    default_channel: str,
    default_kind: str,
    default_created_at: datetime,
) -> SourceItem:
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise RecordError("missing or empty 'text'")
    kind = _optional_str(record, "kind") or default_kind
    if kind not in KINDS:
        raise RecordError(f"'kind' must be one of {', '.join(KINDS)}, not {kind!r}")
    created_at = _time(record, "created_at")
    return SourceItem(
        channel=_optional_str(record, "channel") or default_channel,
        kind=kind,
        external_id=external_id,
        text=text.strip(),
        title=_optional_str(record, "title"),
        author=_author(record),
        created_at=created_at if created_at is not None else default_created_at,
        updated_at=_time(record, "updated_at"),
        url=_optional_str(record, "url"),
        metrics=_metrics(record),
        lang=_optional_str(record, "lang"),
        thread_id=_identifier(record.get("thread_id")),
        raw=record,
    )


def _identifier(value: Any) -> str | None:
    """Ids arrive as strings or integers; anything else (or blank) is no id."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _optional_str(record: Mapping[str, Any], key: str) -> str | None:
    value = record.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise RecordError(f"'{key}' must be a string, not {_json_type(value)}")
    return value.strip() or None


def _time(record: Mapping[str, Any], key: str) -> datetime | None:
    value = record.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise RecordError(f"bad '{key}': expected ISO-8601 or epoch seconds, got {value!r}")
    try:
        return parse_time(value)
    except (ValueError, OverflowError, OSError):
        raise RecordError(
            f"bad '{key}': {value!r} is not an ISO-8601 time or epoch seconds"
        ) from None


def _count(value: Any, what: str) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RecordError(f"{what} must be a non-negative integer, not {value!r}")
    return value


def _metrics(record: Mapping[str, Any]) -> dict[str, int]:
    metrics: dict[str, int] = {}
    for key in METRIC_KEYS:
        if record.get(key) is not None:
            metrics[key] = _count(record[key], f"metric '{key}'")
    nested = record.get("metrics")
    if nested is None:
        return metrics
    if not isinstance(nested, dict):
        raise RecordError(f"'metrics' must be an object, not {_json_type(nested)}")
    for key, value in nested.items():
        if value is not None:  # the nested object is the more specific source
            metrics[str(key)] = _count(value, f"metric '{key}'")
    return metrics


def _author(record: Mapping[str, Any]) -> Author:
    value = record.get("author")
    fields: dict[str, Any] = {}
    if isinstance(value, str):
        fields["handle"] = value
    elif isinstance(value, dict):
        fields = {
            "id": value.get("id"),
            "handle": value.get("handle") or value.get("username"),
            "display_name": value.get("display_name") or value.get("name"),
            "followers": value.get("followers"),
            "email": value.get("email"),
        }
    elif value is not None:
        raise RecordError(f"'author' must be an object or a string, not {_json_type(value)}")
    flat = {
        "id": "author_id",
        "handle": "author_handle",
        "display_name": "author_name",
        "followers": "author_followers",
        "email": "author_email",
    }
    for name, key in flat.items():
        if fields.get(name) is None:
            fields[name] = record.get(key)
    if fields.get("display_name") is None:
        fields["display_name"] = record.get("author_display_name")

    strings: dict[str, str | None] = {"id": _identifier(fields.get("id"))}
    for name in ("handle", "display_name", "email"):
        raw = fields.get(name)
        if raw is not None and not isinstance(raw, str):
            raise RecordError(f"author {name} must be a string, not {_json_type(raw)}")
        strings[name] = raw.strip() or None if raw is not None else None
    followers = fields.get("followers")
    return Author(
        id=strings["id"],
        handle=strings["handle"],
        display_name=strings["display_name"],
        followers=None if followers is None else _count(followers, "author followers"),
        email=strings["email"],
    )


def _json_type(value: Any) -> str:
    names = {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
    }
    return "null" if value is None else names.get(type(value), type(value).__name__)


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True, slots=True)
class _Position:
    offset: int = 0
    line: int = 0
    tail: str = ""
    unterminated: bool = False
    inode: int | None = None
    size: int | None = None
    mtime: float | None = None

    @classmethod
    def from_cursor(cls, cursor: Cursor | None) -> _Position:
        if cursor is None:
            return cls()
        if not isinstance(cursor, dict):
            raise BadCursor(f"jsonl cursor must be an object, not {_json_type(cursor)}")
        try:
            offset, line = cursor["offset"], cursor["line"]
        except KeyError as exc:
            raise BadCursor(f"jsonl cursor lacks {exc.args[0]!r}: {cursor!r}") from None
        for name, value in (("offset", offset), ("line", line)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise BadCursor(f"jsonl cursor {name} must be a non-negative integer: {cursor!r}")
        inode, size, mtime = cursor.get("inode"), cursor.get("size"), cursor.get("mtime")
        tail = cursor.get("tail", "")
        if not (
            (inode is None or isinstance(inode, int))
            and (size is None or isinstance(size, int))
            and (mtime is None or isinstance(mtime, int | float))
            and isinstance(tail, str)
        ):
            raise BadCursor(f"jsonl cursor has fields of the wrong type: {cursor!r}")
        return cls(
            offset=offset,
            line=line,
            tail=tail,
            unterminated=bool(cursor.get("unterminated", False)),
            inode=inode,
            size=size,
            mtime=None if mtime is None else float(mtime),
        )

    def to_cursor(self) -> Cursor:
        return {
            "offset": self.offset,
            "line": self.line,
            "size": self.size,
            "inode": self.inode,
            "mtime": self.mtime,
            "tail": self.tail,
            "unterminated": self.unterminated,
        }


def _tail(handle: BinaryIO, offset: int) -> str:
    start = max(0, offset - _TAIL_BYTES)
    handle.seek(start)
    return hashlib.sha256(handle.read(offset - start)).hexdigest()


def _is_json(data: bytes) -> bool:
    try:
        json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    return True


def _consumable(line: bytes) -> bool:
    """Whether a line read at the current position may be consumed now."""
    return line.endswith(b"\n") or (bool(line) and _is_json(line))


def read_page(
    path: Path,
    cursor: Cursor | None,
    *,
    page_size: int,
    channel: str = DEFAULT_CHANNEL,
    kind: str = DEFAULT_KIND,
) -> Page:
    """Read up to ``page_size`` lines of ``path`` after ``cursor`` (see the module docs)."""
    position = _Position.from_cursor(cursor)
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise ConfigError(f"jsonl file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read jsonl file {path}: {exc.strerror or exc}") from None
    with handle:
        stat = os.fstat(handle.fileno())
        if position.offset and _replaced(handle, stat, position):
            position = _Position()
        if (position.inode, position.size, position.mtime) == (
            stat.st_ino,
            stat.st_size,
            stat.st_mtime,
        ) and position.offset == stat.st_size:
            return Page(items=[], next_cursor=position.to_cursor(), has_more=False)
        default_created_at = datetime.fromtimestamp(stat.st_mtime, tz=UTC)
        items: list[SourceItem] = []
        rejects: list[Rejected] = []
        offset, number, unterminated = position.offset, position.line, position.unterminated
        handle.seek(offset)
        read = 0
        while read < page_size:
            data = handle.readline()
            if not _consumable(data):
                break
            read += 1
            if unterminated:
                unterminated = False  # this read finishes the line consumed last time
            else:
                number += 1
            offset += len(data)
            unterminated = not data.endswith(b"\n")
            if offset == len(data) and data.startswith(_BOM):
                data = data[len(_BOM) :]
            if not data.strip():
                continue
            _read_line(data, number, channel, kind, default_created_at, items, rejects)
        has_more = read == page_size and _consumable(handle.readline())
        next_position = _Position(
            offset=offset,
            line=number,
            tail=_tail(handle, offset),
            unterminated=unterminated,
            inode=stat.st_ino,
            size=stat.st_size,
            mtime=stat.st_mtime,
        )
    return Page(
        items=items, next_cursor=next_position.to_cursor(), has_more=has_more, rejects=rejects
    )


def _replaced(handle: BinaryIO, stat: os.stat_result, position: _Position) -> bool:
    if position.inode is not None and position.inode != stat.st_ino:
        return True
    if stat.st_size < position.offset:
        return True
    return bool(position.tail) and _tail(handle, position.offset) != position.tail


def _read_line(
    data: bytes,
    number: int,
    channel: str,
    kind: str,
    default_created_at: datetime,
    items: list[SourceItem],
    rejects: list[Rejected],
) -> None:
    payload = data.rstrip(b"\r\n").decode("utf-8", errors="replace")
    location = f"line {number}"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        rejects.append(Rejected(f"not valid UTF-8: {exc.reason}", payload, location=location))
        return
    try:
        item = item_from_line(
            text, channel=channel, kind=kind, default_created_at=default_created_at
        )
    except RecordError as exc:
        rejects.append(
            Rejected(exc.reason, payload, external_id=exc.external_id, location=location)
        )
        return
    items.append(item)


# --------------------------------------------------------------------------- connector


def page_size_from(config: Mapping[str, Any], default: int) -> int:
    """Validate the ``page_size`` option shared by the file connectors."""
    value = config.get("page_size", default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PAGE_SIZE:
        raise ConfigError(f"page_size must be an integer from 1 to {MAX_PAGE_SIZE}, not {value!r}")
    return value


@register("jsonl")
class JsonlConnector:
    """Reads a JSON Lines export incrementally; see the module docstring."""

    kind = "jsonl"

    def __init__(
        self,
        config: Mapping[str, Any],
        *,
        env: Mapping[str, str] | None = None,
        transport: object | None = None,
    ) -> None:
        path = config.get("path")
        if not isinstance(path, str) or not path.strip():
            raise ConfigError("jsonl: 'path' (the JSON Lines file to read) is required")
        self.path = Path(path).expanduser()
        channel = config.get("channel", DEFAULT_CHANNEL)
        if not isinstance(channel, str) or not channel.strip():
            raise ConfigError(f"jsonl: 'channel' must be a non-empty string, not {channel!r}")
        self.channel = channel.strip()
        kind = config.get("kind", DEFAULT_KIND)
        if kind not in KINDS:
            raise ConfigError(f"jsonl: 'kind' must be one of {', '.join(KINDS)}, not {kind!r}")
        self.item_kind: str = kind
        self.page_size = page_size_from(config, DEFAULT_PAGE_SIZE)

    def check(self) -> None:
        check_readable(self.path)

    def pull(self, cursor: Cursor | None) -> Page:
        return read_page(
            self.path, cursor, page_size=self.page_size, channel=self.channel, kind=self.item_kind
        )


def check_readable(path: Path) -> None:
    """Raise ``ConfigError`` unless ``path`` is a regular file we can open and read."""
    try:
        with path.open("rb") as handle:
            handle.read(1)
    except FileNotFoundError:
        raise ConfigError(f"jsonl file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"jsonl path is a directory, not a file: {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read jsonl file {path}: {exc.strerror or exc}") from None

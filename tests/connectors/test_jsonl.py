"""The ``jsonl`` connector, exercised the way the sync runner drives it."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors import registry
from connectors.base import Author, Cursor, Page, Rejected, SourceItem
from connectors.errors import BadCursor, ConfigError
from connectors.jsonl import JsonlConnector, RecordError, item_from_record


def record(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"r{n}",
        "text": f"feedback number {n}",
        "created_at": "2026-11-01T10:00:00Z",
    } | extra


def line(n: int, **extra: Any) -> str:
    return json.dumps(record(n, **extra)) + "\n"


def write(path: Path, *lines: str) -> None:
    path.write_text("".join(lines), encoding="utf-8")


def append(path: Path, *lines: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write("".join(lines))


def restart(cursor: Cursor | None) -> Cursor | None:
    """What the runner does between pulls: store the cursor as JSON and load it back."""
    return None if cursor is None else json.loads(json.dumps(cursor))


def pull_all(
    connector: JsonlConnector, cursor: Cursor | None = None, *, max_pages: int = 100
) -> tuple[list[SourceItem], list[Rejected], Cursor | None, list[Page]]:
    items: list[SourceItem] = []
    rejects: list[Rejected] = []
    pages: list[Page] = []
    for _ in range(max_pages):
        page = connector.pull(restart(cursor))
        pages.append(page)
        items += page.items
        rejects += page.rejects
        cursor = page.next_cursor
        if not page.has_more:
            return items, rejects, cursor, pages
    raise AssertionError(f"no end after {max_pages} pages")


def connector(path: Path, **config: Any) -> JsonlConnector:
    return JsonlConnector({"path": str(path), **config})


def ids(items: list[SourceItem]) -> list[str]:
    return [item.external_id for item in items]


# ------------------------------------------------------------------------ paging and cursor


def test_pages_through_the_file_and_stops_at_eof(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    write(path, *(line(n) for n in range(1, 8)))

    items, rejects, cursor, pages = pull_all(connector(path, page_size=3))

    assert ids(items) == [f"r{n}" for n in range(1, 8)]
    assert rejects == []
    assert [len(page.items) for page in pages] == [3, 3, 1]
    assert [page.has_more for page in pages] == [True, True, False]
    assert cursor is not None
    assert cursor["line"] == 7
    assert cursor["offset"] == path.stat().st_size


def test_has_more_is_false_when_the_last_page_ends_exactly_at_eof(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    write(path, *(line(n) for n in range(1, 5)))

    _, _, _, pages = pull_all(connector(path, page_size=2))

    assert [page.has_more for page in pages] == [True, False]


def test_pull_after_eof_returns_nothing_and_keeps_the_cursor(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    write(path, line(1), line(2))
    source = connector(path)
    _, _, cursor, _ = pull_all(source)

    page = source.pull(restart(cursor))

    assert page.items == []
    assert page.has_more is False
    assert page.next_cursor == cursor


def test_appended_lines_are_picked_up_by_a_later_pull(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    write(path, line(1), line(2))
    source = connector(path, page_size=10)
    first, _, cursor, _ = pull_all(source)

    append(path, line(3), "\n", line(4, text="late arrival"))
    later, rejects, cursor, _ = pull_all(source, cursor)

    assert ids(first) == ["r1", "r2"]
    assert ids(later) == ["r3", "r4"]
    assert later[1].text == "late arrival"
    assert rejects == []
    assert cursor is not None
    assert cursor["line"] == 5


def test_truncated_file_restarts_from_the_start(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    write(path, *(line(n) for n in range(1, 6)))
    source = connector(path)
    _, _, cursor, _ = pull_all(source)

    write(path, line(10))  # a new, shorter export in the same file
    items, _, cursor, _ = pull_all(source, cursor)

    assert ids(items) == ["r10"]
    assert cursor is not None
    assert cursor["line"] == 1


def test_replaced_file_restarts_from_the_start(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    write(path, line(1), line(2))
    source = connector(path)
    _, _, cursor, _ = pull_all(source)

    replacement = tmp_path / "export.jsonl.new"
    write(replacement, *(line(n) for n in range(20, 25)))
    os.replace(replacement, path)  # a new inode under the same name, longer than before
    items, _, _, _ = pull_all(source, cursor)

    assert ids(items) == ["r20", "r21", "r22", "r23", "r24"]


def test_file_rewritten_in_place_restarts_from_the_start(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    write(path, line(1), line(2))
    source = connector(path)
    _, _, cursor, _ = pull_all(source)

    # Same inode, larger than the old offset, but the consumed bytes are different.
    with path.open("r+", encoding="utf-8") as handle:
        handle.truncate(0)
        handle.write("".join(line(n, text=f"rewritten export {n}") for n in range(30, 34)))
    items, _, _, _ = pull_all(source, cursor)

    assert ids(items) == ["r30", "r31", "r32", "r33"]


def test_page_size_bounds_each_pull(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    write(path, *(line(n) for n in range(1, 51)))

    page = connector(path, page_size=7).pull(None)

    assert len(page.items) == 7
    assert page.has_more is True


# ------------------------------------------------------------------------ mapping


def test_maps_every_field_and_keeps_the_raw_object(tmp_path: Path) -> None:
    full = {
        "id": 981,
        "text": "  The export should include tags  ",
        "title": "Export tags",
        "channel": "canny",
        "kind": "idea",
        "author": {
            "id": 77,
            "handle": "maya",
            "display_name": "Maya O.",
            "followers": 12,
            "email": "maya@example.org",
        },
        "created_at": "2026-11-02T08:30:00+01:00",
        "updated_at": 1_793_000_000,
        "url": "https://ideas.example.org/p/981",
        "metrics": {"votes": 41, "comments": 3},
        "lang": "en",
        "thread_id": "t-1",
        "labels": {"queue": "product"},
    }
    path = tmp_path / "export.jsonl"
    write(path, json.dumps(full) + "\n")

    (item,) = connector(path).pull(None).items

    assert item.external_id == "981"
    assert item.text == "The export should include tags"
    assert (item.title, item.channel, item.kind) == ("Export tags", "canny", "idea")
    assert item.author == Author(
        id="77", handle="maya", display_name="Maya O.", followers=12, email="maya@example.org"
    )
    assert item.created_at == datetime(2026, 11, 2, 7, 30, tzinfo=UTC)
    assert item.updated_at == datetime.fromtimestamp(1_793_000_000, tz=UTC)
    assert item.url == "https://ideas.example.org/p/981"
    assert dict(item.metrics) == {"votes": 41, "comments": 3}
    assert (item.lang, item.thread_id) == ("en", "t-1")
    assert item.raw == full


def test_defaults_come_from_the_config(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    write(path, json.dumps({"id": "a", "text": "hello"}) + "\n")

    (item,) = connector(path, channel="survey", kind="message").pull(None).items

    assert (item.channel, item.kind) == ("survey", "message")
    assert item.title is None
    assert item.author == Author()
    assert dict(item.metrics) == {}


def test_missing_created_at_falls_back_to_the_file_mtime(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    write(path, json.dumps({"id": "a", "text": "no date here"}) + "\n")
    os.utime(path, (1_790_000_000, 1_790_000_000))

    (item,) = connector(path).pull(None).items

    assert item.created_at == datetime.fromtimestamp(1_790_000_000, tz=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-03T12:00:00", datetime(2026, 11, 3, 12, tzinfo=UTC)),  # naive → UTC
        ("2026-11-03T12:00:00Z", datetime(2026, 11, 3, 12, tzinfo=UTC)),
        ("2026-11-03T14:00:00+02:00", datetime(2026, 11, 3, 12, tzinfo=UTC)),
        (1_793_707_200, datetime(2026, 11, 3, 12, tzinfo=UTC)),
        (1_793_707_200.5, datetime(2026, 11, 3, 12, 0, 0, 500_000, tzinfo=UTC)),
    ],
)
def test_created_at_formats(value: object, expected: datetime) -> None:
    item = item_from_record(
        {"id": "x", "text": "t", "created_at": value}, default_created_at=datetime.now(UTC)
    )

    assert item.created_at == expected
    assert item.created_at.utcoffset() is not None


def test_author_as_a_string_and_as_flat_keys() -> None:
    now = datetime.now(UTC)

    plain = item_from_record({"id": "1", "text": "t", "author": "sam"}, default_created_at=now)
    flat = item_from_record(
        {
            "id": "2",
            "text": "t",
            "author_id": "u9",
            "author_handle": "lucia",
            "author_name": "Lucía",
            "author_followers": 300,
            "author_email": "lucia@example.org",
        },
        default_created_at=now,
    )

    assert plain.author == Author(handle="sam")
    assert flat.author == Author(
        id="u9", handle="lucia", display_name="Lucía", followers=300, email="lucia@example.org"
    )


def test_top_level_metrics_are_collected_and_nested_ones_win() -> None:
    item = item_from_record(
        {"id": "1", "text": "t", "likes": 4, "replies": 1, "metrics": {"likes": 5, "reposts": 2}},
        default_created_at=datetime.now(UTC),
    )

    assert dict(item.metrics) == {"likes": 5, "replies": 1, "reposts": 2}


def test_record_error_carries_the_id() -> None:
    with pytest.raises(RecordError, match="kind") as caught:
        item_from_record(
            {"id": "k1", "text": "t", "kind": "tweet"}, default_created_at=datetime.now(UTC)
        )

    assert caught.value.external_id == "k1"


# ------------------------------------------------------------------------ rejects


BAD_LINES = [
    ('{"id": "1", "text": "unterminated', "invalid JSON"),
    ('["id", "text"]', "expected a JSON object, got an array"),
    ('{"text": "no id"}', "missing or empty 'id'"),
    ('{"id": "  ", "text": "blank id"}', "missing or empty 'id'"),
    ('{"id": "2", "text": ""}', "missing or empty 'text'"),
    ('{"id": "3"}', "missing or empty 'text'"),
    ('{"id": "4", "text": "t", "created_at": "last tuesday"}', "bad 'created_at'"),
    ('{"id": "5", "text": "t", "created_at": true}', "bad 'created_at'"),
    ('{"id": "6", "text": "t", "kind": "tweet"}', "'kind' must be one of"),
    ('{"id": "7", "text": "t", "metrics": {"likes": "12k"}}', "metric 'likes'"),
    ('{"id": "8", "text": "t", "votes": -3}', "metric 'votes'"),
    ('{"id": "9", "text": "t", "author": ["a"]}', "'author' must be an object or a string"),
]


@pytest.mark.parametrize(("bad", "reason"), BAD_LINES)
def test_a_malformed_line_becomes_a_reject_and_the_page_goes_on(
    tmp_path: Path, bad: str, reason: str
) -> None:
    path = tmp_path / "export.jsonl"
    write(path, line(1), bad + "\n", line(3))

    page = connector(path).pull(None)

    assert ids(page.items) == ["r1", "r3"]
    (reject,) = page.rejects
    assert reject.location == "line 2"
    assert reject.payload == bad
    assert reason in reject.reason


def test_rejects_across_pages_keep_their_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    write(path, line(1), "not json\n", line(3), line(4), '{"id": "x"}\n', line(6), "[]\n")

    items, rejects, _, _ = pull_all(connector(path, page_size=2))

    assert ids(items) == ["r1", "r3", "r4", "r6"]
    assert [(r.location, r.payload) for r in rejects] == [
        ("line 2", "not json"),
        ("line 5", '{"id": "x"}'),
        ("line 7", "[]"),
    ]
    assert rejects[1].external_id == "x"


def test_invalid_utf8_is_a_reject(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    path.write_bytes(line(1).encode() + b'{"id": "2", "text": "caf\xe9"}\n')

    page = connector(path).pull(None)

    assert ids(page.items) == ["r1"]
    assert page.rejects[0].location == "line 2"
    assert "UTF-8" in page.rejects[0].reason


def test_blank_lines_are_skipped_but_counted(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    write(path, "\n", line(2), "   \n", "\r\n", "not json\n")

    page = connector(path).pull(None)

    assert ids(page.items) == ["r2"]
    assert [r.location for r in page.rejects] == ["line 5"]


def test_crlf_lines_and_a_byte_order_mark_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + line(1).replace("\n", "\r\n").encode() + line(2).encode())

    page = connector(path).pull(None)

    assert ids(page.items) == ["r1", "r2"]
    assert page.rejects == []


# ------------------------------------------------------------------------ trailing partial line


def test_an_unfinished_last_line_waits_until_it_is_complete(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    finished = line(2)
    write(path, line(1), finished[:15])  # a writer is half-way through line 2
    source = connector(path)

    items, rejects, cursor, _ = pull_all(source)
    assert ids(items) == ["r1"]
    assert rejects == []

    append(path, finished[15:], "{broken\n")
    items, rejects, _, _ = pull_all(source, cursor)

    assert ids(items) == ["r2"]
    assert [r.location for r in rejects] == ["line 3"]


def test_a_parsable_last_line_without_newline_is_consumed_once(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    write(path, line(1), line(2).rstrip("\n"))
    source = connector(path)

    items, _, cursor, _ = pull_all(source)
    assert ids(items) == ["r1", "r2"]

    append(path, "\n", "oops\n")  # the newline closes line 2; "oops" is line 3
    items, rejects, _, _ = pull_all(source, cursor)

    assert items == []
    assert [r.location for r in rejects] == ["line 3"]


# ------------------------------------------------------------------------ config, check, cursor


def test_missing_file_is_a_config_error_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.jsonl"
    source = connector(path)

    with pytest.raises(ConfigError, match=re.escape(str(path))):
        source.pull(None)
    with pytest.raises(ConfigError, match=re.escape(str(path))):
        source.check()


def test_check_accepts_a_readable_file_and_refuses_a_directory(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    write(path, line(1))

    connector(path).check()
    with pytest.raises(ConfigError, match="directory"):
        connector(tmp_path).check()


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"path": ""},
        {"path": "x.jsonl", "page_size": 0},
        {"path": "x.jsonl", "page_size": "10"},
        {"path": "x.jsonl", "kind": "tweet"},
        {"path": "x.jsonl", "channel": ""},
    ],
)
def test_invalid_config_is_refused(config: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        JsonlConnector(config)


@pytest.mark.parametrize(
    "cursor",
    [
        {"line": 3},
        {"offset": -1, "line": 0},
        {"offset": "12", "line": 1},
        {"offset": 0, "line": 0, "inode": "x"},
    ],
)
def test_a_corrupt_cursor_is_refused(tmp_path: Path, cursor: Cursor) -> None:
    path = tmp_path / "export.jsonl"
    write(path, line(1))

    with pytest.raises(BadCursor):
        connector(path).pull(cursor)


def test_registered_under_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    write(path, line(1))

    source = registry.create("jsonl", {"path": str(path)})

    assert isinstance(source, JsonlConnector)
    assert "jsonl" in registry.kinds()
    assert ids(source.pull(None).items) == ["r1"]

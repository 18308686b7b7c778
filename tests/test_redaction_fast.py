"""The fast redaction path gives exactly what the three patterns alone give.

``redact`` skips a string when a cheap scan shows none of the patterns could replace
anything in it, and ``Privacy.item`` reuses the item's redacted text and title where the
payload repeats them. ``reference`` below is the straightforward version (every pattern
over every string, every payload string redacted); hypothesis compares the two on strings
built to sit at the patterns' edges: runs of digits with every separator, near-cards,
dates, times, URLs, addresses, Unicode digits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from app.ops import redaction
from app.ops.privacy import Privacy
from app.ops.redaction import CARD, EMAIL, EMAIL_MARK, PHONE, redact, redact_json
from connectors.base import SourceItem


def reference(text: str) -> str:
    text = CARD.sub(redaction._card, text)
    text = EMAIL.sub(EMAIL_MARK, text)
    return PHONE.sub(redaction._phone, text)


def reference_json(value: Any) -> Any:
    if isinstance(value, str):
        return reference(value)
    if isinstance(value, Mapping):
        return {key: reference_json(inner) for key, inner in value.items()}
    if isinstance(value, list | tuple):
        return [reference_json(inner) for inner in value]
    return value


# Pieces that sit at the edges of the patterns, glued by separators the patterns care about.
PIECES = st.one_of(
    st.text(alphabet="0123456789", min_size=1, max_size=20),
    st.sampled_from(
        [
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "5500000000000004",
            "4111 1111 1111 1112",
            "1790000000000000017",
            "+44 20 7946 0958",
            "(555) 123-4567",
            "030 1234 5678",
            "+49 30 1234 5678",
            "+1 202 555 0143",
            "+4915112345678",
            "(030)12345678",
            "123456789",
            "12 345 678",
            "2026-11-01T12:00:00Z",
            "2026-11-22 04:11:27,640",
            "2026-11-22 0411 2764",
            "22-11-2026 1234 5678",
            "2026-1-2 12 34",
            "http://127.0.0.1:8000/api/v2/tickets/123456789012.json",
            "https://x.com/acme/status/1790000000000000017",
            "v3.2.1",
            "10 000",
            "ann@example.org",
            "jane.doe+crm@example.co.uk",
            "support@",
            "@acme",
            "a@b.c",
            "x@y.com-5551234567",
            "٤١١١ ١١١١ ١١١١ ١١١١",  # Arabic-Indic digits: \\d matches them
            "١٢٣ ٤٥٦ ٧٨٩٠",
            "²³⁴⁵⁶⁷⁸⁹¹²³",  # superscripts: digits to isdigit, not to \\d
            "",
        ]
    ),
    st.text(alphabet="0123456789 ()+-./=:@_aZ٣", max_size=30),
    st.text(max_size=12),
)
SEPARATORS = st.sampled_from(
    ["", " ", "-", "  ", "(", ")", "+", ".", "/", "=", ":", "\n", "x", "@"]
)


@st.composite
def texts(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.tuples(PIECES, SEPARATORS), max_size=6))
    return "".join(piece + separator for piece, separator in parts)


@settings(max_examples=2000)
@given(texts())
@example("call +44 20 7946 0958 or mail ann@example.org, card 4111 1111 1111 1111")
@example("2026-11-01T00:00:00Z")
@example("2026-11-01 1234")
@example("123 456 789")
@example("12345678")
@example("1 2 3 4 5 6 7 8 9")
@example("(((((((((1)))))))))")
@example("tel:+123456789")  # nine digits, nine characters from the first
@example("(12)3456789")
def test_redact_equals_the_patterns_applied_to_every_string(text: str) -> None:
    assert redact(text) == reference(text)


@settings(max_examples=500)
@given(st.text(max_size=60))
def test_redact_equals_the_patterns_on_arbitrary_text(text: str) -> None:
    assert redact(text) == reference(text)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts(),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=500)
@given(JSON)
def test_redact_json_equals_the_reference(value: Any) -> None:
    assert redact_json(value) == reference_json(value)


@pytest.mark.parametrize("raw_payload", ["redact", "keep", "drop"])
@pytest.mark.parametrize("redacting", [True, False])
@settings(max_examples=150)
@given(text=texts(), title=st.none() | texts(), extra=texts())
def test_privacy_item_equals_redacting_every_field_on_its_own(
    raw_payload: Any, redacting: bool, text: str, title: str | None, extra: str
) -> None:
    raw = {
        "description": text,
        "subject": title,
        "comments": [{"body": text}, {"body": extra}],
        "via": {"from": extra},
        "andon": {"deleted": False},
    }
    item = SourceItem(
        channel="zendesk",
        kind="ticket",
        external_id="1",
        text=text,
        title=title,
        created_at=datetime(2026, 11, 1, tzinfo=UTC),
        raw=raw,
    )

    policed = Privacy(redact=redacting, raw_payload=raw_payload).item(item)

    expected_text = reference(text) if redacting else text
    expected_title = reference(title) if redacting and title is not None else title
    expected_raw: Any = {
        "redact": reference_json(raw),
        "keep": raw,
        "drop": {"andon": {"deleted": False}},
    }[raw_payload]
    assert (policed.text, policed.title, policed.raw) == (
        expected_text,
        expected_title,
        expected_raw,
    )
    assert dataclasses.replace(policed, text=text, title=title, raw=raw) == item

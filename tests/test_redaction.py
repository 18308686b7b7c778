"""Redaction of e-mail addresses, phone and card numbers: in text, raw payloads and logs."""

from __future__ import annotations

import dataclasses
import io
import json
import logging

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.db import unit_of_work
from app.items.models import Item
from app.learning.service import Classifier
from app.ops import logs
from app.ops.privacy import Privacy
from app.ops.redaction import redact, redact_json
from app.sources.models import QuarantinedRecord, Source
from app.sources.runner import run_sync
from connectors.base import Rejected
from tests.support import ListConnector, factory_for, make_item


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail me at jane.doe+crm@example.co.uk today", "mail me at [email] today"),
        ("call +44 20 7946 0958 please", "call [phone] please"),
        ("call (555) 123-4567 now", "call [phone] now"),
        ("my number is 030 1234 5678.", "my number is [phone]."),
        ("card 4111 1111 1111 1111 was charged twice", "card [card] was charged twice"),
        ("card 4111-1111-1111-1111!", "card [card]!"),
        ("paid with 5500000000000004", "paid with [card]"),
    ],
)
def test_personal_data_is_replaced_by_markers(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "order 123456789 never arrived",  # a bare order number is not a phone
        "refund 4111 1111 1111 1112 please",  # fails the Luhn check: not a card
        "see https://x.com/acme/status/1790000000000000017",  # a snowflake id in a URL
        "tweet 1790000000000000017 is the one",  # 19 digits unbroken: an id, not a card
        "since 2026-11-01T12:00:00Z on version 3.2.1, at 10 000 users",
        "2026-11-22 04:11:27,640 INFO httpx: GET /api/v1/timelines",  # a log time stamp
        "the @acme team and support@ are useless",  # a handle and a bare @
    ],
)
def test_ids_dates_versions_and_handles_are_left_alone(text: str) -> None:
    assert redact(text) == text


def test_json_strings_are_redacted_keys_and_numbers_kept() -> None:
    raw = {"from": "bob@example.com", "n": 4111111111111111, "nested": [{"tel": "+1 202 555 0143"}]}
    assert redact_json(raw) == {
        "from": "[email]",
        "n": 4111111111111111,
        "nested": [{"tel": "[phone]"}],
    }


def _source(factory: sessionmaker[Session]) -> None:
    with unit_of_work(factory) as session:
        session.add(Source(name="src", kind="list", config={}))


@pytest.mark.parametrize(
    ("privacy", "raw"),
    [
        (Privacy(), {"n": 1, "email": "[email]", "andon": {"deleted": False}}),
        (
            Privacy(raw_payload="keep"),
            {"n": 1, "email": "ann@example.org", "andon": {"deleted": False}},
        ),
        (Privacy(raw_payload="drop"), {"andon": {"deleted": False}}),
    ],
    ids=["redact", "keep", "drop"],
)
def test_stored_items_hold_no_personal_data_and_raw_follows_the_setting(
    factory: sessionmaker[Session],
    classifier: Classifier,
    privacy: Privacy,
    raw: dict[str, object],
) -> None:
    _source(factory)
    item = make_item(1, "I am ann@example.org, call me on +49 30 1234 5678 about my refund")
    item = dataclasses.replace(
        item,
        title="Refund for card 4111 1111 1111 1111",
        raw={"n": 1, "email": "ann@example.org", "andon": {"deleted": False}},
    )
    reject = Rejected(reason="bad", payload='{"mail": "ann@example.org"}', external_id="x")
    connector = ListConnector([item], rejects_on_first_page=[reject])

    run_sync(factory, "src", classifier, connector_factory=factory_for(connector), privacy=privacy)

    with factory() as session:
        stored = session.scalars(select(Item)).one()
        assert stored.text == "I am [email], call me on [phone] about my refund"
        assert stored.title == "Refund for card [card]"
        assert stored.raw == raw
        payload = session.scalars(select(QuarantinedRecord.payload)).one()
        expected = reject.payload if privacy.raw_payload == "keep" else '{"mail": "[email]"}'
        assert payload == expected


def test_redaction_off_stores_text_as_pulled(
    factory: sessionmaker[Session], classifier: Classifier
) -> None:
    _source(factory)
    connector = ListConnector([make_item(1, "write to ann@example.org")])

    run_sync(
        factory,
        "src",
        classifier,
        connector_factory=factory_for(connector),
        privacy=Privacy(redact=False, raw_payload="keep"),
    )

    with factory() as session:
        assert session.scalars(select(Item.text)).one() == "write to ann@example.org"


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_log_lines_are_redacted(fmt: logs.LogFormat) -> None:
    stream = io.StringIO()
    logger = logging.getLogger(f"test.redaction.{fmt}")
    logger.addHandler(logs.make_handler(fmt, redacting=True, stream=stream))
    logger.propagate = False

    logger.warning("reply to %s", "ann@example.org")

    line = stream.getvalue().strip()
    assert "ann@example.org" not in line
    text = json.loads(line)["message"] if fmt == "json" else line
    assert "reply to [email]" in text

"""Redaction of personal data in free text: e-mail addresses, phone numbers, card numbers.

A pure function module: no settings, no I/O. ``app.ops.privacy`` decides when it applies.

What counts (chosen to keep ids, dates and versions intact):

* an e-mail address: ``local@domain.tld``;
* a card-like number: 13-19 digits, optionally grouped by single spaces or dashes, that
  passes the Luhn check. An unbroken run longer than 16 digits is not taken for a card:
  tweet and toot ids are 18-19 digit snowflakes;
* a phone number: 9-15 digits that start with ``+`` or ``(`` or are grouped by spaces,
  dashes or parentheses. A bare run of digits (an order number) and a date are left alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

EMAIL_MARK = "[email]"
PHONE_MARK = "[phone]"
CARD_MARK = "[card]"

EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
CARD = re.compile(r"(?<![\w/=.-])\d(?:[ -]?\d){12,18}(?![\w/])")
PHONE = re.compile(
    r"(?<![\w/=.+-])(?:\+\d{1,3}[ -]?)?(?:\(\d{1,4}\)[ -]?)?\d{1,4}(?:[ -]\d{1,5}){1,5}(?![\w/])"
    r"|(?<![\w/=.+-])(?:\+\d{1,3}[ -]?|\(\d{1,4}\)[ -]?)\d{6,12}(?![\w/])"
)


def luhn_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    found = match.group(0)
    digits = re.sub(r"\D", "", found)
    unbroken = found.isdigit()
    if (unbroken and len(digits) > 16) or not luhn_ok(digits):
        return found
    return CARD_MARK


DATE_LIKE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}\b|\d{1,2}-\d{1,2}-\d{4}\b")


def _phone(match: re.Match[str]) -> str:
    found = match.group(0)
    digits = sum(char.isdigit() for char in found)
    if DATE_LIKE.match(found):  # "2026-11-22 04:11" is a time stamp
        return found
    return PHONE_MARK if 9 <= digits <= 15 else found


_DIGIT = re.compile(r"\d")


def redact(text: str) -> str:
    """``text`` with e-mail addresses, card-like and phone numbers replaced by markers."""
    if not text:
        return text
    # Cards and phones need digits, addresses an "@": most strings have neither, and one
    # scan for them is much cheaper than the three patterns.
    if _DIGIT.search(text):
        text = CARD.sub(_card, text)
    if "@" in text:
        text = EMAIL.sub(EMAIL_MARK, text)
    if _DIGIT.search(text):
        text = PHONE.sub(_phone, text)
    return text


def redact_json(value: Any) -> Any:
    """Every string inside a JSON value redacted; keys and non-strings untouched."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {key: redact_json(inner) for key, inner in value.items()}
    if isinstance(value, list | tuple):
        return [redact_json(inner) for inner in value]
    return value

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
# A card (13-19 digits) or a phone that is replaced (9-15 digits) lies within one run of
# the only characters their patterns match (digits, spaces, dashes, parentheses, plus
# signs) that holds nine digits or more; an address needs an "@". Time stamps, URLs, ids,
# versions, short numbers and plain prose have neither, and one scan for them is much
# cheaper than the three patterns. A run is matched from its first digit.
_RUN = re.compile(r"\d[\d ()+-]{8,}")
_SEPARATORS = " ()+-"


def _may_change(text: str) -> bool:
    return "@" in text or any(
        len(run) - sum(map(run.count, _SEPARATORS)) >= 9 for run in _RUN.findall(text)
    )


def redact(text: str) -> str:
    """``text`` with e-mail addresses, card-like and phone numbers replaced by markers."""
    if not text or not _may_change(text):
        return text
    if _DIGIT.search(text):
        text = CARD.sub(_card, text)
    if "@" in text:
        text = EMAIL.sub(EMAIL_MARK, text)
    if _DIGIT.search(text):
        text = PHONE.sub(_phone, text)
    return text


def redact_json(value: Any, known: Mapping[str, str] | None = None) -> Any:
    """Every string inside a JSON value redacted; keys and non-strings untouched.

    ``known`` maps strings already redacted (an item's text and title, which its payload
    repeats) to their redacted form, so they are not redacted twice.
    """
    return _redact_json(value, known or {})


def _redact_json(value: Any, known: Mapping[str, str]) -> Any:
    kind = type(value)  # the exact JSON types first: isinstance of an ABC is slow
    if kind is str:
        done = known.get(value)
        return redact(value) if done is None else done
    if kind is dict:
        return {key: _redact_json(inner, known) for key, inner in value.items()}
    if kind is list:
        return [_redact_json(inner, known) for inner in value]
    if kind is int or kind is bool or kind is float or value is None:
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {key: _redact_json(inner, known) for key, inner in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_json(inner, known) for inner in value]
    return value

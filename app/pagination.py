"""Opaque cursors for list endpoints: base64url-encoded JSON, validated on the way in."""

from __future__ import annotations

import base64
import json
from typing import Any

from app.errors import InvalidInput


def encode_cursor(value: dict[str, Any]) -> str:
    raw = json.dumps(value, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> dict[str, Any]:
    try:
        padded = token + "=" * (-len(token) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput(
            f"invalid cursor {token[:40]!r}: pass the next_cursor you were given"
        ) from None
    if not isinstance(value, dict):
        raise InvalidInput("invalid cursor: pass the next_cursor you were given")
    return value

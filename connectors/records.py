"""Turning one upstream record into fields, or into a ``Rejected`` with the reason.

Shared by the help-desk connectors, whose records (tickets) have integer ids and ISO
timestamps and are quarantined the same way when they cannot be read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeGuard

from connectors.base import Rejected, parse_time


class Malformed(Exception):
    """A record that cannot become a SourceItem; it becomes a Rejected."""


def is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def time_field(record: Mapping[str, Any], name: str) -> datetime:
    value = record.get(name)
    if not isinstance(value, str):
        raise Malformed(f"missing or invalid {name!r}")
    try:
        return parse_time(value)
    except ValueError:
        raise Malformed(f"invalid {name!r} {value[:40]!r}") from None


def reject(record: Any, reason: str, location: str) -> Rejected:
    record_id = record.get("id") if isinstance(record, dict) else None
    return Rejected(
        reason=reason,
        payload=json.dumps(record, sort_keys=True, default=str),
        external_id=str(record_id) if is_int(record_id) else None,
        location=location,
    )

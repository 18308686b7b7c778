"""The privacy policy applied to feedback before it is classified, stored, logged or exported.

``ANDON_REDACT`` (default on) redacts the title and text of every item before the
classifier or the database sees them, so stored items, exports and the feed never hold
the data. ``ANDON_RAW_PAYLOAD`` says what happens to the original payload:
``redact`` (default: every string in it redacted), ``keep`` (stored as pulled) or
``drop`` (not stored). Quarantined records keep their payload (nothing is silently
dropped) but redacted unless ``keep``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from app.ops.redaction import redact, redact_json
from connectors.base import SourceItem

RawPayload = Literal["keep", "redact", "drop"]


@dataclass(frozen=True, slots=True)
class Privacy:
    redact: bool = True
    raw_payload: RawPayload = "redact"

    def item(self, source_item: SourceItem) -> SourceItem:
        """The item as it may be classified and stored."""
        changes: dict[str, object] = {}
        known: dict[str, str] = {}  # the payload repeats the text and title: redact them once
        if self.redact:
            changes["text"] = known[source_item.text] = redact(source_item.text)
            if source_item.title is not None:
                changes["title"] = known[source_item.title] = redact(source_item.title)
        if self.raw_payload == "drop":
            changes["raw"] = _marker_only(source_item)
        elif self.raw_payload == "redact":
            changes["raw"] = redact_json(source_item.raw, known)
        return dataclasses.replace(source_item, **changes) if changes else source_item  # type: ignore[arg-type]

    def payload(self, text: str) -> str:
        """A quarantined record's payload as it may be stored."""
        return text if self.raw_payload == "keep" else redact(text)


def _marker_only(source_item: SourceItem) -> dict[str, object]:
    # Connectors put Andon's own annotations (deleted upstream, status, merges) under
    # raw["andon"]; they are not the customer's payload and the pipeline reads them.
    marker = source_item.raw.get("andon")
    return {"andon": marker} if marker is not None else {}

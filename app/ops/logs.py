"""Structured logs: one JSON object per line, with the request id and redacted messages.

``ANDON_LOG_FORMAT=json`` (the Docker image's default) writes lines like
``{"time": "...", "level": "INFO", "logger": "app.sources.runner", "message": "...",
"request_id": "..."}`` plus any ``extra={...}`` fields; ``text`` (the default, for people
at a terminal) writes ``time level logger [request id]: message``. With ``ANDON_REDACT``
on, messages and tracebacks are redacted before they are written.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from app.ops.redaction import redact

LogFormat = Literal["json", "text"]

request_id: ContextVar[str | None] = ContextVar("andon_request_id", default=None)

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)


class RequestIdFilter(logging.Filter):
    """Stamps each record with the request id of the request being served (or None)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    def __init__(self, *, redacting: bool = True) -> None:
        super().__init__()
        self.redacting = redacting

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": self._clean(message),
            "request_id": getattr(record, "request_id", None),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value if not isinstance(value, str) else self._clean(value)
        if record.exc_info:
            entry["exception"] = self._clean(self.formatException(record.exc_info))
        return json.dumps(entry, default=str, ensure_ascii=False)

    def _clean(self, text: str) -> str:
        return redact(text) if self.redacting else text


class TextFormatter(logging.Formatter):
    def __init__(self, *, redacting: bool = True) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(rid)s: %(message)s")
        self.redacting = redacting

    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", None)
        record.rid = f" [{rid}]" if rid else ""
        return super().format(record)

    def formatMessage(self, record: logging.LogRecord) -> str:
        if self.redacting:  # the message only: the time stamp is not personal data
            record.message = redact(record.message)
        return super().formatMessage(record)

    def formatException(self, ei: Any) -> str:
        text = super().formatException(ei)
        return redact(text) if self.redacting else text


def make_handler(
    fmt: LogFormat = "text", *, redacting: bool = True, stream: TextIO | None = None
) -> logging.Handler:
    """A handler writing ``fmt`` lines, stamped with the request id, to ``stream``."""
    handler = logging.StreamHandler(stream or sys.stderr)
    formatter: logging.Formatter = (
        JsonFormatter(redacting=redacting) if fmt == "json" else TextFormatter(redacting=redacting)
    )
    handler.setFormatter(formatter)
    handler.addFilter(RequestIdFilter())
    return handler


def configure(
    level: str, fmt: LogFormat = "text", *, redacting: bool = True, stream: TextIO | None = None
) -> logging.Handler:
    """Replace the root logger's handlers with one that writes ``fmt`` to ``stream``."""
    handler = make_handler(fmt, redacting=redacting, stream=stream)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # uvicorn's loggers write through the root handler (uvicorn is run with log_config=None).
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # APScheduler logs every job start and finish at INFO; Andon logs what the jobs did.
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
    return handler

"""Outbound webhook on a new spike: a signed JSON POST, retried with backoff.

Headers: ``X-Andon-Timestamp`` (Unix seconds) and ``X-Andon-Signature``:
``sha256=`` + hex HMAC-SHA256 of ``"{timestamp}." + body`` with the secret from the
environment variable named by ``ANDON_SPIKE_WEBHOOK_SECRET_ENV``. A receiver recomputes
it and rejects stale timestamps. A 5xx, 429 or network error is retried after 1, 2, 4, 8 s
(five attempts); another 4xx is final.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import httpx

ATTEMPTS = 5
BASE_DELAY = 1.0


class WebhookFailed(Exception):
    """The receiver did not accept the delivery."""


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def deliver(
    url: str,
    payload: dict[str, Any],
    secret: bytes,
    *,
    client: httpx.Client,
    attempts: int = ATTEMPTS,
    base_delay: float = BASE_DELAY,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> int:
    """POST ``payload``; the number of attempts it took. Raises ``WebhookFailed``."""
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True, default=str).encode()
    error = "no attempt made"
    for attempt in range(1, attempts + 1):
        timestamp = str(int(clock()))
        headers = {
            "Content-Type": "application/json",
            "X-Andon-Timestamp": timestamp,
            "X-Andon-Signature": sign(secret, timestamp, body),
        }
        try:
            response = client.post(url, content=body, headers=headers)
        except httpx.TransportError as exc:
            error = f"{type(exc).__name__}: {exc}"
        else:
            if response.status_code < 300:
                return attempt
            error = f"HTTP {response.status_code}"
            if response.status_code < 500 and response.status_code != 429:
                raise WebhookFailed(error)
        if attempt < attempts:
            sleep(base_delay * 2 ** (attempt - 1))
    raise WebhookFailed(f"{error} after {attempts} attempts")

"""Errors a connector raises. Callers never see bare ``httpx`` exceptions.

ConnectorError
 ├── ConfigError          the source's configuration is invalid (missing query, bad URL ...)
 ├── AuthFailed           credentials missing or refused (401/403): pause the source, do not retry
 ├── BadCursor            the stored cursor cannot be used (corrupt, or refused upstream)
 ├── RateLimited          429 / quota exhausted: retry after ``retry_after`` seconds
 ├── RequestRejected      another 4xx: the request itself is wrong (carries status and body)
 ├── UpstreamError        5xx, transport errors, timeouts after the retries ran out: retry later
 └── ProtocolError        the response is not what the API documents (bad JSON, wrong shape)
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Base class of every connector error."""


class ConfigError(ConnectorError):
    """The source configuration is invalid."""


class AuthFailed(ConnectorError):
    """Credentials are missing or were refused upstream."""


class BadCursor(ConnectorError):
    """The cursor cannot be used to continue."""


class RateLimited(ConnectorError):
    """Upstream asked us to slow down; ``retry_after`` is in seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RequestRejected(ConnectorError):
    """Upstream refused the request with a 4xx other than 401/403/429."""

    def __init__(self, message: str, status: int, body: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class UpstreamError(ConnectorError):
    """Upstream failed (5xx, timeout, connection) and retries ran out."""


class ProtocolError(ConnectorError):
    """The response does not match the documented wire format."""

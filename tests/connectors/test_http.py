"""connectors/http.py: the one retry policy and the error mapping every connector shares."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from connectors import http
from connectors.errors import (
    AuthFailed,
    ProtocolError,
    RateLimited,
    RequestRejected,
    UpstreamError,
)

Handler = Callable[[httpx.Request], httpx.Response]


class Script:
    """A transport answering from a list of outcomes (responses or exceptions), in order."""

    def __init__(self, *outcomes: httpx.Response | type[httpx.TransportError]) -> None:
        self.outcomes: Iterator[httpx.Response | type[httpx.TransportError]] = iter(outcomes)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        outcome = next(self.outcomes)
        if isinstance(outcome, httpx.Response):
            return outcome
        raise outcome("scripted failure", request=request)


def client_for(handler: Handler) -> httpx.Client:
    return http.make_client("https://api.example", transport=httpx.MockTransport(handler))


def policy(sleeps: list[float], retries: int = 3, seed: int = 7) -> http.RetryPolicy:
    return http.RetryPolicy(max_retries=retries, sleep=sleeps.append, rng=random.Random(seed))


def ok(body: bytes = b'{"ok": true}') -> httpx.Response:
    return httpx.Response(200, content=body, headers={"content-type": "application/json"})


def status(code: int, headers: dict[str, str] | None = None, body: bytes = b"") -> httpx.Response:
    return httpx.Response(code, content=body, headers=headers or {})


def test_5xx_is_retried_with_jittered_backoff_then_succeeds() -> None:
    script = Script(status(503), status(502), ok())
    sleeps: list[float] = []

    response = http.request(client_for(script), "GET", "/items", policy=policy(sleeps))

    assert response.status_code == 200
    assert len(script.requests) == 3
    assert len(sleeps) == 2
    assert 0 <= sleeps[0] <= 0.5
    assert 0 <= sleeps[1] <= 1.0


def test_5xx_after_the_retries_ran_out_is_upstream_error() -> None:
    script = Script(*(status(500, body=b"boom") for _ in range(4)))
    sleeps: list[float] = []

    with pytest.raises(UpstreamError, match=r"500 boom \(after 4 attempts\)"):
        http.request(client_for(script), "GET", "/items", policy=policy(sleeps))

    assert len(script.requests) == 4
    assert len(sleeps) == 3


def test_408_is_retried() -> None:
    script = Script(status(408), ok())
    sleeps: list[float] = []

    assert http.request(client_for(script), "GET", "/", policy=policy(sleeps)).status_code == 200
    assert len(sleeps) == 1


def test_backoff_is_full_jitter_under_an_exponential_cap() -> None:
    retry = http.RetryPolicy(backoff_base=0.5, backoff_max=8.0, rng=random.Random(1))

    for attempt, ceiling in enumerate([0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]):
        delays = [retry.delay(attempt) for _ in range(200)]
        assert all(0 <= delay <= ceiling for delay in delays)
        assert max(delays) > ceiling * 0.8  # spread over the whole range ...
        assert min(delays) < ceiling * 0.2  # ... not a fixed wait


@pytest.mark.parametrize(
    ("error", "message"),
    [(httpx.ConnectError, "ConnectError"), (httpx.ReadTimeout, "timed out")],
)
def test_transport_errors_and_timeouts_are_retried_then_upstream_error(
    error: type[httpx.TransportError], message: str
) -> None:
    script = Script(error, error, error)
    sleeps: list[float] = []

    with pytest.raises(UpstreamError, match=message):
        http.request(client_for(script), "GET", "/", policy=policy(sleeps, retries=2))

    assert len(script.requests) == 3
    assert len(sleeps) == 2


def test_a_timeout_then_success_returns_the_response() -> None:
    script = Script(httpx.ReadTimeout, ok())
    sleeps: list[float] = []

    response = http.request(client_for(script), "GET", "/", policy=policy(sleeps))

    assert response.json() == {"ok": True}
    assert len(sleeps) == 1


@pytest.mark.parametrize(
    ("headers", "low", "high"),
    [
        ({"Retry-After": "120"}, 120, 120),
        ({"Retry-After": "7.5"}, 7.5, 7.5),
        ({"x-rate-limit-reset": "<epoch+300>"}, 298, 300),
        ({"X-RateLimit-Reset": "<iso+240>"}, 238, 240),
        ({"Retry-After": "<date+90>"}, 88, 90),
        ({"Retry-After": "nonsense", "x-rate-limit-reset": "<epoch+30>"}, 28, 30),
        ({}, http.DEFAULT_RATE_LIMIT_WAIT, http.DEFAULT_RATE_LIMIT_WAIT),
        ({"Retry-After": "86400"}, http.MAX_RATE_LIMIT_WAIT, http.MAX_RATE_LIMIT_WAIT),
    ],
)
def test_429_is_rate_limited_with_the_wait_asked_for(
    headers: dict[str, str], low: float, high: float
) -> None:
    now = datetime.now(UTC)
    rendered = {}
    for name, value in headers.items():
        if value.startswith("<epoch+"):
            value = str(int(now.timestamp()) + int(value[7:-1]))
        elif value.startswith("<iso+"):
            moment = now + timedelta(seconds=int(value[5:-1]))
            value = moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        elif value.startswith("<date+"):
            value = format_datetime(now + timedelta(seconds=int(value[6:-1])), usegmt=True)
        rendered[name] = value
    script = Script(status(429, rendered, b'{"error": "Too many requests"}'))
    sleeps: list[float] = []

    with pytest.raises(RateLimited) as caught:
        http.request(client_for(script), "GET", "/", policy=policy(sleeps))

    assert low <= caught.value.retry_after <= high
    assert len(script.requests) == 1  # never retried here: the runner decides
    assert sleeps == []


def test_retry_after_http_date_is_exact_against_a_given_now() -> None:
    now = datetime(2026, 5, 13, 12, 0, tzinfo=UTC)
    response = status(429, {"Retry-After": "Wed, 13 May 2026 12:02:30 GMT"})

    assert http.retry_after_seconds(response, now=now) == 150
    # A wait already past (clock skew) still waits a second: never a tight retry loop.
    assert http.retry_after_seconds(status(429, {"Retry-After": "-5"}), now=now) == 1.0
    assert http.retry_after_seconds(status(429, {"Retry-After": "0"}), now=now) == 1.0


def test_reset_headers_against_a_given_now() -> None:
    now = datetime(2026, 5, 13, 12, 0, tzinfo=UTC)
    epoch = status(429, {"x-rate-limit-reset": str(int(now.timestamp()) + 61)})
    iso = status(429, {"X-RateLimit-Reset": "2026-05-13T12:05:00.000Z"})

    assert http.retry_after_seconds(epoch, now=now) == 61
    assert http.retry_after_seconds(iso, now=now) == 300


@pytest.mark.parametrize("code", [401, 403])
def test_401_and_403_are_auth_failed_and_not_retried(code: int) -> None:
    script = Script(status(code, body=b'{"error": "The access token is invalid"}'))
    sleeps: list[float] = []

    with pytest.raises(AuthFailed, match=f"{code}.*access token is invalid"):
        http.request(client_for(script), "GET", "/", policy=policy(sleeps))

    assert len(script.requests) == 1
    assert sleeps == []


@pytest.mark.parametrize("code", [400, 404, 409, 422])
def test_other_4xx_is_request_rejected_with_status_and_body(code: int) -> None:
    script = Script(status(code, body=b'{"title": "Invalid Request"}'))

    with pytest.raises(RequestRejected) as caught:
        http.request(client_for(script), "GET", "/", policy=policy([]))

    assert caught.value.status == code
    assert caught.value.body == '{"title": "Invalid Request"}'
    assert len(script.requests) == 1


def test_allowed_statuses_are_returned_to_the_caller() -> None:
    script = Script(status(400, body=b'{"title": "Invalid Request"}'))

    response = http.request(client_for(script), "GET", "/", policy=policy([]), allow={400})

    assert response.status_code == 400


def test_allow_does_not_hide_other_statuses() -> None:
    with pytest.raises(RequestRejected):
        http.request(client_for(Script(status(404))), "GET", "/", policy=policy([]), allow={400})


def test_make_client_sets_identity_headers_and_timeouts() -> None:
    script = Script(ok())
    client = http.make_client(
        "https://api.example",
        headers={"X-Extra": "1"},
        transport=httpx.MockTransport(script),
        timeouts=http.Timeouts(connect=1.0, read=2.0, write=3.0, pool=4.0),
    )

    http.request(client, "GET", "/ping", policy=policy([]), params={"q": "a b"})

    (request,) = script.requests
    assert request.headers["user-agent"] == http.USER_AGENT
    assert request.headers["accept"] == "application/json"
    assert request.headers["x-extra"] == "1"
    assert str(request.url) == "https://api.example/ping?q=a+b"
    assert client.timeout == httpx.Timeout(connect=1.0, read=2.0, write=3.0, pool=4.0)


def _response(content: bytes, content_type: str | None) -> httpx.Response:
    headers = {"content-type": content_type} if content_type else {}
    script = Script(httpx.Response(200, content=content, headers=headers))
    return http.request(client_for(script), "GET", "/body", policy=policy([]))


def test_json_body_decodes_json_and_problem_json() -> None:
    assert http.json_body(_response(b'{"a": [1]}', "application/json; charset=utf-8")) == {"a": [1]}
    assert http.json_body(_response(b'{"title": "x"}', "application/problem+json")) == {
        "title": "x"
    }


def test_json_body_keeps_what_the_standard_parser_accepts() -> None:
    """The fast parser is strict; a body it refuses but JSON allows still decodes the same."""
    # A lone surrogate escape (a tweet cut in the middle of an emoji) and a UTF-16 body.
    cut = b'{"text": "thanks \\ud83d", "n": 1}'
    assert http.json_body(_response(cut, "application/json")) == {"text": "thanks \ud83d", "n": 1}
    utf16 = '{"text": "d\u00e9j\u00e0"}'.encode("utf-16")
    assert http.json_body(_response(utf16, "application/json")) == {"text": "déjà"}


@pytest.mark.parametrize(
    ("content", "content_type", "message"),
    [
        (b"<html>maintenance</html>", "text/html", "expected JSON, got text/html"),
        (b'{"a": 1}', None, "expected JSON, got no content type"),
        (b'{"data": [{"id": "1", "te', "application/json", "invalid JSON"),
        (b"", "application/json", "invalid JSON"),
    ],
)
def test_json_body_refuses_what_is_not_json(
    content: bytes, content_type: str | None, message: str
) -> None:
    with pytest.raises(ProtocolError, match=message):
        http.json_body(_response(content, content_type))

"""Spikes on known synthetic hourly series, the andon's lifecycle, and the signed webhook."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.db import unit_of_work
from app.signal import spikes
from app.signal.jobs import detect_spikes
from app.signal.service import Contribution, RollupDeltas
from app.signal.webhook import WebhookFailed, deliver

START = datetime(2026, 10, 1, tzinfo=UTC)
HOURS = 20 * 24
PLANTED = START + timedelta(hours=HOURS - 5)


def seed(factory: sessionmaker[Session], planted: bool) -> None:
    """A noisy but flat series (8-12 items an hour, a quarter negative), maybe one spike."""
    deltas = RollupDeltas()
    for hour in range(HOURS):
        moment = START + timedelta(hours=hour)
        count = 8 + (hour * 7) % 5
        negative = count // 4
        if planted and moment == PLANTED:
            count, negative = 40, 30
        for n in range(count):
            deltas.add(
                Contribution(
                    bucket_start=moment,
                    queue="service",
                    channel="twitter",
                    sentiment="negative" if n < negative else "neutral",
                    compound=-0.5 if n < negative else 0.0,
                    demand=1.0,
                )
            )
    with unit_of_work(factory) as session:
        deltas.flush(session)


def sweep(factory: sessionmaker[Session], settings: Settings) -> list[tuple[str, str, datetime]]:
    """Run detection after every hour of the last week, as the scheduler would."""
    found = []
    for hour in range(HOURS - 7 * 24, HOURS + 1):
        with unit_of_work(factory) as session:
            now = START + timedelta(hours=hour, minutes=5)
            found += [
                (s.key, s.metric, s.bucket_start) for s in spikes.detect(session, settings, now)
            ]
    return found


def test_a_flat_series_raises_no_spike(factory: sessionmaker[Session], settings: Settings) -> None:
    seed(factory, planted=False)
    assert sweep(factory, settings) == []


def test_a_planted_spike_is_found_once_per_metric(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    seed(factory, planted=True)
    assert sorted(sweep(factory, settings)) == [
        ("service", "negative_share", PLANTED),
        ("service", "volume", PLANTED),
    ]


def test_spikes_are_listed_acknowledged_and_closed_with_a_cause(
    client: TestClient, factory: sessionmaker[Session], settings: Settings
) -> None:
    seed(factory, planted=True)
    raised = detect_spikes(factory, settings, now=PLANTED + timedelta(hours=1, minutes=1))
    assert len(raised) == 2

    listed = client.get("/signal/spikes").json()
    assert {(s["key"], s["metric"], s["state"]) for s in listed} == {
        ("service", "volume", "open"),
        ("service", "negative_share", "open"),
    }
    volume = next(s for s in listed if s["metric"] == "volume")
    assert volume["value"] == 40
    assert volume["baseline"] == 10
    assert volume["score"] >= settings.spike_threshold

    acked = client.post(f"/signal/spikes/{volume['id']}/acknowledge", json={"by": "ops"})
    assert acked.json()["state"] == "acknowledged"
    assert client.post(f"/signal/spikes/{volume['id']}/acknowledge", json={}).status_code == 409
    closed = client.post(f"/signal/spikes/{volume['id']}/close", json={"cause": "CDN outage"})
    assert (closed.json()["state"], closed.json()["cause"]) == ("closed", "CDN outage")
    assert [s["metric"] for s in client.get("/signal/spikes").json()] == ["negative_share"]
    assert client.post("/signal/spikes/999999/close", json={"cause": "x"}).status_code == 404


class Receiver:
    """A fake webhook receiver: fails ``failures`` times, then verifies and accepts."""

    def __init__(self, secret: bytes, failures: int) -> None:
        self.secret, self.failures, self.bodies = secret, failures, []  # type: ignore[var-annotated]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.failures:
            self.failures -= 1
            return httpx.Response(503)
        timestamp = request.headers["X-Andon-Timestamp"]
        expected = hmac.new(
            self.secret, timestamp.encode() + b"." + request.content, hashlib.sha256
        ).hexdigest()
        if request.headers["X-Andon-Signature"] != f"sha256={expected}":
            return httpx.Response(401)
        self.bodies.append(json.loads(request.content))
        return httpx.Response(204)


def test_a_new_spike_is_posted_signed_and_retried_with_backoff(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    seed(factory, planted=True)
    receiver = Receiver(b"s3cret", failures=2)
    slept: list[float] = []
    settings.spike_webhook_url = "https://hooks.example/andon"

    with httpx.Client(transport=httpx.MockTransport(receiver)) as http:
        raised = detect_spikes(
            factory,
            settings,
            now=PLANTED + timedelta(hours=1, minutes=1),
            client=http,
            sleep=slept.append,
            env={settings.spike_webhook_secret_env: "s3cret"},
        )

    assert len(receiver.bodies) == len(raised) == 2
    assert {body["spike"]["id"] for body in receiver.bodies} == set(raised)
    assert receiver.bodies[0]["event"] == "spike.raised"
    assert slept == [1.0, 2.0]


def test_a_wrong_secret_is_refused_and_not_retried() -> None:
    receiver = Receiver(b"right", failures=0)
    slept: list[float] = []
    with (
        httpx.Client(transport=httpx.MockTransport(receiver)) as http,
        pytest.raises(WebhookFailed, match="401"),
    ):
        deliver("https://hooks.example/x", {"a": 1}, b"wrong", client=http, sleep=slept.append)
    assert slept == []

"""The agents' lane (``app.queues.lane``): claims and closes answered before FastAPI's
routing, with the same answers, headers, metrics and errors as FastAPI's; whatever FastAPI
would refuse is passed on to it untouched. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.routing import APIRouter
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import api_key
from tests.test_queues import PROBLEM, Spec, bearer, claim, make_client, seed

__all__ = ["make_client"]  # the fixture, shared


@pytest.fixture
def routed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the requests that reached FastAPI's routing."""
    paths: list[str] = []
    original = APIRouter.__call__

    async def recording(self: APIRouter, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            paths.append(scope["path"])
        await original(self, scope, receive, send)

    monkeypatch.setattr(APIRouter, "__call__", recording)
    return paths


def duration_count(client: TestClient, route: str, status: int) -> float:
    prefix = "andon_http_request_duration_seconds_count{"
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(prefix) and f'route="{route}"' in line and f'status="{status}"' in line:
            return float(line.split()[-1])
    return 0.0


def test_claim_resolve_and_dismiss_skip_fastapi_routing_with_the_same_headers_and_metrics(
    client: TestClient, factory: sessionmaker[Session], engine: Engine, routed: list[str]
) -> None:
    ann = bearer(api_key(engine, "ann", "agent"))
    first, second = seed(factory, [Spec(), Spec()])
    claims_before = duration_count(client, "/queues/{queue}/claim", 200)
    routed.clear()

    claimed = claim(client, "service", ann)
    resolved = client.post(f"/entries/{first}/resolve", json={"note": "refunded"}, headers=ann)
    other = claim(client, "service", ann)
    dismissed = client.post(f"/entries/{second}/dismiss", json={"reason": "spam"}, headers=ann)
    empty = claim(client, "service", ann)

    assert routed == []  # the lane answered all five
    assert [r.status_code for r in (claimed, resolved, other, dismissed, empty)] == [
        200,
        200,
        200,
        200,
        204,
    ]
    assert claimed.json()["entry"]["id"] == first
    assert claimed.json()["item"]["id"] > 0
    assert (resolved.json()["state"], resolved.json()["note"]) == ("resolved", "refunded")
    assert (dismissed.json()["state"], dismissed.json()["note"]) == ("dismissed", "spam")
    for answer in (claimed, resolved, empty):
        assert answer.headers["X-Request-ID"]
        assert "RateLimit-Remaining" in answer.headers
    assert claimed.headers["content-type"] == "application/json"
    # the metrics label the lane's requests by route template, as every other request
    assert duration_count(client, "/queues/{queue}/claim", 200) == claims_before + 2
    assert duration_count(client, "/entries/{entry_id}/resolve", 200) >= 1
    assert duration_count(client, "/entries/{entry_id}/dismiss", 200) >= 1
    # and the answers are the ones GET /entries/{id} gives
    entry = client.get(f"/entries/{first}").json()["entry"]
    assert entry == resolved.json()


@pytest.mark.parametrize(
    ("path", "body", "headers", "where"),
    [
        ("/entries/{id}/resolve", {}, {}, ["body", "note"]),
        ("/entries/{id}/resolve", {"note": ""}, {}, ["body", "note"]),
        ("/entries/{id}/dismiss", {"note": "wrong field"}, {}, ["body", "reason"]),
        ("/entries/{id}/resolve", "not json", {"content-type": "application/json"}, ["body"]),
        ("/entries/{id}/resolve", "note=x", {"content-type": "text/plain"}, ["body"]),
        ("/entries/0/resolve", {"note": "x"}, {}, ["path", "entry_id"]),
        ("/entries/99999999999/resolve", {"note": "x"}, {}, ["path", "entry_id"]),
    ],
)
def test_what_fastapi_would_refuse_goes_to_fastapi_untouched(
    client: TestClient,
    factory: sessionmaker[Session],
    engine: Engine,
    routed: list[str],
    path: str,
    body: Any,
    headers: dict[str, str],
    where: list[str],
) -> None:
    ann = bearer(api_key(engine, "ann", "agent"))
    (entry_id,) = seed(factory, [Spec()])
    assert claim(client, "service", ann).status_code == 200
    url = path.replace("{id}", str(entry_id))
    routed.clear()

    if isinstance(body, str):
        answer = client.post(url, content=body, headers={**ann, **headers})
    else:
        answer = client.post(url, json=body, headers={**ann, **headers})

    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == PROBLEM
    assert routed == [url]  # FastAPI answered, from the body the lane had read
    locations = [error["loc"] for error in answer.json()["errors"]]
    assert any(location[: len(where)] == where for location in locations), locations
    # the entry is still the agent's: nothing was closed on the way
    assert client.get(f"/entries/{entry_id}").json()["entry"]["state"] == "claimed"


def test_errors_in_the_lane_are_the_apps_problem_answers(
    client: TestClient, factory: sessionmaker[Session], engine: Engine, routed: list[str]
) -> None:
    ann = bearer(api_key(engine, "ann", "agent"))
    bob = bearer(api_key(engine, "bob", "agent"))
    vic = bearer(api_key(engine, "vic", "viewer"))
    sam = bearer(api_key(engine, "sam", "agent", ["sales"]))
    (entry_id,) = seed(factory, [Spec()])
    routed.clear()

    answers = {
        "no key": client.post("/queues/service/claim", headers={"Authorization": ""}),
        "wrong key": claim(client, "service", bearer("andon_not-a-key")),
        "viewer": claim(client, "service", vic),
        "out of scope": claim(client, "service", sam),
        "unknown queue": claim(client, "nowhere", ann),
    }
    held = claim(client, "service", ann)
    answers["not the holder"] = client.post(
        f"/entries/{entry_id}/resolve", json={"note": "mine"}, headers=bob
    )
    answers["no such entry"] = client.post(
        f"/entries/{entry_id + 1000}/resolve", json={"note": "x"}, headers=ann
    )

    assert held.status_code == 200
    assert {name: answer.status_code for name, answer in answers.items()} == {
        "no key": 401,
        "wrong key": 401,
        "viewer": 403,
        "out of scope": 403,
        "unknown queue": 404,
        "not the holder": 409,
        "no such entry": 404,
    }
    for name, answer in answers.items():
        assert answer.headers["content-type"] == PROBLEM, name
        assert answer.json()["status"] == answer.status_code, name
        assert answer.json()["detail"], name
        assert answer.headers["X-Request-ID"], name
    assert answers["not the holder"].json()["held_by"] == "ann"
    assert routed == []  # every one of them answered by the lane, with the app's handlers


def test_the_lane_charges_the_rate_limit_once_and_answers_429_with_retry_after(
    make_client: Any, factory: sessionmaker[Session], engine: Engine, routed: list[str]
) -> None:
    client = make_client(rate_limit_per_minute=60, rate_limit_burst=2)
    ann = bearer(api_key(engine, "ann", "agent"))
    seed(factory, [Spec(), Spec(), Spec()])
    routed.clear()

    answers = [claim(client, "service", ann) for _ in range(3)]

    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert answers[0].headers["RateLimit-Remaining"] == "1"
    assert answers[1].headers["RateLimit-Remaining"] == "0"
    refused = answers[2]
    assert refused.headers["content-type"] == PROBLEM
    assert int(refused.headers["Retry-After"]) >= 1
    assert routed == []

"""Themes fitted on the demo's queues, and ideas ranked by demand."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.signal.jobs import fit_themes
from tests.test_signal import sync_demo

NOW = datetime(2026, 11, 20, tzinfo=UTC)


def test_themes_have_labels_counts_sentiment_and_representatives(
    client: TestClient, factory: sessionmaker[Session]
) -> None:
    sync_demo(client)
    fitted = fit_themes(factory, now=NOW)
    assert all(fitted[queue] >= 2 for queue in ("product", "service"))

    themes = client.get(
        "/signal/themes", params={"queue": "product", "from": "2026-10-01T00:00:00Z"}
    ).json()
    product = client.get("/items", params={"queue": "product", "limit": 500}).json()["items"]
    assert len(themes) == fitted["product"]
    assert sum(theme["size"] for theme in themes) == len(product)
    for theme in themes:
        assert theme["label"]
        assert theme["terms"]
        assert theme["negative"] + theme["neutral"] + theme["positive"] == theme["size"]
        assert sum(point["count"] for point in theme["series"]) == theme["size"]
        assert 1 <= len(theme["representatives"]) <= 3
        assert all(rep["url"] for rep in theme["representatives"])

    # A re-fit replaces the queue's themes rather than adding to them.
    fit_themes(factory, now=NOW)
    assert len(client.get("/signal/themes", params={"queue": "product"}).json()) == len(themes)


def test_ideas_are_ranked_by_votes_plus_mentions(
    client: TestClient, factory: sessionmaker[Session]
) -> None:
    sync_demo(client)
    fit_themes(factory, now=NOW)

    ideas = client.get("/signal/ideas", params={"limit": 500}).json()

    assert ideas
    assert all(idea["channel"] in ("canny", "fider") for idea in ideas)
    assert [idea["score"] for idea in ideas] == sorted(
        (idea["score"] for idea in ideas), reverse=True
    )
    for idea in ideas:
        assert idea["score"] == round(idea["demand"] + idea["mentions"], 4)
        assert idea["demand"] >= 1 + idea["votes"]
    assert any(idea["mentions"] > 0 for idea in ideas), "other channels echo some ideas"

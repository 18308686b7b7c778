"""The web pages as served: shells, security headers, offline assets; the thread filter they use."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

WEB = Path(__file__).resolve().parents[1] / "app" / "web"


@pytest.mark.parametrize(
    ("path", "script"), [("/console", "console.js"), ("/dashboard", "dashboard.js")]
)
def test_pages_are_served_with_a_strict_content_security_policy(
    client: TestClient, path: str, script: str
) -> None:
    response = client.get(path)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert f'src="/static/{script}?v=' in response.text
    assert '<label for="api-key">API key</label>' in response.text
    assert "<script>" not in response.text, "no inline script: the policy would block it"


def test_root_leads_to_the_dashboard(client: TestClient) -> None:
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == "/dashboard"


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("common.js", "javascript"),
        ("console.js", "javascript"),
        ("dashboard.js", "javascript"),
        ("charts.js", "javascript"),
        ("andon.css", "text/css"),
        ("favicon.svg", "image/svg+xml"),
    ],
)
def test_static_assets_are_served(client: TestClient, name: str, kind: str) -> None:
    response = client.get(f"/static/{name}")
    assert response.status_code == 200
    assert kind in response.headers["content-type"]


def test_web_assets_load_nothing_from_other_origins() -> None:
    """Works offline: no CDN, no web font, no remote script anywhere in the pages or assets."""
    files = [*WEB.glob("templates/*.html"), *WEB.glob("static/*")]
    assert len(files) >= 7
    remote = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//|@import|url\(\s*["']?https?:""")
    for path in files:
        text = path.read_text()
        assert not remote.search(text), f"{path.name} loads something from another origin"
        assert "innerHTML" not in text, f"{path.name}: render data with textContent"
        assert "localStorage" not in text, f"{path.name}: the API key belongs in sessionStorage"


def test_items_filter_by_thread(client: TestClient, tmp_path: Path) -> None:
    export = tmp_path / "mail.jsonl"
    export.write_text(
        '{"id": "1", "text": "My order is late", "thread_id": "t-1"}\n'
        '{"id": "2", "text": "Still late, any news?", "thread_id": "t-1"}\n'
        '{"id": "3", "text": "Love the new app", "thread_id": "t-2"}\n'
        '{"id": "4", "text": "No thread here"}\n'
    )
    assert (
        client.post(
            "/sources", json={"name": "mail", "kind": "jsonl", "config": {"path": str(export)}}
        ).status_code
        == 201
    )
    assert client.post("/sources/mail/sync").json()["new"] == 4

    thread = client.get("/items", params={"thread_id": "t-1"}).json()["items"]
    assert sorted(item["external_id"] for item in thread) == ["1", "2"]
    assert all(item["thread_id"] == "t-1" for item in thread)
    assert client.get("/items", params={"thread_id": "nope"}).json()["items"] == []
    first = thread[-1]["id"]
    group = client.get("/items", params={"dedupe_group_id": first}).json()["items"]
    assert first in [item["id"] for item in group], "a group is named after its first item"
    assert all(item["id"] == first or item["dedupe_group_id"] == first for item in group)
    assert len(client.get("/items").json()["items"]) == 4

"""Hostile and unusual input: it round-trips, stays inert, and oversized bodies are refused."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine, inspect

PROBLEM = "application/problem+json"

TEXTS = {
    "rtl": "השירות שלכם נפל שוב 😡 — الخدمة متوقفة منذ الصباح",
    "emoji": "📦❌ parcel never arrived 🙄🙄 #fail 👎🏽",
    "zero-width": "re\u200bfund still\u200d missing\ufeff",
    "combining": "Cafe\u0301 app crashes when I type e\u0301",
    "control": "line one\tcolumn\x07bell\x1b[31mred\x1b[0m\r\nline two",
    "sql": "Robert'); DROP TABLE item;-- my order is late",
    "html": '<img src=x onerror="alert(1)"><script>alert(2)</script> refund please',
    "nul": "nul\x00byte in the middle",
    "cut-emoji": "thanks for nothing \ud83d",
}


def test_unusual_text_round_trips_and_sql_stays_inert(
    client: TestClient, engine: Engine, tmp_path: Path
) -> None:
    export = tmp_path / "hostile.jsonl"
    export.write_text(
        "".join(
            json.dumps({"id": key, "text": text, "author": {"handle": f"@{key}\x00"}}) + "\n"
            for key, text in TEXTS.items()
        ),
        encoding="utf-8",
    )
    assert (
        client.post(
            "/sources", json={"name": "hostile", "kind": "jsonl", "config": {"path": str(export)}}
        ).status_code
        == 201
    )

    run = client.post("/sources/hostile/sync").json()

    assert (run["status"], run["new"], run["quarantined"]) == ("ok", len(TEXTS), 0), run
    stored = {
        item["external_id"]: item
        for item in client.get("/items", params={"limit": 100}).json()["items"]
    }
    for key, text in TEXTS.items():
        # PostgreSQL cannot store NUL: it is dropped; a lone surrogate becomes U+FFFD.
        expected = text.replace("\x00", "").replace("\ud83d", "\ufffd")
        assert stored[key]["text"] == expected, key
    assert stored["nul"]["author"]["handle"] == "@nul"
    detail = client.get(f"/items/{stored['nul']['id']}").json()
    assert detail["raw"]["text"] == "nulbyte in the middle"
    assert "item" in inspect(engine).get_table_names()

    injected = client.get("/items", params={"channel": "' OR 1=1 --"})
    assert injected.status_code == 200
    assert injected.json()["items"] == []


def test_oversized_bodies_are_refused_with_413(client: TestClient) -> None:
    huge = {"name": "big", "kind": "jsonl", "config": {"path": "x" * (2 * 1024 * 1024)}}
    response = client.post("/sources", json=huge)
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM
    assert "too large" in response.json()["detail"]
    assert client.get("/sources/big").status_code == 404


def test_lone_surrogates_in_request_bodies_are_refused_not_a_server_error(
    client: TestClient,
) -> None:
    # Valid JSON (a \\uD83D escape) that no database can store as UTF-8 text.
    body = (
        b'{"pattern_type": "keyword", "pattern": "refund", "queue": "service", "note": "x\\ud83d"}'
    )
    response = client.post("/rules", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert client.get("/rules").json()["rules"] == []

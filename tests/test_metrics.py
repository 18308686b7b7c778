"""GET /metrics: Prometheus text with sync, classification, queue and HTTP metrics."""

from __future__ import annotations

import uuid
from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def test_metrics_count_syncs_items_classification_queues_and_http(
    client: TestClient, tmp_path: Path
) -> None:
    export = tmp_path / "export.jsonl"
    export.write_text(
        '{"id": "1", "text": "the app crashes every time I log in"}\n'
        '{"id": "2", "text": "please add an export to excel"}\n'
        "not json\n"
    )
    name = f"m-{uuid.uuid4().hex[:8]}"  # counters live for the whole test process
    created = client.post(
        "/sources", json={"name": name, "kind": "jsonl", "config": {"path": str(export)}}
    )
    assert created.status_code == 201, created.text
    classified = sample("andon_classified_items_total")
    batches = sample("andon_classification_batch_seconds_count")
    http_before = sample(
        "andon_http_request_duration_seconds_count",
        {"method": "POST", "route": "/sources/{name}/sync", "status": "200"},
    )

    run = client.post(f"/sources/{name}/sync")
    assert run.status_code == 200, run.text

    metrics = scrape(client)
    source = (("source", name),)
    assert metrics[("andon_items_pulled_total", source)] == 3
    assert metrics[("andon_items_stored_total", (("outcome", "new"), *source))] == 2
    assert metrics[("andon_items_quarantined_total", source)] == 1
    assert metrics[("andon_sync_runs_total", (*source, ("status", "ok")))] == 1
    assert metrics[("andon_sync_duration_seconds_count", source)] == 1
    assert sample("andon_classified_items_total") - classified == 2
    assert sample("andon_classification_batch_seconds_count") - batches >= 1
    http = (
        ("method", "POST"),
        ("route", "/sources/{name}/sync"),
        ("status", "200"),
    )
    assert metrics[("andon_http_request_duration_seconds_count", http)] - http_before == 1
    # Database gauges: every stored item waits in some queue, the oldest has an age.
    open_entries = sum(
        value
        for (name, labels), value in metrics.items()
        if name == "andon_queue_entries" and ("state", "open") in labels
    )
    assert open_entries == 2
    assert any(name == "andon_queue_oldest_open_age_seconds" for name, _ in metrics)
    status = (("source", name), ("status", "ok"))
    assert metrics[("andon_source_status", status)] == 1
    assert metrics[("andon_source_consecutive_failures", source)] == 0


def test_unmatched_paths_share_one_label(client: TestClient) -> None:
    before = sample(
        "andon_http_request_duration_seconds_count",
        {"method": "GET", "route": "unmatched", "status": "404"},
    )
    for n in range(3):
        assert client.get(f"/no/such/path/{n}").status_code == 404
    after = sample(
        "andon_http_request_duration_seconds_count",
        {"method": "GET", "route": "unmatched", "status": "404"},
    )
    assert after - before == 3

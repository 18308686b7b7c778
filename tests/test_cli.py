"""The `andon` command as an operator uses it: real subprocesses, real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.learning.service import Classifier

ANDON = [sys.executable, "-m", "app"]


def andon(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ANDON_")}
    environment.update(env or {})
    return subprocess.run(
        [*ANDON, *args], capture_output=True, text=True, env=environment, cwd=cwd, timeout=300
    )


@pytest.fixture
def andon_env(tmp_path: Path, model_dir: Path, classifier: object) -> dict[str, str]:
    # `classifier` trains the shared model once, so the CLI loads instead of training.
    return {
        "ANDON_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "ANDON_MODEL_DIR": str(model_dir),
    }


def test_classify_adds_the_andon_key(tmp_path: Path, andon_env: dict[str, str]) -> None:
    source = tmp_path / "in.jsonl"
    rows = [
        {"id": 1, "text": "I was charged twice and nobody answers my emails", "extra": "kept"},
        {"id": 2, "text": "Please add a dark mode to the mobile app"},
        {
            "id": 3,
            "title": "Quote for 200 seats",
            "text": "What would the enterprise plan cost us?",
        },
    ]
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    target = tmp_path / "out.jsonl"

    result = andon("classify", "--input", str(source), "--output", str(target), env=andon_env)

    assert result.returncode == 0, result.stderr
    out = [json.loads(line) for line in target.read_text().splitlines()]
    assert [row["id"] for row in out] == [1, 2, 3]
    assert out[0]["extra"] == "kept"
    for row in out:
        verdict = row["andon"]
        assert set(verdict) == {"sentiment", "route", "model_version"}
        assert verdict["sentiment"]["label"] in {"negative", "neutral", "positive"}
        assert -1 <= verdict["sentiment"]["compound"] <= 1
        assert verdict["route"]["queue"] in {"product", "marketing", "sales", "service"}
        assert 0 <= verdict["route"]["confidence"] <= 1
        assert isinstance(verdict["route"]["triage"], bool)
        assert verdict["route"]["reason"]
    assert out[0]["andon"]["sentiment"]["label"] == "negative"


def test_classify_a_large_file_in_order_across_worker_processes(
    tmp_path: Path, andon_env: dict[str, str], classifier: Classifier
) -> None:
    texts = [
        "On hold for 2 hours and still no refund",
        "Please add a dark mode to the dashboard",
        "How much is the team plan for 40 seats?",
        "Loved your webinar yesterday, great campaign!",
    ]
    rows = [{"id": n, "text": f"{texts[n % 4]} #{n}"} for n in range(1300)]  # three batches
    source = tmp_path / "many.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    target = tmp_path / "many.out.jsonl"

    result = andon("classify", "-i", str(source), "-o", str(target), env=andon_env)

    assert result.returncode == 0, result.stderr
    out = [json.loads(line) for line in target.read_text().splitlines()]
    assert [row["id"] for row in out] == list(range(1300))
    expected = Classifier(classifier.router, classifier.sentiment, workers=1).classify(
        [row["text"] for row in rows]
    )
    assert [(r["andon"]["route"]["queue"], r["andon"]["sentiment"]["label"]) for r in out] == [
        (v.route.queue, v.sentiment.label) for v in expected
    ]


def test_classify_input_errors_are_one_line_and_nonzero(
    tmp_path: Path, andon_env: dict[str, str]
) -> None:
    missing = andon(
        "classify", "-i", str(tmp_path / "nope.jsonl"), "-o", str(tmp_path / "o"), env=andon_env
    )
    assert missing.returncode != 0
    assert missing.stderr.strip() == f"andon: {tmp_path / 'nope.jsonl'}: no such file"

    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "fine"}\n{"text": \n')
    result = andon("classify", "-i", str(broken), "-o", str(tmp_path / "o.jsonl"), env=andon_env)
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1
    assert f"{broken}:2: invalid JSON" in result.stderr
    assert not (tmp_path / "o.jsonl").exists(), "no partial output is left behind"

    no_text = tmp_path / "notext.jsonl"
    no_text.write_text('{"body": "x"}\n')
    result = andon("classify", "-i", str(no_text), "-o", str(tmp_path / "o.jsonl"), env=andon_env)
    assert result.returncode != 0
    assert "notext.jsonl:1: missing 'text'" in result.stderr


def test_evaluate_reports_routing_and_sentiment(tmp_path: Path, andon_env: dict[str, str]) -> None:
    labels = tmp_path / "labels.jsonl"
    rows = [
        {
            "text": "my package never arrived and I want a refund",
            "queue": "service",
            "sentiment": "negative",
        },
        {
            "text": "would love an API endpoint for bulk exports",
            "queue": "product",
            "sentiment": "neutral",
        },
        {"text": "how much for the business plan for 40 users?", "queue": "sales"},
        {
            "text": "your new TV ad is hilarious, well done",
            "queue": "marketing",
            "sentiment": "positive",
        },
        {"text": "unlabelled lines are ignored"},
    ]
    labels.write_text("".join(json.dumps(row) + "\n" for row in rows))

    result = andon("evaluate", "--labels", str(labels), "--json", env=andon_env)

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)["files"][str(labels)]
    assert report["lines"] == 4
    routing = report["routing"]
    assert routing["n"] == 4
    assert set(routing["per_queue"]) == {"product", "marketing", "sales", "service"}
    assert 0 <= routing["macro_f1"] <= 1
    assert sum(sum(row.values()) for row in routing["confusion"].values()) == 4
    assert 0 <= routing["triage_rate"] <= 1
    assert report["sentiment"]["n"] == 3
    assert 0 <= report["sentiment"]["macro_recall"] <= 1

    text = andon("evaluate", "--labels", str(labels), env=andon_env)
    assert text.returncode == 0
    assert "macro-F1" in text.stdout
    assert "macro-recall" in text.stdout


def test_evaluate_scores_every_file_a_glob_names(tmp_path: Path, andon_env: dict[str, str]) -> None:
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_text('{"text": "my refund never arrived", "queue": "service"}\n')
    second.write_text(
        '{"text": "please add a dark mode", "queue": "product"}\n'
        '{"text": "how much is the team plan?", "queue": "sales"}\n'
    )
    # `--labels ../shared/data/routing_*.jsonl`: the shell passes one flag, then the files
    for args in (
        ["--labels", str(first), str(second)],
        [str(first), str(second)],
        ["-l", str(first), "-l", str(second)],
    ):
        result = andon("evaluate", *args, "--json", env=andon_env)
        assert result.returncode == 0, (args, result.stderr)
        files = json.loads(result.stdout)["files"]
        assert {name: report["lines"] for name, report in files.items()} == {
            str(first): 1,
            str(second): 2,
        }

    text = andon("evaluate", str(first), str(second), env=andon_env)
    assert text.returncode == 0, text.stderr
    summary = text.stdout[text.stdout.rindex("routing macro-F1") :]
    assert "a.jsonl" in summary
    assert "b.jsonl" in summary  # one line per file after the full reports

    none = andon("evaluate", env=andon_env)
    assert none.returncode != 0
    assert none.stderr.strip() == (
        "andon: name at least one labelled file (andon evaluate FILE.jsonl ...)"
    )


def test_evaluate_refuses_unknown_labels(tmp_path: Path, andon_env: dict[str, str]) -> None:
    labels = tmp_path / "labels.jsonl"
    labels.write_text('{"text": "hello", "queue": "legal"}\n')
    result = andon("evaluate", "--labels", str(labels), env=andon_env)
    assert result.returncode != 0
    assert "labels.jsonl:1: queue 'legal' is not one of" in result.stderr


def test_migrate_sources_and_sync(tmp_path: Path, andon_env: dict[str, str]) -> None:
    assert andon("migrate", env=andon_env).returncode == 0
    added = andon("sources", "add", "demo", "--kind", "demo", env=andon_env)
    assert added.returncode == 0, added.stderr
    again = andon("sources", "add", "demo", "--kind", "demo", env=andon_env)
    assert again.returncode != 0
    assert "already exists" in again.stderr

    synced = andon("sync", "demo", env=andon_env)
    assert synced.returncode == 0, synced.stderr
    assert "demo: ok" in synced.stdout
    assert andon("sync", "demo", env=andon_env).stdout.count(" 0 new") == 1

    listed = andon("sources", "list", env=andon_env)
    assert "demo" in listed.stdout
    missing = andon("sync", "nowhere", env=andon_env)
    assert missing.returncode != 0
    assert missing.stderr.strip() == "andon: no source named 'nowhere'"


def test_a_bad_setting_fails_with_one_line_naming_the_variable(tmp_path: Path) -> None:
    result = andon("migrate", env={"ANDON_TRIAGE_THRESHOLD": "lots"}, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("andon: invalid setting ANDON_TRIAGE_THRESHOLD:")

    result = andon("migrate", env={"ANDON_DATABASE_URL": "mysql://x"}, cwd=tmp_path)
    assert result.returncode == 2
    assert "ANDON_DATABASE_URL" in result.stderr


def test_train_makes_a_new_active_version(tmp_path: Path) -> None:
    env = {"ANDON_MODEL_DIR": str(tmp_path / "models")}
    extra = tmp_path / "extra.jsonl"
    extra.write_text('{"text": "the loyalty points page is a mess", "queue": "product"}\n')
    result = andon("train", "--labels", str(extra), env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    active = (tmp_path / "models" / "ACTIVE").read_text().strip()
    assert active in result.stdout
    meta = json.loads((tmp_path / "models" / active / "meta.json").read_text())
    assert meta["training"]["examples"] > 600
    assert 0 < meta["metrics"]["holdout"]["macro_f1"] <= 1

    more = tmp_path / "more.jsonl"
    more.write_text(
        '{"text": "the export button does nothing on Safari", "queue": "product"}\n'
        '{"text": "any discount for 50 seats?", "queue": "sales"}\n'
    )
    # both files after one flag, as a shell glob gives them
    again = andon("train", "--labels", str(extra), str(more), "--force", env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "(3 labels beyond the seed, 0 from corrections)" in again.stdout
    missing = andon("train", str(tmp_path / "nope.jsonl"), env=env, cwd=tmp_path)
    assert missing.returncode != 0
    assert missing.stderr.strip() == f"andon: {tmp_path / 'nope.jsonl'}: no such file"

"""`andon models` and `andon reclassify` as an operator runs them (real subprocesses)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_cli import andon


def test_models_list_diff_activate_and_reclassify(
    tmp_path: Path, model_dir: Path, classifier: object
) -> None:
    env = {"ANDON_MODEL_DIR": str(model_dir), "ANDON_DATABASE_URL": f"sqlite:///{tmp_path}/a.db"}
    active = (model_dir / "ACTIVE").read_text().strip()

    listed = andon("models", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert active in listed.stdout
    assert "*" in listed.stdout

    diff = andon("models", "diff", active, active, env=env)
    assert diff.returncode == 0, diff.stderr
    assert json.loads(diff.stdout)["macro_f1"]["change"] == 0

    missing = andon("models", "activate", "no-such-version", env=env)
    assert missing.returncode == 1
    assert missing.stderr.strip() == f"andon: no model version 'no-such-version' in {model_dir}"
    assert (model_dir / "ACTIVE").read_text().strip() == active

    again = andon("models", "activate", active, env=env)
    assert again.returncode == 0, again.stderr

    assert andon("migrate", env=env).returncode == 0
    result = andon("reclassify", "--since", "2026-01-01T00:00:00", env=env)
    assert result.returncode == 0, result.stderr
    assert f"reclassified 0 items in 0 batches with model {active}" in result.stdout

"""Model artifacts: a trained router saved with its metadata, and the store of versions.

Layout of a model directory::

    <dir>/<version>/model.joblib   the fitted scikit-learn pipeline
    <dir>/<version>/meta.json      version, library versions, metrics, training summary
    <dir>/ACTIVE                   the version in use (a text file)

Loading refuses an artifact written by another scikit-learn version (pickles are not
portable across versions), and a router artifact of another ``ROUTER_FORMAT`` (the layout
of the pipeline ``classifiers.routing.Router`` reads): the caller retrains from the corpus
instead of running a model whose behaviour may have silently changed.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import sklearn
from sklearn.pipeline import Pipeline

MODEL_FILE = "model.joblib"
META_FILE = "meta.json"
ACTIVE_FILE = "ACTIVE"

ROUTER_FORMAT = 2
"""The router pipeline's layout. 1 (unrecorded): a FeatureUnion of two TfidfVectorizers.
2: ``classifiers.features.RouterFeatures`` (one normalisation per text, vectorised
transform). Bump it whenever the router's pipeline changes shape."""


class ArtifactError(Exception):
    """A model artifact is missing, unreadable or incompatible."""


@dataclass(slots=True)
class ModelMeta:
    version: str
    created_at: str
    kind: str = "router"
    sklearn_version: str = sklearn.__version__
    python_version: str = platform.python_version()
    labels: list[str] = field(default_factory=list)
    threshold: float = 0.45
    thresholds: dict[str, float] = field(default_factory=dict)
    languages: list[str] | None = None
    """Languages the router supports (None: not recorded, any language is routed)."""
    router_format: int | None = None
    """``ROUTER_FORMAT`` of a router artifact (None: written before formats were recorded)."""
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    parent: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelMeta:
        known = set(cls.__dataclass_fields__)
        return cls(**{key: value for key, value in data.items() if key in known})


def new_version(digest: str, now: datetime | None = None) -> str:
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y%m%d-%H%M%S}-{digest[:8]}"


class ModelStore:
    """The versions of the router kept in one directory, and which one is active."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def save(self, pipeline: Pipeline, meta: ModelMeta, *, activate: bool = False) -> Path:
        """Write a version atomically (temp dir, then rename)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / meta.version
        if target.exists():
            raise ArtifactError(f"model version {meta.version} already exists")
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.directory))
        try:
            joblib.dump(pipeline, staging / MODEL_FILE)
            (staging / META_FILE).write_text(json.dumps(asdict(meta), indent=2, sort_keys=True))
            staging.rename(target)
        finally:
            if staging.exists():
                shutil.rmtree(staging)
        if activate:
            self.activate(meta.version)
        return target

    def versions(self) -> list[ModelMeta]:
        """Every stored version's metadata, oldest first."""
        if not self.directory.is_dir():
            return []
        metas = []
        for path in sorted(self.directory.iterdir()):
            meta_path = path / META_FILE
            if path.is_dir() and not path.name.startswith(".") and meta_path.is_file():
                metas.append(self._read_meta(meta_path))
        return sorted(metas, key=lambda meta: meta.created_at)

    def active_version(self) -> str | None:
        path = self.directory / ACTIVE_FILE
        if not path.is_file():
            return None
        return path.read_text().strip() or None

    def activate(self, version: str) -> None:
        if not (self.directory / version / META_FILE).is_file():
            raise ArtifactError(f"no model version {version!r} in {self.directory}")
        fd, tmp = tempfile.mkstemp(prefix=".active-", dir=self.directory)
        with os.fdopen(fd, "w") as handle:
            handle.write(version + "\n")
        os.replace(tmp, self.directory / ACTIVE_FILE)

    def meta(self, version: str) -> ModelMeta:
        path = self.directory / version / META_FILE
        if not path.is_file():
            raise ArtifactError(f"no model version {version!r} in {self.directory}")
        return self._read_meta(path)

    def load(self, version: str) -> tuple[Pipeline, ModelMeta]:
        meta = self.meta(version)
        if meta.sklearn_version != sklearn.__version__:
            raise ArtifactError(
                f"model {version} was trained with scikit-learn {meta.sklearn_version}, "
                f"this is {sklearn.__version__}; retrain it (andon train)"
            )
        if meta.kind == "router" and meta.router_format != ROUTER_FORMAT:
            raise ArtifactError(
                f"model {version} is router format {meta.router_format or 1}, this is "
                f"{ROUTER_FORMAT}; retrain it (andon train)"
            )
        try:
            pipeline = joblib.load(self.directory / version / MODEL_FILE)
        except Exception as exc:  # any unpickling failure means the artifact is unusable
            raise ArtifactError(f"model {version} cannot be loaded: {exc}") from exc
        if not isinstance(pipeline, Pipeline):
            raise ArtifactError(f"model {version} is not a scikit-learn Pipeline")
        return pipeline, meta

    @staticmethod
    def _read_meta(path: Path) -> ModelMeta:
        try:
            return ModelMeta.from_json(json.loads(path.read_text()))
        except (ValueError, TypeError) as exc:
            raise ArtifactError(f"unreadable model metadata {path}: {exc}") from exc


def _pair(a: Any, b: Any) -> dict[str, Any]:
    change = round(b - a, 4) if isinstance(a, int | float) and isinstance(b, int | float) else None
    return {"from": a, "to": b, "change": change}


def diff_metrics(old: ModelMeta, new: ModelMeta) -> dict[str, Any]:
    """What changed from ``old`` to ``new``: held-out scores, thresholds, training size."""
    if old.kind == "sentiment" or new.kind == "sentiment":
        return diff_sentiment_metrics(old, new)
    old_holdout = old.metrics.get("holdout", {})
    new_holdout = new.metrics.get("holdout", {})
    pair = _pair

    per_queue = {}
    for queue in sorted(
        set(old_holdout.get("per_queue", {})) | set(new_holdout.get("per_queue", {}))
    ):
        a = old_holdout.get("per_queue", {}).get(queue, {}).get("f1")
        b = new_holdout.get("per_queue", {}).get(queue, {}).get("f1")
        per_queue[queue] = pair(a, b)
    return {
        "from": old.version,
        "to": new.version,
        "macro_f1": pair(old_holdout.get("macro_f1"), new_holdout.get("macro_f1")),
        "accuracy": pair(old_holdout.get("accuracy"), new_holdout.get("accuracy")),
        "triage_rate": pair(old_holdout.get("triage_rate"), new_holdout.get("triage_rate")),
        "holdout_examples": pair(old_holdout.get("n"), new_holdout.get("n")),
        "training_examples": pair(old.training.get("examples"), new.training.get("examples")),
        "f1_per_queue": per_queue,
        "thresholds": {"from": old.thresholds, "to": new.thresholds},
        "note": (
            "each version's metrics come from the held-out split of its own training data; "
            "`andon train` scores champion and challenger on the same split"
        ),
    }


def diff_sentiment_metrics(old: ModelMeta, new: ModelMeta) -> dict[str, Any]:
    """``diff_metrics`` for two sentiment versions: held-out macro-F1, macro-recall, per label.

    The seed-trained default has no held-out scores (it is fitted on the whole seed corpus);
    its side reads None. The champion/challenger figures of a version trained by the learning
    loop are in its ``metrics["challenge"]``."""
    if old.kind != new.kind:
        raise ArtifactError(f"cannot diff a {old.kind} model against a {new.kind} model")
    old_holdout = old.metrics.get("holdout", {})
    new_holdout = new.metrics.get("holdout", {})
    labels = sorted(set(old_holdout.get("f1", {})) | set(new_holdout.get("f1", {})))
    # When ``new`` was challenged against ``old``, both were scored on the same labels.
    challenge = new.metrics.get("challenge", {})
    same = challenge if challenge.get("champion") == old.version else {}
    return {
        "from": old.version,
        "to": new.version,
        "kind": "sentiment",
        "macro_f1": _pair(old_holdout.get("macro_f1"), new_holdout.get("macro_f1")),
        "macro_recall": _pair(old_holdout.get("macro_recall"), new_holdout.get("macro_recall")),
        "accuracy": _pair(old_holdout.get("accuracy"), new_holdout.get("accuracy")),
        "holdout_examples": _pair(old_holdout.get("n"), new_holdout.get("n")),
        "training_examples": _pair(old.training.get("examples"), new.training.get("examples")),
        "labels": _pair(old.training.get("labels", 0), new.training.get("labels", 0)),
        "f1_per_label": {
            label: _pair(old_holdout.get("f1", {}).get(label), new_holdout.get("f1", {}).get(label))
            for label in labels
        },
        "challenge": {
            "macro_f1": _pair(same.get("champion_f1"), same.get("challenger_f1")),
            "macro_recall": _pair(same.get("champion_recall"), same.get("challenger_recall")),
            "holdout_examples": same.get("holdout_examples"),
        }
        if same
        else None,
        "note": (
            "each version's metrics come from the held-out labels of its own training run; "
            "`andon train` scores champion and challenger on the same held-out labels"
        ),
    }

"""Settings, read from the environment (prefix ``ANDON_``) and an optional ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ANDON_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = Field(
        default="sqlite:///andon.db",
        description="SQLAlchemy URL. Default: a SQLite file in the working directory (WAL).",
    )
    model_dir: Path = Field(
        default=Path("models"),
        description="Where router versions (sentiment ones in sentiment/) are stored.",
    )
    log_level: LogLevel = "INFO"
    demo: bool = Field(default=False, description="Create and schedule the bundled demo source.")
    scheduler: bool = Field(default=True, description="Run the embedded scheduler in serve.")
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="HTTP processes of `andon serve`; above 1 the parent runs the scheduler.",
    )
    demo_interval_seconds: int = Field(default=30, ge=5)
    triage_threshold: float = Field(
        default=0.45, ge=0.0, le=1.0, description="Below this routing confidence: triage."
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    page_size_max: int = Field(default=500, ge=1)
    max_body_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="Larger request bodies are refused (413)."
    )
    # Operations (issue 9): logs, privacy, backoff, scheduler.
    log_format: Literal["json", "text"] = Field(
        default="text", description="json: one object per line (the Docker image sets it)."
    )
    redact: bool = Field(
        default=True,
        description="Redact e-mail addresses, phone and card numbers in item text and logs.",
    )
    raw_payload: Literal["keep", "redact", "drop"] = Field(
        default="redact", description="What is stored of a record's original payload."
    )
    backoff_base_seconds: float = Field(default=60.0, gt=0)
    backoff_max_seconds: float = Field(default=3600.0, gt=0)
    scheduler_refresh_seconds: float = Field(
        default=15.0, gt=0, description="How often the scheduler re-reads source schedules."
    )
    retention_interval_seconds: float = Field(default=3600.0, gt=0)
    lease_expiry_interval_seconds: float = Field(default=30.0, gt=0)
    retrain_interval_seconds: float = Field(
        default=86_400.0,
        ge=0,
        description="Scheduled champion/challenger retrain (corrections + seed); 0 turns it off.",
    )
    classify_workers: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="Classification worker processes (default: one per core; 1 = in-process).",
    )
    worker_metrics_port: int | None = Field(
        default=None, ge=1, le=65535, description="`andon worker` serves /metrics here."
    )
    # Queues and keys (issue 7), see app/queues/service.py and app/auth/service.py.
    public_read: bool = Field(
        default=False, description="Let callers without a key use the read endpoints."
    )
    lease_seconds: int = Field(
        default=900, ge=10, description="How long a claim (or a heartbeat) holds an entry."
    )
    wip_per_agent: int = Field(default=5, ge=1, description="Entries one agent may hold.")
    key_cache_seconds: float = Field(
        default=5.0,
        ge=0.0,
        description="How long a process reuses an authenticated key (0: look it up every time); "
        "a revocation reaches other processes within this time.",
    )
    wip_per_queue: dict[str, int] = Field(
        default_factory=dict,
        description='Entries a queue may have claimed at once, e.g. {"service": 20}.',
    )
    # Demand signal (issue 8): weights of one item's demand, see app/signal/service.py.
    demand_vote_weight: float = Field(default=1.0, ge=0.0, description="Demand per vote.")
    demand_like_weight: float = Field(default=0.2, ge=0.0, description="Demand per like.")
    demand_repost_weight: float = Field(default=0.2, ge=0.0, description="Demand per repost.")
    demand_reach_weight: float = Field(
        default=1.0, ge=0.0, description="Demand per tenfold of followers above the floor."
    )
    demand_reach_floor: int = Field(
        default=1000, ge=1, description="Followers below this add no reach."
    )
    signal_cache: bool = Field(
        default=True,
        description="Serve repeated GET /signal queries from a cache until the rollups change.",
    )
    dedupe_window_hours: int = Field(
        default=48, ge=1, description="Near-duplicates are looked for this far apart."
    )
    spike_threshold: float = Field(
        default=4.0, gt=0.0, description="Robust z-score above which an hour is a spike."
    )
    spike_min_count: int = Field(default=5, ge=1, description="Hours with fewer items never spike.")
    spike_baseline_days: int = Field(default=14, ge=2, description="Baseline length.")
    spike_webhook_url: str | None = Field(
        default=None, description="POSTed a signed JSON body when a new spike is raised."
    )
    spike_webhook_secret_env: str = Field(
        default="ANDON_SPIKE_WEBHOOK_SECRET",
        description="Name of the environment variable holding the webhook's HMAC secret.",
    )
    feed_settle_seconds: float = Field(
        default=5.0, ge=0.0, description="The feed holds back events younger than this."
    )
    # Rate limits (issue 12), see app/ops/ratelimit.py: token buckets, 0 turns one off.
    rate_limit_per_minute: int = Field(
        default=6000, ge=0, description="Requests a minute per API key (refill rate)."
    )
    rate_limit_burst: int = Field(
        default=600, ge=1, description="Requests a key may send at once (bucket size)."
    )
    rate_limit_anonymous_per_minute: int = Field(
        default=12000, ge=0, description="Requests a minute per client address without a key."
    )
    rate_limit_anonymous_burst: int = Field(
        default=1200, ge=1, description="Requests an address without a key may send at once."
    )
    auth_failures_per_minute: int = Field(
        default=60, ge=0, description="Unknown or revoked keys a minute per client address."
    )
    auth_failures_burst: int = Field(
        default=120, ge=1, description="Unknown or revoked keys an address may send at once."
    )

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("must be a sqlite:/// or postgresql+psycopg:// URL")
        if value.startswith("postgresql://") or value.startswith("postgres://"):
            # psycopg 3 is the driver we ship; say so rather than fail on a missing psycopg2.
            value = "postgresql+psycopg://" + value.split("://", 1)[1]
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


class SettingsError(Exception):
    """A setting is invalid; the message names the environment variable."""


def describe(error: ValidationError) -> str:
    """One line naming each bad variable, e.g. ``ANDON_PORT: Input should be ...``."""
    parts = []
    for item in error.errors():
        name = "ANDON_" + "_".join(str(part) for part in item["loc"]).upper()
        parts.append(f"{name}: {item['msg']}")
    return "; ".join(parts)


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError(f"invalid setting {describe(exc)}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()

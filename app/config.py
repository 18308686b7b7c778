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
    model_dir: Path = Field(default=Path("models"), description="Where router versions are stored.")
    log_level: LogLevel = "INFO"
    demo: bool = Field(default=False, description="Create and schedule the bundled demo source.")
    scheduler: bool = Field(default=True, description="Run the embedded scheduler in serve.")
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

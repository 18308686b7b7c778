"""Managing sources. Configuration never holds a secret: it names environment variables."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session

from app.errors import Conflict, InvalidInput, NotFound
from app.sources import repository
from app.sources.models import Source
from connectors import registry
from connectors.errors import ConfigError, ConnectorError

NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
SECRET_WORDS = ("token", "password", "secret", "api_key", "apikey", "bearer")


def secret_keys(config: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Keys that look like they hold a secret value instead of naming an env variable."""
    found = []
    for key, value in config.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            found.extend(secret_keys(value, prefix=f"{path}."))
            continue
        lowered = key.lower()
        if lowered.endswith("_env"):
            continue
        if any(lowered == word or lowered.endswith(f"_{word}") for word in SECRET_WORDS):
            found.append(path)
    return found


def validate(kind: str, config: Mapping[str, Any]) -> None:
    if kind not in registry.kinds():
        raise InvalidInput(
            f"unknown source kind {kind!r}; known kinds: {', '.join(registry.kinds())}"
        )
    leaked = secret_keys(config)
    if leaked:
        raise InvalidInput(
            f"config key(s) {', '.join(leaked)} look like secrets: store the secret in an "
            "environment variable and reference it with a '<name>_env' key"
        )
    try:
        registry.create(kind, config, env={})
    except ConfigError as exc:
        raise InvalidInput(f"invalid {kind} config: {exc}") from None
    except ConnectorError:
        # Credentials are checked by `check`, not at configuration time.
        return


def validate_cron(expression: str | None) -> None:
    """A schedule must be a 5-field crontab expression (evaluated in UTC)."""
    if expression is None:
        return
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(expression, timezone="UTC")
    except ValueError as exc:
        raise InvalidInput(
            f"cron {expression!r} is not a crontab expression "
            f"(minute hour day month weekday, e.g. '*/15 * * * *'): {exc}"
        ) from None


def get(session: Session, name: str) -> Source:
    source = repository.by_name(session, name)
    if source is None:
        raise NotFound(f"no source named {name!r}")
    return source


def create(
    session: Session,
    *,
    name: str,
    kind: str,
    config: Mapping[str, Any],
    enabled: bool = True,
    interval_seconds: int | None = None,
    cron: str | None = None,
    retention_days: int | None = None,
) -> Source:
    if not NAME.match(name):
        raise InvalidInput(
            f"source name {name!r} must be 1-100 characters: lower-case letters, digits, "
            "'-', '_' or '.'"
        )
    if repository.by_name(session, name) is not None:
        raise Conflict(f"a source named {name!r} already exists")
    validate(kind, config)
    validate_cron(cron)
    source = Source(
        name=name,
        kind=kind,
        config=dict(config),
        enabled=enabled,
        interval_seconds=interval_seconds,
        cron=cron,
        retention_days=retention_days,
    )
    session.add(source)
    session.flush()
    return source


def update(session: Session, name: str, changes: Mapping[str, Any]) -> Source:
    source = get(session, name)
    config = changes.get("config", source.config)
    if "config" in changes:
        validate(source.kind, config)
        source.config = dict(config)
    if "cron" in changes:
        validate_cron(changes["cron"])
    for key in ("enabled", "interval_seconds", "cron", "retention_days"):
        if key in changes:
            setattr(source, key, changes[key])
    if changes.get("enabled"):
        # An admin re-enabling a source clears a pause and its backoff: try again now.
        source.status, source.status_reason = "ok", None
        source.consecutive_failures, source.next_attempt_at = 0, None
    session.flush()
    return source


def delete(session: Session, name: str) -> None:
    session.delete(get(session, name))
    session.flush()


def listing(session: Session) -> Sequence[Source]:
    return repository.all_sources(session)


def ensure_demo(session: Session, interval_seconds: int) -> Source:
    """The bundled demo source, created on first start when the demo is enabled."""
    source = repository.by_name(session, "demo")
    if source is None:
        source = create(
            session, name="demo", kind="demo", config={}, interval_seconds=interval_seconds
        )
    return source

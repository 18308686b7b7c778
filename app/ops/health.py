"""Liveness and readiness.

``/healthz`` answers while the process runs (a container restart is the cure for a hung
process, not for a database outage). ``/readyz`` says whether this replica should get
traffic: the database answers, its schema is at the migrations' head, a model is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from app.migrate import alembic_config


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


def migrations_head() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def readiness(engine: Engine, head: str | None, model_version: str | None) -> list[Check]:
    checks: list[Check] = []
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            current = MigrationContext.configure(connection).get_current_revision()
    except SQLAlchemyError as exc:
        checks.append(Check("database", False, f"not reachable: {type(exc).__name__}"))
        checks.append(Check("migrations", False, "unknown: the database is not reachable"))
    else:
        checks.append(Check("database", True, "reachable"))
        if current == head:
            checks.append(Check("migrations", True, f"at head {head}"))
        else:
            checks.append(
                Check("migrations", False, f"at {current}, head is {head}: run `andon migrate`")
            )
    if model_version:
        checks.append(Check("model", True, f"loaded {model_version}"))
    else:
        checks.append(Check("model", False, "no model loaded"))
    return checks

"""``andon keys create|list|revoke``: API keys for operators and scripts."""

from __future__ import annotations

from typing import Annotated

import typer

keys_app = typer.Typer(help="Manage API keys (roles admin, agent, viewer).", no_args_is_help=True)


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Who the key is for, e.g. alice or console")],
    role: Annotated[str, typer.Option("--role", "-r", help="admin, agent or viewer")] = "agent",
    queue: Annotated[
        list[str] | None,
        typer.Option("--queue", "-q", help="Limit an agent to this queue (repeatable)"),
    ] = None,
) -> None:
    """Create a key and print it once: only its hash is stored."""
    from app.auth import service
    from app.cli import _engine, fail, out
    from app.db import make_sessionmaker, unit_of_work
    from app.errors import AndonError

    engine = _engine()
    try:
        with unit_of_work(make_sessionmaker(engine)) as session:
            key, plain = service.create_key(
                session, name=name, role=role, queues=queue, actor="cli"
            )
            scope = ", ".join(key.queues) if key.queues else "all queues"
    except AndonError as exc:
        fail(exc.detail)
    finally:
        engine.dispose()
    out.print(f"key {name} ({role}, {scope}) created; it is shown only this once:", highlight=False)
    print(plain)


@keys_app.command("list")
def list_keys() -> None:
    """List keys: name, role, queues, prefix, created and revoked (never the keys)."""
    from rich.table import Table

    from app.auth import service
    from app.cli import _engine, out
    from app.db import make_sessionmaker

    engine = _engine()
    try:
        with make_sessionmaker(engine)() as session:
            table = Table("name", "role", "queues", "prefix", "created", "revoked")
            for key in service.listing(session):
                table.add_row(
                    key.name,
                    key.role,
                    ", ".join(key.queues) if key.queues else "all",
                    key.prefix + "…",
                    key.created_at.strftime("%Y-%m-%d %H:%M"),
                    key.revoked_at.strftime("%Y-%m-%d %H:%M") if key.revoked_at else "-",
                )
    finally:
        engine.dispose()
    out.print(table)


@keys_app.command("revoke")
def revoke(name: Annotated[str, typer.Argument()]) -> None:
    """Revoke a key: it stops working at once."""
    from app.auth import service
    from app.cli import _engine, fail, out
    from app.db import make_sessionmaker, unit_of_work
    from app.errors import AndonError

    engine = _engine()
    try:
        with unit_of_work(make_sessionmaker(engine)) as session:
            service.revoke_key(session, name, actor="cli")
    except AndonError as exc:
        fail(exc.detail)
    finally:
        engine.dispose()
    out.print(f"key {name} revoked")

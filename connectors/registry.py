"""Connector registry: ``kind`` → connector class.

Every connector module registers itself with :func:`register`; :func:`create` builds one
from a source's stored configuration. Secrets are never part of the configuration: the
configuration names environment variables (``*_env`` keys) and the connector reads them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

import httpx

from connectors.base import Connector
from connectors.errors import ConfigError


class ConnectorClass(Protocol):
    kind: str

    def __call__(
        self,
        config: Mapping[str, Any],
        *,
        env: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> Connector: ...


_REGISTRY: dict[str, ConnectorClass] = {}

# Modules that register connectors; imported lazily so a broken optional connector
# never stops the others from loading.
_MODULES = (
    "connectors.demo",
    "connectors.jsonl",
    "connectors.twitter",
    "connectors.mastodon",
    "connectors.canny",
    "connectors.fider",
    "connectors.zendesk",
    "connectors.freshdesk",
    "connectors.imap",
)

C = TypeVar("C")


def register(kind: str) -> Callable[[C], C]:
    """Class decorator: make a connector available under ``kind``."""

    def wrap(cls: C) -> C:
        _REGISTRY[kind] = cls  # type: ignore[assignment]
        return cls

    return wrap


def _load_all() -> None:
    for module in _MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:  # a real import error inside an existing module
                raise


def kinds() -> list[str]:
    """The registered connector kinds, sorted."""
    _load_all()
    return sorted(_REGISTRY)


def create(
    kind: str,
    config: Mapping[str, Any],
    *,
    env: Mapping[str, str] | None = None,
    transport: httpx.BaseTransport | None = None,
) -> Connector:
    """Build the connector ``kind`` from its configuration."""
    _load_all()
    try:
        cls = _REGISTRY[kind]
    except KeyError:
        raise ConfigError(
            f"unknown connector kind {kind!r}; known kinds: {', '.join(sorted(_REGISTRY))}"
        ) from None
    return cls(config, env=env, transport=transport)

"""Andon service: persistence, orchestration, HTTP API and CLI."""

__version__ = "0.1.0"

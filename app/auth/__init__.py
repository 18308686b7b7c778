"""API keys, roles (admin, agent, viewer) and queue scopes."""

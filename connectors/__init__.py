"""Andon connectors: pure library that pulls feedback from source systems.

Never imports ``app``: no database, no FastAPI. A connector turns one bounded request
into a :class:`~connectors.base.Page`; the runner in ``app`` stores it.
"""

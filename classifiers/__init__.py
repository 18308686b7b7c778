"""Andon classifiers: pure library for sentiment and routing. Never imports ``app``."""

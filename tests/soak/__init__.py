"""The soak (``make soak``, ``python -m tests.soak``): continuous ingest and 16 agents for
ten minutes against one ``andon serve``, then a consistency check. Not part of ``make
test``; see ``__main__.py`` for what it does and the settings it reads."""

# Andon — the two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install run test lint format bench soak system-deps clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Andon needs Python 3.11 or newer"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install Andon with its dev tools

run: install ## migrate and start the service with the demo source on http://127.0.0.1:8000
	$(BIN)/andon migrate
	ANDON_DEMO=$${ANDON_DEMO:-true} ANDON_PUBLIC_READ=$${ANDON_PUBLIC_READ:-true} $(BIN)/andon serve --no-migrate

test: install ## the whole suite (PostgreSQL too when ANDON_TEST_DATABASE_URL is set)
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install ## ruff, formatting and mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install ## benchmarks (not part of the test suite)
	$(BIN)/python -m bench

# Not part of `make test`: 10 minutes of ingest + 16 agents, then consistency and memory
# checks (SOAK_SECONDS, SOAK_AGENTS, SOAK_RATE, SOAK_DATABASE; see tests/soak/__main__.py).
soak: install ## long soak: continuous ingest while 16 agents claim and resolve
	$(BIN)/python -m tests.soak

# System components some tests need (Dovecot for IMAP, Chromium for the browser tests).
# Debian/Ubuntu as root; .ci/run calls this. On a laptop without them those tests skip.
SYSTEM_PACKAGES := dovecot-imapd openssl chromium
system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache andon.db andon.db-wal andon.db-shm models

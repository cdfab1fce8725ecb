# Rex — the two commands:
#   make run    install, migrate, start the sandbox, sync it, serve the app on :8501
#   make test   install, make sure PostgreSQL is up, lint, type-check, run the whole test suite
# Both set themselves up from a fresh clone; nothing else needs to run first.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
# Test files run in parallel, one worker per core, each file whole on one worker (each
# worker has its own SQLite files, PostgreSQL schemas, sandbox and ports).
PYTEST_WORKERS ?= auto

.PHONY: run test lint bench screenshots clean postgres chromium

run: $(STAMP)
	$(BIN)/python -m core up

test: $(STAMP) postgres chromium
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy core
	REX_TEST_PG_URL=$(PG_URL) $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .
	$(BIN)/mypy core

screenshots: $(STAMP)
	$(BIN)/python scripts/screenshots.py

# The virtual environment, rebuilt when requirements.txt changes.
$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $(STAMP)

# Start the machine's PostgreSQL cluster when it is installed but down (best effort: the
# tests themselves fail with a clear message when it still cannot be reached).
postgres:
	@if command -v pg_isready >/dev/null && ! pg_isready -q -h 127.0.0.1 -p 5432; then \
	  echo "starting PostgreSQL…"; \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | head -1) main start || true; \
	  for i in 1 2 3 4 5 6 7 8 9 10; do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done; \
	fi

# The browser test drives Debian's chromium (Playwright's own browser download does not
# work offline); install it when missing.
chromium:
	@command -v chromium >/dev/null 2>&1 || { echo "installing chromium…"; \
	  apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

bench: $(STAMP)
	$(BIN)/python bench/freshness.py --runs 3
	$(BIN)/python bench/pages.py
	$(BIN)/python bench/pages.py --engine-data
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/sync.py

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache

# govflow — the README's two commands are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PG_URL ?= postgres://postgres@127.0.0.1:5432/test
REDIS_TEST_URL ?= redis://127.0.0.1:6379/15

.PHONY: run test test-sqlite test-postgres install services bench lint clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "govflow needs Python 3.11 or newer")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/govflow migrate
	$(BIN)/govflow seed-demo
	@echo ""
	@echo "  health:         http://127.0.0.1:$${GOVFLOW_PORT:-8000}/health"
	@echo "  readiness:      http://127.0.0.1:$${GOVFLOW_PORT:-8000}/ready"
	@echo "  API docs:       http://127.0.0.1:$${GOVFLOW_PORT:-8000}/docs"
	@echo "  OpenAPI:        http://127.0.0.1:$${GOVFLOW_PORT:-8000}/docs/openapi.json"
	@echo "  metrics:        http://127.0.0.1:$${GOVFLOW_PORT:-8000}/metrics"
	@echo ""
	$(BIN)/govflow serve

services: $(STAMP)
	$(BIN)/python tests/check_services.py --pg "$(PG_URL)" --redis "$(REDIS_TEST_URL)"

test-sqlite: $(STAMP)
	GOVFLOW_TEST_DB=sqlite $(BIN)/python -m pytest -q

test-postgres: services
	GOVFLOW_TEST_DB=postgres GOVFLOW_TEST_PG_URL="$(PG_URL)" GOVFLOW_TEST_REDIS="$(REDIS_TEST_URL)" \
		$(BIN)/python -m pytest -q

# Both passes, always: SQLite, then PostgreSQL + Redis (fails loudly if either server is down).
test: $(STAMP)
	@$(MAKE) --no-print-directory test-sqlite
	@$(MAKE) --no-print-directory test-postgres

bench: $(STAMP)
	$(BIN)/python bench/engine.py

lint: $(STAMP)
	$(BIN)/python -m ruff check engine forms mobile_api tests bench

clean:
	rm -rf $(VENV) var .pytest_cache

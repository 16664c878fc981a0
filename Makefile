# govflow — the README's two commands are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PG_URL ?= postgres://postgres@127.0.0.1:5432/test
REDIS_TEST_URL ?= redis://127.0.0.1:6379/15
DESIGNER       := web/designer
DESIGNER_BUILT := $(DESIGNER)/static/.built

.PHONY: run test test-sqlite test-postgres install services browser designer bench wrk lint clean fuzz

$(STAMP): pyproject.toml $(DESIGNER_BUILT)  # setup.py ships the built designer page
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "govflow needs Python 3.11 or newer")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

install: $(STAMP)

# The designer page (/designer/) bundles bpmn-js from npm: `npm ci` installs exactly what
# web/designer/package-lock.json pins (no install scripts), esbuild writes web/designer/static/
# (git-ignored), and ECharts for the console's 统计 page into web/console/static/build/ (git-ignored).
# Rebuilt when the lock file, the build script or a source file changes.
DESIGNER_DEPS  := $(DESIGNER)/node_modules/.package-lock.json
$(DESIGNER_DEPS): $(DESIGNER)/package.json $(DESIGNER)/package-lock.json
	@command -v npm >/dev/null || ($(APT_GET) update && $(APT_GET) install -y --no-install-recommends nodejs npm)
	cd $(DESIGNER) && npm ci --ignore-scripts --no-audit --no-fund
	@touch $@

$(DESIGNER_BUILT): $(DESIGNER_DEPS) $(DESIGNER)/build.mjs $(wildcard $(DESIGNER)/src/*)
	cd $(DESIGNER) && node build.mjs

designer: $(DESIGNER_BUILT)

run: $(STAMP) $(DESIGNER_BUILT)
	$(BIN)/govflow migrate
	$(BIN)/govflow seed-demo
	@echo ""
	@echo "  citizen H5:     http://127.0.0.1:$${GOVFLOW_PORT:-8000}/m/"
	@echo "  staff console:  http://127.0.0.1:$${GOVFLOW_PORT:-8000}/console/"
	@echo "  designer:       http://127.0.0.1:$${GOVFLOW_PORT:-8000}/designer/"
	@echo "  health:         http://127.0.0.1:$${GOVFLOW_PORT:-8000}/health"
	@echo "  readiness:      http://127.0.0.1:$${GOVFLOW_PORT:-8000}/ready"
	@echo "  API docs:       http://127.0.0.1:$${GOVFLOW_PORT:-8000}/docs"
	@echo "  OpenAPI:        http://127.0.0.1:$${GOVFLOW_PORT:-8000}/docs/openapi.json"
	@echo "  metrics:        http://127.0.0.1:$${GOVFLOW_PORT:-8000}/metrics"
	@echo ""
	$(BIN)/govflow serve

services: $(STAMP)
	$(BIN)/python tests/check_services.py --pg "$(PG_URL)" --redis "$(REDIS_TEST_URL)"

# The browser tests (tests/e2e) drive Debian's Chromium through Playwright (never its own browser
# download) and need CJK fonts so Chinese text renders in screenshots. CI runs as root.
APT_GET := $(if $(filter 0,$(shell id -u)),,sudo) apt-get
browser:
	@command -v chromium >/dev/null || ($(APT_GET) update && $(APT_GET) install -y --no-install-recommends chromium fonts-noto-cjk)
	@(fc-list :lang=zh 2>/dev/null | grep -q .) || ($(APT_GET) update && $(APT_GET) install -y --no-install-recommends fontconfig fonts-noto-cjk)

test-sqlite: $(STAMP) browser $(DESIGNER_BUILT)
	GOVFLOW_TEST_DB=sqlite $(BIN)/python -m pytest -q

test-postgres: services browser $(DESIGNER_BUILT)
	GOVFLOW_TEST_DB=postgres GOVFLOW_TEST_PG_URL="$(PG_URL)" GOVFLOW_TEST_REDIS="$(REDIS_TEST_URL)" \
		$(BIN)/python -m pytest -q

# Both passes, always: SQLite, then PostgreSQL + Redis (fails loudly if either server is down).
test: $(STAMP)
	@$(MAKE) --no-print-directory test-sqlite
	@$(MAKE) --no-print-directory test-postgres

# A longer schemathesis run than the bounded one in `make test` (GOVFLOW_FUZZ_EXAMPLES per operation
# and token), on SQLite and on PostgreSQL + Redis; GOVFLOW_FUZZ_SEED picks another random walk. The
# property tests run 20 times their usual examples, the operations model MODEL_SCALE times.
FUZZ_EXAMPLES ?= 300
# the model-based test of the staff operations (tests/engine/workbench/test_operations_model.py): 8 examples
# per process in `make test`, MODEL_SCALE times more here (250 → 2,000 per process and database)
MODEL_SCALE ?= 250
MODEL_TESTS := tests/engine/workbench/test_operations_model.py
fuzz: services
	GOVFLOW_TEST_DB=sqlite GOVFLOW_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) GOVFLOW_PROPERTY_EXAMPLES=20 \
		$(BIN)/python -m pytest -q tests/security/test_fuzz_api.py tests/security/test_properties.py
	GOVFLOW_TEST_DB=postgres GOVFLOW_TEST_PG_URL="$(PG_URL)" GOVFLOW_TEST_REDIS="$(REDIS_TEST_URL)" \
		GOVFLOW_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q tests/security/test_fuzz_api.py
	GOVFLOW_TEST_DB=sqlite GOVFLOW_PROPERTY_EXAMPLES=$(MODEL_SCALE) $(BIN)/python -m pytest -q $(MODEL_TESTS)
	GOVFLOW_TEST_DB=postgres GOVFLOW_TEST_PG_URL="$(PG_URL)" GOVFLOW_TEST_REDIS="$(REDIS_TEST_URL)" \
		GOVFLOW_PROPERTY_EXAMPLES=$(MODEL_SCALE) $(BIN)/python -m pytest -q $(MODEL_TESTS)

# Benchmarks (README: Benchmarks): default sizes finish in a few minutes; they
# need PostgreSQL and Redis (make services) and print JSON, charts go to bench/results/.
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"
	@touch $(BENCH_STAMP)

# wrk (Debian package) measures the hot reads: a Python client saturates long before the server.
wrk:
	@command -v wrk >/dev/null || ($(APT_GET) update && $(APT_GET) install -y --no-install-recommends wrk)

bench: $(BENCH_STAMP) services wrk
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/journey.py
	$(BIN)/python bench/reads.py
	$(BIN)/python bench/audit.py
	$(BIN)/python bench/scale.py
	$(BIN)/python bench/timers.py
	$(BIN)/python bench/report.py --goals

lint: $(STAMP)
	$(BIN)/python -m ruff check engine forms mobile_api tests bench tools

clean:
	rm -rf $(VENV) var .pytest_cache $(DESIGNER)/node_modules $(DESIGNER)/static

# Make targets mirror CI. `make test` is what .ci/run calls.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: setup run test test-fast lint typecheck format proto bench chaos cluster-chaos compose-test clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)  ## create the venv and install everything

.env: .env.example
	bin/make-env

run: setup .env  ## migrate, then start every service and the simulator (Ctrl-C stops all)
	$(BIN)/honcho run $(BIN)/python -m db migrate
	$(BIN)/honcho start -f Procfile

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The gateway-facing integration tests run a second time with the ASGI fast lane off
# (GATEWAY_FAST_PATH=0, passed on to every gateway the tests start): same answers either way.
GATEWAY_TESTS := tests/integration/test_pipeline.py tests/integration/test_gateway_hostile.py \
	tests/integration/test_security.py tests/integration/test_outages.py

test: lint typecheck  ## the whole suite in random order (seed printed), then the gateway tests without the fast lane
	$(BIN)/pytest
	$(BIN)/pytest tests/browser
	GATEWAY_FAST_PATH=0 $(BIN)/pytest $(GATEWAY_TESTS)

test-fast: lint  ## unit tests and lint: no broker, no database, no subprocess; under a minute
	$(BIN)/pytest tests/unit -m "not slow"

compose-test: setup  ## `docker-compose up --build` on a clean copy, on the real Docker engine, checked
	$(BIN)/python -m tests.compose

proto: setup  ## regenerate proto/ Python modules and stubs
	$(BIN)/python proto/generate.py

bench: setup  ## the benchmark (docs/PERFORMANCE.md)
	$(BIN)/python -m bench

chaos: setup  ## faults under load: every acknowledged reading stored exactly once (docs/RELIABILITY.md)
	$(BIN)/python -m chaos

cluster-chaos: setup  ## the chaos run on a throwaway three-node RabbitMQ cluster (docs/SCALING.md)
	$(BIN)/python -m chaos.cluster

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

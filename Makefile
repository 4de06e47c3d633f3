# RecordRoom — the two commands are `make run` and `make test` (see README.md).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
RR := $(BIN)/recordroom
HOST ?= 127.0.0.1
PORT ?= 8000
# `make run` serves plain HTTP on the loopback address only, so HTTPS-only cookies are off.
RUN_ENV := RECORDROOM_HTTPS=false

.PHONY: install run test test-deps lint format bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --config-settings editable_mode=compat -e '.[test]'
	touch $@

run: install
	$(RUN_ENV) $(RR) migrate --no-input -v 0
	$(RUN_ENV) $(RR) collectstatic --no-input -v 0
	$(RUN_ENV) $(RR) codes load
	$(RUN_ENV) $(RR) demo
	@echo ""
	@echo "RecordRoom is at http://$(HOST):$(PORT)/  (Ctrl-C stops it and its worker)"
	@$(RUN_ENV) bash scripts/serve.sh $(HOST) $(PORT)

test-deps:
	bash scripts/test-deps.sh

test: install test-deps
	bash scripts/run-tests.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	bash scripts/run-bench.sh

clean:
	rm -rf $(VENV) var test-artifacts
